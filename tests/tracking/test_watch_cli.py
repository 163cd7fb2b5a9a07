"""`tagrelay watch --env E`: a progress line per state change (with Argo CD's phase), exit 0 only for SUCCEEDED.

The command runs in-process through ``tagrelay.cli.main.main`` while a background thread plays the
world: it moves the Argo CD simulator's clock and runs the tracker handler, as the schedule would.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from devstack.scenario import SeedScenario
from tagrelay.cli.main import main
from tests.tracking.support import Configure, TrackerSetup, promote, track

pytestmark = pytest.mark.stack


@pytest.fixture
def world() -> Iterator[list[TrackerSetup]]:
    """Once given a setup, ticks the simulator and runs the tracker until the test ends."""
    setups: list[TrackerSetup] = []
    stop = threading.Event()

    def play() -> None:
        while not stop.wait(0.3):
            if setups:
                setups[0].control.tick(5)
                track()

    thread = threading.Thread(target=play, daemon=True)
    thread.start()
    yield setups
    stop.set()
    thread.join(timeout=30)


def test_watch_prints_each_state_with_argo_cds_phase_and_exits_0_on_success(
    scenario: SeedScenario, tracker_env: Configure, world: list[TrackerSetup], capsys: pytest.CaptureFixture[str]
) -> None:
    setup = tracker_env()
    release = promote(scenario, setup)
    capsys.readouterr()
    world.append(setup)

    code = main(["watch", "--env", "prod", "--interval", "0.2", "--timeout", "2", "--config", str(setup.config_path)])

    out, err = capsys.readouterr()
    # The tracker, run by the background thread, writes its JSON logs and metrics to stdout too.
    lines = [line.split(" ", 1)[1] for line in out.splitlines() if line and not line.startswith("{")]
    assert code == 0, out + err
    states = [line.split(": ", 1)[1].split(" ", 1)[0].rstrip(";") for line in lines]
    assert states[0] in ("COMMITTED", "SYNCING") and states[-1] == "SUCCEEDED"
    assert all(line.startswith(f"mosaic-life/prod {release.tag}: ") for line in lines)
    assert any("Argo CD: sync" in line and "operation" in line for line in lines)
    assert len(lines) == len(set(lines))  # a line per change, not per poll
    assert "Healthy" in lines[-1]


def test_watch_exits_1_for_a_failed_deployment(
    scenario: SeedScenario, tracker_env: Configure, world: list[TrackerSetup], capsys: pytest.CaptureFixture[str]
) -> None:
    setup = tracker_env()
    promote(scenario, setup, mark="sync_failed")
    capsys.readouterr()
    world.append(setup)

    code = main(["watch", "--env", "prod", "--interval", "0.2", "--timeout", "2", "--config", str(setup.config_path)])

    out, err = capsys.readouterr()
    assert code == 1
    progress = [line for line in out.splitlines() if line and not line.startswith("{")]
    assert "SYNC_FAILED" in progress[-1] and "SYNC_FAILED" in err


def test_deploy_wait_follows_the_deployment_it_made_to_its_outcome(
    scenario: SeedScenario, operator_env: Configure, world: list[TrackerSetup], capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.operator.support import pushed, run

    setup = operator_env()
    release = pushed(scenario, "prod")
    world.append(setup)

    code, out, err = run(
        capsys, "deploy", release.sha, "--env", "prod", "--wait", "--interval", "0.2", "--timeout", "2"
    )

    progress = [line for line in out.splitlines() if line and not line.startswith("{")]
    assert code == 0, err
    assert f"mosaic-life/prod: {release.tag} (was prod-cf3124b) committed as" in progress[0]
    assert progress[-1].split(" ", 1)[1].startswith(f"mosaic-life/prod {release.tag}: SUCCEEDED")
