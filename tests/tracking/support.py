"""Helpers shared by the tracking tests: promote a release, run the tracker, read the ledger."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

import pytest

from devstack.argocd_sim import ArgoCDSimControl, Mark
from devstack.lambda_context import lambda_context
from devstack.scenario import BRANCH_OF_ENV, Release, SeedScenario
from devstack.stack import LEDGER_TABLE
from tagrelay.adapters.store import Ledger
from tagrelay.domain.records import DecisionRecord, timestamp


class TrackerSetup(Protocol):
    """What the ``tracker_env`` fixture (tests/conftest.py) hands back."""

    config_path: Path
    apps: dict[str, str]
    control: ArgoCDSimControl


Configure = Callable[..., TrackerSetup]


def deliver(release: Release, setup: TrackerSetup) -> list[str]:
    """Every event of the release to the promoter handler, pushed "now" on the simulated timeline.

    The clock first moves a second, like real pushes: "newer" is decided by commit time.
    """
    from tagrelay.handlers.promoter import handler

    pushed_at = timestamp(setup.control.tick(1))
    decisions = []
    for event in release.events:
        event["time"] = pushed_at
        decisions.append(handler(event, lambda_context("promoter"))["decision"])
    return decisions


def promote(
    scenario: SeedScenario,
    setup: TrackerSetup,
    env: str = "prod",
    *,
    mark: Mark | None = None,
    every_event: bool = False,
    **release: Any,
) -> Release:
    """A new commit on the environment's branch, released by CI and promoted by the promoter handler.

    ``mark`` tells the simulator what happens when the tag is deployed (degraded, sync_failed, ...).
    Every piece is pushed before any event is delivered, so the first event promotes and the others
    are duplicates (noop records): only the first is delivered, unless ``every_event`` (for the tests
    that need the ledger's transient records too).
    """
    sha = scenario.commit(BRANCH_OF_ENV[env])
    if mark is not None:
        setup.control.mark(sha[:7], mark)
    pushed = scenario.release(sha, branch=BRANCH_OF_ENV[env], **release)
    delivered = pushed if every_event else dataclasses.replace(pushed, events=pushed.events[:1])
    decisions = deliver(delivered, setup)
    assert decisions[0] == "promote", decisions
    return pushed


def track() -> dict[str, Any]:
    from tagrelay.handlers.tracker import handler

    result: dict[str, Any] = handler({"id": "run", "detail-type": "Scheduled Event"}, lambda_context("tracker"))
    return result


def deployment(env: str, tag: str) -> DecisionRecord:
    records = Ledger(LEDGER_TABLE).history("mosaic-life", env, limit=100).records
    [record] = [r for r in records if r.outcome == "committed" and r.tag == tag]
    return record


def moves(result: dict[str, Any]) -> list[tuple[str, str, str]]:
    return [(t["env"], t["tag"], t["to"]) for t in result["transitions"]]


def in_flight() -> list[DecisionRecord]:
    return Ledger(LEDGER_TABLE).in_flight()


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """Run the ``tagrelay`` command in-process; returns (exit code, stdout, stderr)."""
    from tagrelay.cli.main import main

    capsys.readouterr()
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def lines_with(text: str, *needles: str) -> Sequence[str]:
    return [line for line in text.splitlines() if all(needle in line for needle in needles)]
