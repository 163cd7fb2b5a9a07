"""Helpers of the service tests on the fakes: deliver events to the promoter as its handler does, and
read what it wrote (GitOps commits, ledger records)."""

from __future__ import annotations

from typing import Any

from tagrelay.domain.records import DecisionRecord
from tagrelay.services.promote import Promoter
from tagrelay.services.report import report
from tests.fakes.world import FakeWorld

APP = "mosaic-life"
VALUES = "environments/{env}/values.yaml"


def invoke(promoter: Promoter, event: dict[str, Any]) -> dict[str, Any]:
    """What the promoter handler returns for ``event`` (handlers/promoter.py: process, then report)."""
    return report(promoter.process(event))


def deliver(world: FakeWorld, promoter: Promoter, events: list[dict[str, Any]]) -> dict[str, Any]:
    """Deliver every event, a second apart; return the last result that decided something other than
    wait or noop (the same rule as tests/integration/test_promoter_handler.py's ``deliver``)."""
    results = []
    for event in events:
        world.clock.tick()
        results.append(invoke(promoter, event))
    deciding = [r for r in results if r["decision"] not in ("wait", "noop")]
    assert len({(r["decision"], r["reason"]) for r in deciding}) <= 1, [(r["decision"], r["reason"]) for r in results]
    assert [r["decision"] for r in deciding].count("promote") <= 1
    decided = deciding[-1] if deciding else results[-1]
    if decided["decision"] == "reject":
        recorded = {(r.outcome, r.reason) for env in ("prod", "staging", "unresolved") for r in history(world, env)}
        assert ("rejected", decided["reason"]) in recorded, recorded
    return decided


def history(world: FakeWorld, env: str) -> list[DecisionRecord]:
    return world.ledger.history(APP, env, limit=1000).records


def deploy_commits(world: FakeWorld, env: str | None = None) -> list[str]:
    """Messages of tagrelay's deploy commits on the GitOps branch, oldest first (``env``: to its file)."""
    commits = [c for c in world.github.log(world.gitops_repo, "main") if c.message.startswith("deploy(")]
    if env is not None:
        commits = [c for c in commits if c.message.startswith(f"deploy({env})")]
    return [c.message for c in reversed(commits)]


def promote(world: FakeWorld, promoter: Promoter, branch: str = "main") -> tuple[str, dict[str, str]]:
    """A release pushed, signed and promoted like CI and tagrelay do; returns its SHA and digests."""
    sha = world.commit(branch)
    release = world.release(sha, branch=branch)
    decisions = []
    for event in release.events:
        world.clock.tick()
        decisions.append(invoke(promoter, event)["decision"])
    assert "promote" in decisions, decisions
    return sha, release.digests


def hand_edit(world: FakeWorld, env: str, content: bytes | str, message: str = "ops: hand edit") -> str:
    """Somebody commits to the GitOps branch by hand."""
    return world.github.commit(world.gitops_repo, "main", {VALUES.format(env=env): content}, message, author="ops")
