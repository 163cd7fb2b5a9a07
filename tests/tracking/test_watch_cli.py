"""`tagrelay watch --env E`: a progress line per state change (with Argo CD's phase), exit 0 only for SUCCEEDED.

The command runs in-process through ``tagrelay.cli.main.main``. Each time it pauses between two looks,
the world takes one step instead of wall-clock time passing: the Argo CD simulator's manual clock
moves ahead and the tracker handler runs, as its schedule would. Nothing depends on how fast the
machine is; a deployment that never ends fails the test after a bounded number of steps.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from devstack.scenario import SeedScenario
from tagrelay.cli import watch
from tagrelay.cli.main import main
from tests.tracking.support import Configure, TrackerSetup, promote, track

pytestmark = pytest.mark.stack

SIMULATED_SECONDS_PER_STEP = 10
MAX_STEPS = 60  # 10 simulated minutes: far more than a sync takes, far less than the tracking timeout


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> Callable[[TrackerSetup], list[int]]:
    """Once given a setup, every pause of the command is a step of the world; returns the steps taken."""

    def plays(setup: TrackerSetup) -> list[int]:
        steps: list[int] = []

        def step(_seconds: float) -> None:
            steps.append(len(steps) + 1)
            if len(steps) > MAX_STEPS:
                raise AssertionError(f"no outcome after {MAX_STEPS} steps of the world")
            setup.control.tick(SIMULATED_SECONDS_PER_STEP)
            track()

        monkeypatch.setattr(watch, "pause", step)
        return steps

    return plays


def progress(out: str) -> list[str]:
    """The command's own lines: the tracker, run at each step, writes its JSON logs and metrics to stdout too."""
    return [line for line in out.splitlines() if line and not line.startswith("{")]


def test_watch_prints_each_state_with_argo_cds_phase_and_exits_0_on_success(
    scenario: SeedScenario,
    tracker_env: Configure,
    world: Callable[[TrackerSetup], list[int]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    setup = tracker_env()
    release = promote(scenario, setup)
    capsys.readouterr()
    steps = world(setup)

    code = main(["watch", "--env", "prod", "--interval", "5", "--config", str(setup.config_path)])

    out, err = capsys.readouterr()
    lines = [line.split(" ", 1)[1] for line in progress(out)]
    assert code == 0, out + err
    states = [line.split(": ", 1)[1].split(" ", 1)[0].rstrip(";") for line in lines]
    # Nothing moved before the first look; the tracker saw the sync start, then the outcome.
    assert states[0] == "COMMITTED" and "SYNCING" in states and states[-1] == "SUCCEEDED"
    assert len(lines) <= len(steps) + 1
    assert all(line.startswith(f"mosaic-life/prod {release.tag}: ") for line in lines)
    assert any("Argo CD: sync" in line and "operation" in line for line in lines)
    assert len(lines) == len(set(lines))  # a line per change, not per poll
    assert "Healthy" in lines[-1]


def test_watch_exits_1_for_a_failed_deployment(
    scenario: SeedScenario,
    tracker_env: Configure,
    world: Callable[[TrackerSetup], list[int]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    setup = tracker_env()
    promote(scenario, setup, mark="sync_failed")
    capsys.readouterr()
    steps = world(setup)

    code = main(["watch", "--env", "prod", "--interval", "5", "--config", str(setup.config_path)])

    out, err = capsys.readouterr()
    assert code == 1 and steps
    assert "SYNC_FAILED" in progress(out)[-1] and "SYNC_FAILED" in err


def test_deploy_wait_follows_the_deployment_it_made_to_its_outcome(
    scenario: SeedScenario,
    operator_env: Configure,
    world: Callable[[TrackerSetup], list[int]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    from tests.operator.support import pushed, run

    setup = operator_env()
    release = pushed(scenario, "prod")
    steps = world(setup)

    code, out, err = run(capsys, "deploy", release.sha, "--env", "prod", "--wait", "--interval", "5")

    printed = progress(out)
    assert code == 0, err
    assert steps
    assert f"mosaic-life/prod: {release.tag} (was prod-cf3124b) committed as" in printed[0]
    assert printed[-1].split(" ", 1)[1].startswith(f"mosaic-life/prod {release.tag}: SUCCEEDED")


def test_rollback_wait_follows_the_rollback_to_its_outcome(
    scenario: SeedScenario,
    operator_env: Configure,
    world: Callable[[TrackerSetup], list[int]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    from tests.operator.support import deployed, run

    setup = operator_env()
    good = deployed(scenario, setup, "prod")
    bad = deployed(scenario, setup, "prod", mark="degraded")
    steps = world(setup)

    code, out, err = run(
        capsys, "rollback", "--env", "prod", "--reason", "checkout errors", "--wait", "--interval", "5"
    )

    printed = progress(out)
    assert code == 0, err
    assert steps
    assert f"mosaic-life/prod: {good.tag} (was {bad.tag}) committed as" in printed[0]
    followed = [line.split(" ", 1)[1] for line in printed if line[:2].isdigit()]
    assert followed[0].startswith(f"mosaic-life/prod {good.tag}: COMMITTED")
    assert followed[-1].startswith(f"mosaic-life/prod {good.tag}: SUCCEEDED")
