"""`tagrelay explain`: the whole evaluation, printed, with nothing written anywhere."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from devstack.events import ecr_push_event
from devstack.scenario import SeedScenario
from devstack.stack import LocalStack
from tagrelay.adapters.store import Ledger
from tagrelay.cli.main import main

OFFLINE_CONFIG = """\
apps:
  mosaic-life:
    source_repo: mosaic-stories/mosaic-life
    registry: http://127.0.0.1:9          # nothing listens: any request would fail the test
    ecr: {account: "033691785857", region: us-east-1}   # the ECR registry the events come from
    images: [mosaic-life/web, mosaic-life/core-api]
    gitops: {repo: mosaic-stories/gitops}
    environments: {prod: {branch: main}}
    signature: none
github:
  base_url: http://127.0.0.1:9
  auth: {token_secret: never-read}
"""


@pytest.fixture
def offline_config(tmp_path: Path) -> Path:
    path = tmp_path / "tagrelay.yaml"
    path.write_text(OFFLINE_CONFIG)
    return path


def write_event(tmp_path: Path, event: Any) -> Path:
    path = tmp_path / "event.json"
    path.write_text(json.dumps(event))
    return path


def run_json(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, Any]:
    assert main([*args, "--output", "json"]) == 0
    result: dict[str, Any] = json.loads(capsys.readouterr().out)
    return result


def test_an_ignored_event_is_decided_without_any_service(
    tmp_path: Path, offline_config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    event = write_event(tmp_path, ecr_push_event("mosaic-life/web", "latest"))
    result = run_json(capsys, "explain", str(event), "--config", str(offline_config))
    assert (result["decision"], result["reason"]) == ("ignore", "tag_outside_grammar")
    assert result["checks"] == [{"name": "event", "status": "skip", "detail": result["message"]}]


def test_a_malformed_event_is_rejected_without_any_service(
    tmp_path: Path, offline_config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = ecr_push_event("mosaic-life/web")
    del broken["detail"]["repository-name"]
    result = run_json(capsys, "explain", str(write_event(tmp_path, broken)), "--config", str(offline_config))
    assert (result["decision"], result["reason"]) == ("reject", "malformed_event:missing_field")
    assert "detail.repository-name is missing" in result["message"]


def test_text_output_lists_the_decision_and_checks(
    tmp_path: Path, offline_config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    event = write_event(tmp_path, ecr_push_event("mosaic-life/web", "abc1234", action="DELETE"))
    assert main(["explain", str(event), "--config", str(offline_config)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("decision: ignore (not_a_push)")
    assert "checks:" in out


@pytest.mark.parametrize(
    ("content", "message"),
    [("{not json", "not JSON (line 1, column 2"), (None, "cannot read the event file")],
)
def test_an_unreadable_event_file_is_refused(
    tmp_path: Path, offline_config: Path, capsys: pytest.CaptureFixture[str], content: str | None, message: str
) -> None:
    path = tmp_path / "event.json"
    if content is not None:
        path.write_text(content)
    assert main(["explain", str(path), "--config", str(offline_config)]) == 1
    assert message in capsys.readouterr().err


def test_a_broken_configuration_is_refused_naming_the_field(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text(OFFLINE_CONFIG.replace("signature: none", "signature: off"))
    event = write_event(tmp_path, ecr_push_event())
    assert main(["explain", str(event), "--config", str(config)]) == 2
    assert "apps.mosaic-life.signature" in capsys.readouterr().err


@pytest.mark.stack
def test_a_complete_release_would_promote_and_nothing_is_written(
    stack: LocalStack, scenario: SeedScenario, promoter_env: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    config = promoter_env()
    sha = scenario.commit("main")
    release = scenario.release(sha)
    before = scenario.gitops.head("main")
    event = write_event(stack.workdir, release.events_of("release")[0])

    result = run_json(capsys, "explain", str(event), "--config", str(config))

    assert (result["decision"], result["reason"]) == ("promote", "ready")
    names = [check["name"] for check in result["checks"]]
    assert names[:5] == ["readiness", "tag immutability", "environment", "signatures", "commit"]
    assert all(check["status"] == "pass" for check in result["checks"])
    assert result["evaluations"][0]["full_sha"] == sha
    assert scenario.gitops.head("main") == before  # no commit
    ledger = Ledger("tagrelay-ledger")
    assert ledger.history("mosaic-life", "prod").records == []  # no decision recorded
    assert ledger.release_tags_for(scenario.images[0], release.digests[scenario.images[0]]) == []  # no sighting


def test_the_console_script_has_help_with_an_example() -> None:
    tagrelay = Path(sys.executable).with_name("tagrelay")
    out = subprocess.run([str(tagrelay), "explain", "--help"], capture_output=True, text=True, check=True).stdout
    assert "example:" in out
    assert "tagrelay explain push-event.json" in out
