"""Operators never need the write token: `status` and `explain` read GitHub with a read-only credential
($GITHUB_TOKEN, `gh auth token`, or github.read_token_secret), and the promoter's refresh nudge is never
silent when it fails.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from devstack.scenario import SeedScenario
from devstack.stack import GITHUB_READ_TOKEN
from tests.tracking.support import Configure, cli, promote

pytestmark = pytest.mark.stack


def rewrite(path: Path, change: Any) -> None:
    yaml = YAML()
    data = yaml.load(path.read_text())
    change(data)
    with path.open("w") as stream:
        yaml.dump(data, stream)


def wall_clock(event: dict[str, Any]) -> dict[str, Any]:
    """The event as EventBridge would hand it to `tagrelay explain` now: the tracker tests' events carry
    the simulator's time, which runs ahead of the wall clock, and a future event time is malformed."""
    from datetime import UTC, datetime

    return {**event, "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")}


def without_the_write_secret(data: Any) -> None:
    """The write credential's secret does not exist: a command that still works never read it."""
    data["github"]["auth"] = {"token_secret": "tagrelay/no-such-secret"}


@pytest.fixture
def no_github_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No GITHUB_TOKEN and no `gh` on PATH: only the configuration can provide a read credential."""
    for name in ("GITHUB_TOKEN", "GH_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    path = [d for d in os.environ["PATH"].split(os.pathsep) if not (Path(d) / "gh").exists()]
    monkeypatch.setenv("PATH", os.pathsep.join(path))


def test_status_reads_github_with_the_read_token_secret_never_the_write_token(
    scenario: SeedScenario, tracker_env: Configure, capsys: pytest.CaptureFixture[str], no_github_env: None
) -> None:
    setup = tracker_env()
    tag = promote(scenario, setup, "prod").tag
    rewrite(setup.config_path, without_the_write_secret)

    code, out, err = cli(capsys, "status", "--env", "prod", "-o", "json", "--config", str(setup.config_path))

    assert (code, err) == (0, ""), err
    [prod] = json.loads(out)
    assert prod["gitops_tag"] == tag


def test_without_a_read_credential_status_and_explain_say_how_to_provide_one(
    scenario: SeedScenario,
    tracker_env: Configure,
    capsys: pytest.CaptureFixture[str],
    no_github_env: None,
    tmp_path: Path,
) -> None:
    setup = tracker_env()
    release = promote(scenario, setup, "prod")
    rewrite(setup.config_path, lambda data: data["github"].pop("read_token_secret"))
    event = tmp_path / "event.json"
    event.write_text(json.dumps(wall_clock(release.events[0])))

    for argv in (["status", "--env", "prod"], ["explain", str(event)]):
        code, out, err = cli(capsys, *argv, "--config", str(setup.config_path))
        assert code == 2 and out == "", argv
        assert f"{argv[0]} reads GitHub with a read-only credential, and there is none: set GITHUB_TOKEN" in err
        assert "github.read_token_secret" in err


def test_github_token_and_gh_come_before_the_secret(
    scenario: SeedScenario,
    tracker_env: Configure,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    setup = tracker_env()
    release = promote(scenario, setup, "prod")

    def only_the_environment(data: Any) -> None:
        data["github"].pop("read_token_secret")
        without_the_write_secret(data)

    rewrite(setup.config_path, only_the_environment)
    event = tmp_path / "event.json"
    event.write_text(json.dumps(wall_clock(release.events[0])))
    monkeypatch.delenv("GH_TOKEN", raising=False)

    monkeypatch.setenv("GITHUB_TOKEN", GITHUB_READ_TOKEN)
    code, out, err = cli(capsys, "explain", str(event), "-o", "json", "--config", str(setup.config_path))
    assert code == 0, err
    assert json.loads(out)["decision"] == "noop", out  # already deployed: GitHub was read

    # No GITHUB_TOKEN: the GitHub CLI's token for the configured host.
    monkeypatch.delenv("GITHUB_TOKEN")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    gh = bin_dir / "gh"
    gh.write_text(f'#!/bin/sh\n[ "$1 $2" = "auth token" ] && echo {GITHUB_READ_TOKEN}\n')
    gh.chmod(gh.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    code, out, err = cli(capsys, "status", "--env", "prod", "--config", str(setup.config_path))
    assert code == 0, err


# --- the refresh nudge is never silent -----------------------------------------------------------------


def test_a_failed_nudge_is_logged_and_counted(
    scenario: SeedScenario,
    tracker_env: Configure,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    import logging

    from devstack.process import free_port
    from infra.pipeline_metrics import NUDGE_FAILURES_METRIC, PROMOTER_SERVICE

    setup = tracker_env(argocd={"url": f"http://127.0.0.1:{free_port()}"})  # an Argo CD the promoter cannot reach
    capsys.readouterr()
    with caplog.at_level(logging.WARNING, logger="tagrelay"):
        promote(scenario, setup, "prod")

    [warning] = [r for r in caplog.records if r.getMessage().startswith("Argo CD refresh nudge failed")]
    assert warning.levelno == logging.WARNING
    assert (warning.__dict__["env"], warning.__dict__["argocd_app"]) == ("prod", setup.apps["prod"])
    assert warning.__dict__["why"]
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    metrics = [line for line in lines if NUDGE_FAILURES_METRIC in line]
    assert [(m[NUDGE_FAILURES_METRIC], m["service"]) for m in metrics] == [([1.0], PROMOTER_SERVICE)]


def test_a_nudge_that_argo_cd_answers_counts_nothing(
    scenario: SeedScenario, tracker_env: Configure, capsys: pytest.CaptureFixture[str]
) -> None:
    from infra.pipeline_metrics import NUDGE_FAILURES_METRIC

    setup = tracker_env()
    capsys.readouterr()
    promote(scenario, setup, "prod")
    assert NUDGE_FAILURES_METRIC not in capsys.readouterr().out
