"""The Lambda asset: its size, and the cold start of a fresh process that has only the asset, with and
without the CLI-only packages (infra/bundling.py CLI_ONLY_PACKAGES, and the `tagrelay.cli` modules).

    python -m bench.asset [--runs N]

Sizes are measured on the asset `make synth` builds (arm64, the Lambda's Python) and on one built for
this machine, which is the one that can run here. A cold start is a new interpreter (`python -I -S`:
no site-packages, the asset alone on sys.path) that imports a handler and handles an event, as a new
Lambda execution environment does; the medians of --runs processes are printed. Three moments:

- import: `import tagrelay.handlers.promoter` (the Lambda's init phase);
- first event: plus one ignored event through the handler (Powertools, the configuration);
- verification stack: plus the modules the first signature check loads (sigstore, PyGithub, boto3).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from infra.bundling import FUNCTIONS_ROOT, PACKAGE, copy_package, install_dependencies
from infra.pipeline_function import PYTHON_VERSION

REPO_ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = REPO_ROOT / "examples" / "mosaic-life.yaml"
IGNORED_EVENT = {
    "version": "0",
    "id": "00000000-0000-4000-8000-00000000c01d",  # a UUID, as EventBridge ids are (else: malformed)
    "detail-type": "ECR Image Scan",
    "source": "aws.ecr",
    "account": "033691785857",
    "time": "2026-11-26T10:00:00Z",
    "region": "us-east-1",
    "resources": [],
    "detail": {},
}
PROBE = """
import json, sys, time
started = time.perf_counter()
sys.path.insert(0, sys.argv[1])
import tagrelay.handlers.promoter as promoter
imported = time.perf_counter()
class Context:
    function_name = "tagrelay-promoter"; memory_limit_in_mb = 1024; aws_request_id = "bench"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:tagrelay-promoter"
    def get_remaining_time_in_millis(self): return 120_000
promoter.handler(json.loads(sys.argv[2]), Context())
handled = time.perf_counter()
import github, boto3, tagrelay.adapters.signatures.bundles, sigstore.verify, sigstore.models
verification = time.perf_counter()
loaded = sorted({name.split(".")[0] for name in sys.modules})
print(json.dumps({"import": imported - started, "first_event": handled - started,
                  "verification": verification - started, "modules": loaded}))
"""


def build(target: Path, architecture: str, python_version: str, *, slim: bool) -> Path:
    install_dependencies(target, architecture, python_version, cli_only=not slim)  # type: ignore[arg-type]
    if slim:
        copy_package(target)
    else:
        shutil.copytree(FUNCTIONS_ROOT / PACKAGE, target / PACKAGE, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copyfile(EXAMPLE, target / "tagrelay.yaml")
    return target


def sizes(asset: Path) -> tuple[int, int]:
    """(unpacked bytes, zipped bytes at deflate level 9, as the CDK zips an asset)."""
    unpacked = sum(f.stat().st_size for f in asset.rglob("*") if f.is_file())
    with tempfile.TemporaryDirectory() as scratch:
        archive = Path(scratch) / "asset.zip"
        with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zipped:
            for file in sorted(asset.rglob("*")):
                if file.is_file():
                    zipped.write(file, file.relative_to(asset))
        return unpacked, archive.stat().st_size


def cold_starts(asset: Path, runs: int) -> dict[str, float]:
    env = {
        "PATH": os.environ["PATH"],
        "TAGRELAY_CONFIG": str(asset / "tagrelay.yaml"),
        "POWERTOOLS_SERVICE_NAME": "promoter",
        "POWERTOOLS_METRICS_NAMESPACE": "tagrelay",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "AWS_DEFAULT_REGION": "us-east-1",
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    samples = []
    for _ in range(runs):
        out = subprocess.run(
            [sys.executable, "-I", "-S", "-c", PROBE, str(asset), json.dumps(IGNORED_EVENT)],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        samples.append(json.loads(out.strip().splitlines()[-1]))
    return {
        key: statistics.median(float(sample[key]) for sample in samples)
        for key in ("import", "first_event", "verification")
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.asset", description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="fresh processes per measurement (default 5)")
    args = parser.parse_args(argv)
    local_arch = "arm64" if platform.machine() in ("aarch64", "arm64") else "x86_64"
    local_python = f"{sys.version_info.major}.{sys.version_info.minor}"
    with tempfile.TemporaryDirectory(prefix="tagrelay-asset-bench-") as scratch:
        root = Path(scratch)
        print(f"{'asset':<62} {'unpacked':>10} {'zipped':>10}")
        for label, architecture, python_version in (
            ("Lambda's (arm64, Python " + PYTHON_VERSION + ")", "arm64", PYTHON_VERSION),
            (f"this machine's ({local_arch}, Python {local_python})", local_arch, local_python),
        ):
            for slim in (False, True):
                kind = "runtime only" if slim else "with CLI-only packages"
                asset = build(root / f"{architecture}-{python_version}-{slim}", architecture, python_version, slim=slim)
                unpacked, zipped = sizes(asset)
                print(f"{label + ', ' + kind:<62} {unpacked / 1e6:>8.1f}MB {zipped / 1e6:>8.1f}MB")
        print(f"\ncold start, fresh `python -I -S` with the asset only, median of {args.runs} processes:")
        print(f"{'asset':<26} {'import':>8} {'+event':>8} {'+verification stack':>20}")
        for slim in (False, True):
            figures = cold_starts(root / f"{local_arch}-{local_python}-{slim}", args.runs)
            kind = "runtime only" if slim else "with CLI-only packages"
            print(
                f"{kind:<26} {figures['import'] * 1000:>6.0f}ms {figures['first_event'] * 1000:>6.0f}ms "
                f"{figures['verification'] * 1000:>18.0f}ms"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
