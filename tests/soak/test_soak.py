"""The seeded fault-injection soak (tests/soak/harness.py): random operations with faults at every
adapter boundary, then one reconcile sweep, then the invariants.

`make test` runs ``TAGRELAY_SOAK_OPS`` operations (default 30, well under a minute on the local
stack); `make soak` runs 250. ``TAGRELAY_SOAK_SEED`` picks the seed (default 10): a failure names its
seed, and the same seed plays the same operations and the same faults again.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from devstack.scenario import SeedScenario
from devstack.stack import LocalStack
from tests.soak.harness import GITHUB_TIMEOUT_SECONDS, StackSoak, check_invariants

pytestmark = pytest.mark.stack

OPERATIONS = int(os.environ.get("TAGRELAY_SOAK_OPS", "30"))
SEED = int(os.environ.get("TAGRELAY_SOAK_SEED", "10"))


# no_cover: its many repetitions walk paths the other tests cover; tracing them triples its time (docs/development.md)
@pytest.mark.slow
@pytest.mark.no_cover
def test_exactly_once_under_faults(
    stack: LocalStack,
    scenario: SeedScenario,
    promoter_env: Callable[..., Path],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    config = promoter_env(
        extra={
            "github": {
                "base_url": stack.github.url,
                "auth": {"token_secret": "tagrelay/github-token"},
                "timeout_seconds": GITHUB_TIMEOUT_SECONDS,
            },
            "argocd": None,
        }
    )
    monkeypatch.setenv("TAGRELAY_STATE_DIR", str(tmp_path / "tagrelay-state"))
    soak = StackSoak(stack, scenario, config, SEED, OPERATIONS)
    soak.install()
    started = time.monotonic()

    soak.run()
    finals = soak.finish()
    check_invariants(soak, finals)

    report = soak.report(time.monotonic() - started)
    with capsys.disabled():
        print(f"\n{report}")
    assert OPERATIONS < 200 or sum(soak.done.values()) >= 200
    assert soak.layer.injected, "no fault was injected"
