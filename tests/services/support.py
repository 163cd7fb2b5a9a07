"""Helpers of the service tests on the fakes: deliver events to the promoter as its handler does, and
read what it wrote (GitOps commits, ledger records)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from devstack.scenario import BRANCH_OF_ENV, Release
from tagrelay.domain.records import DecisionRecord, EnvironmentState, timestamp
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


# --- with the world installed in runtime.py (the `install` fixture): the handlers' and the CLI's view ---


def deliver_installed(world: FakeWorld, events: list[dict[str, Any]]) -> list[str]:
    """Every event to the installed promoter (the Lambda's, runtime.promoter()), a second apart, with
    the event time of that moment; returns the decisions."""
    from tagrelay import runtime

    decisions = []
    for event in events:
        world.clock.tick()
        decisions.append(invoke(runtime.promoter(), {**event, "time": world.event_time()})["decision"])
    return decisions


def pushed(world: FakeWorld, env: str = "prod", **release: Any) -> Release:
    """A new commit on the environment's branch whose images CI pushed (and signed), not promoted."""
    sha = world.commit(BRANCH_OF_ENV[env])
    return world.release(sha, branch=BRANCH_OF_ENV[env], **release)


def deployed(world: FakeWorld, env: str = "prod", *, outcome: str = "SUCCEEDED") -> Release:
    """Promoted by its pushes through the installed promoter, and its outcome recorded as the tracker
    records it (a transition of the deployment, through the ledger port)."""
    release = pushed(world, env)
    assert "promote" in deliver_installed(world, release.events)
    world.clock.tick(60)
    [record] = [r for r in history(world, env) if r.outcome == "committed" and r.tag == release.tag]
    moment = timestamp(world.clock())
    stamps = {"synced_at": moment, "finished_at": moment, "tracked_at": moment}
    if outcome == "SUCCEEDED":
        stamps["healthy_at"] = moment
    assert world.ledger.record_tracking(record, outcome, stamps, final=True)
    return release


def deployment(world: FakeWorld, env: str, tag: str) -> DecisionRecord:
    [record] = [r for r in history(world, env) if r.outcome == "committed" and r.tag == tag]
    return record


def state(world: FakeWorld, env: str) -> EnvironmentState | None:
    return world.ledger.environment_state(APP, env)


def gitops_tag(world: FakeWorld, env: str) -> str:
    text = world.values_file(env).decode()
    [line] = [line for line in text.splitlines() if line.strip().startswith("imageTag:")]
    return line.split(":", 1)[1].split("#", 1)[0].strip().strip('"')


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """The ``tagrelay`` command in-process; returns (exit code, stdout, stderr)."""
    from tagrelay.cli.main import main

    capsys.readouterr()
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def cli_json(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, Any], str]:
    code, out, err = cli(capsys, *argv, "-o", "json")
    return code, json.loads(out), err
