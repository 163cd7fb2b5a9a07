"""The seeded fault-injection soak on the in-memory fakes (tests/soak/fakes.py): the plan, faults and
invariants of tests/soak/harness.py, through the same handlers and the `tagrelay` command's own code.

`make test` runs ``TAGRELAY_FAKE_SOAK_OPS`` operations (default 250) with ``TAGRELAY_SOAK_SEED``
(default 10); the local-stack soak (tests/soak/test_soak.py) runs fewer there, `make test-unit` 100, and
`make soak` runs both longer. A failure names its seed, and the same seed plays the same operations and faults again.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from tests.fakes.world import FakeWorld
from tests.soak.fakes import FakeSoak
from tests.soak.harness import FAULT_KINDS, check_invariants

OPERATIONS = int(os.environ.get("TAGRELAY_FAKE_SOAK_OPS", "250"))
SEED = int(os.environ.get("TAGRELAY_SOAK_SEED", "10"))


# no_cover: its many repetitions walk paths the other tests cover; tracing them triples its time (docs/development.md)
@pytest.mark.slow
@pytest.mark.no_cover
def test_exactly_once_under_faults_on_the_fakes(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("TAGRELAY_STATE_DIR", str(tmp_path / "tagrelay-state"))
    soak = FakeSoak(FakeWorld.create(), SEED, OPERATIONS)
    started = time.monotonic()

    with soak.installed(tmp_path / "tagrelay.yaml", monkeypatch):
        soak.run()
        finals = soak.finish()
    check_invariants(soak, finals)

    report = soak.report(time.monotonic() - started)
    with capsys.disabled():
        print(f"\n{report} (fakes)")
    assert OPERATIONS < 200 or sum(soak.done.values()) >= 200
    # Every boundary's faults were met (a short run, OPERATIONS < 200, may miss some).
    expected = {*FAULT_KINDS, "lambda_retry", "duplicate_event", "lost_event"}
    assert OPERATIONS < 200 or set(soak.layer.injected) >= expected, soak.layer.injected
