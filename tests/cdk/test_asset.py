"""The Lambda asset holds runtime dependencies only, and the functions run from it alone.

The asset is built as `make synth` builds it, but for this machine's CPU and Python (the only one that
can run here), then a fresh interpreter with nothing but the asset on its path (`python -I -S`) imports
both handlers, handles an event, and loads every module a signature check, a GitHub commit and the AWS
clients need: if a left-out package were needed, this fails.
"""

from __future__ import annotations

import json
import platform
import subprocess
import sys
from pathlib import Path

import pytest

from bench.asset import IGNORED_EVENT, PROBE, build
from infra.bundling import CLI_ONLY_MODULES, CLI_ONLY_PACKAGES, export_runtime_requirements

pytestmark = pytest.mark.cdk

# Top-level modules of the CLI-only distributions (a distribution's name is not always its module's).
CLI_ONLY_IMPORTS = {"rich", "markdown_it", "mdurl", "pygments", "email_validator", "dns"}


@pytest.fixture(scope="module")
def asset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    architecture = "arm64" if platform.machine() in ("aarch64", "arm64") else "x86_64"
    python = f"{sys.version_info.major}.{sys.version_info.minor}"
    return build(tmp_path_factory.mktemp("asset") / "asset", architecture, python, slim=True)


def test_cli_only_packages_are_not_exported_for_the_asset(tmp_path: Path) -> None:
    requirements = tmp_path / "requirements.txt"
    export_runtime_requirements(requirements)
    pinned = {
        line.split("==")[0].lower()
        for line in requirements.read_text(encoding="utf-8").splitlines()
        if "==" in line and not line.startswith((" ", "#"))
    }
    assert not pinned & set(CLI_ONLY_PACKAGES)
    export_runtime_requirements(requirements, cli_only=True)
    assert set(CLI_ONLY_PACKAGES) <= {line.split("==")[0].lower() for line in requirements.read_text().splitlines()}
    assert all(len(reason) > 15 for reason in CLI_ONLY_PACKAGES.values()), "each exclusion says why"


def test_the_asset_holds_neither_cli_only_packages_nor_the_cli(asset: Path) -> None:
    top_level = {path.name for path in asset.iterdir()}
    assert not top_level & CLI_ONLY_IMPORTS
    assert {"tagrelay", "sigstore", "github", "boto3", "aws_lambda_powertools", "tagrelay.yaml"} <= top_level
    assert not any((asset / "tagrelay" / name).exists() for name in CLI_ONLY_MODULES)
    assert (asset / "tagrelay" / "handlers" / "promoter.py").is_file()


def test_the_functions_run_from_the_asset_alone(asset: Path) -> None:
    env = {
        "TAGRELAY_CONFIG": str(asset / "tagrelay.yaml"),
        "POWERTOOLS_TRACE_DISABLED": "true",
        "AWS_DEFAULT_REGION": "us-east-1",
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    result = subprocess.run(
        [sys.executable, "-I", "-S", "-c", PROBE, str(asset), json.dumps(IGNORED_EVENT)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    loaded = set(figures["modules"])
    assert {"tagrelay", "sigstore", "github", "boto3", "aws_lambda_powertools"} <= loaded
    assert not loaded & CLI_ONLY_IMPORTS
    # The tracker too (it imports what the promoter does not: the Argo CD adapter, the outcome rules).
    tracker = subprocess.run(
        [sys.executable, "-I", "-S", "-c",
         f"import sys; sys.path.insert(0, {str(asset)!r}); import tagrelay.handlers.tracker, tagrelay.adapters.argocd"],
        env=env, capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip
    assert tracker.returncode == 0, tracker.stderr[-3000:]
