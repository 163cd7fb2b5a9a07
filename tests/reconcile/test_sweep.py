"""The reconcile sweep: the backstop for lost events, overdue unsigned releases, stuck releases and hand
edits of the GitOps repository. Driven through the reconciler handler with a real-shaped scheduled
event, on the local stack; the promoter's events through the promoter handler.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from botocore.client import BaseClient

from devstack.lambda_context import lambda_context
from devstack.scenario import BRANCH_OF_ENV, Release, SeedScenario
from devstack.stack import LocalStack
from tagrelay.domain.values_patch import set_value
from tests.operator.support import gitops_tag, pushed, records, state, subjects
from tests.tracking.support import TrackerSetup, cli, deliver, deployment

pytestmark = pytest.mark.stack

SCHEDULED = {
    "version": "0",
    "id": "5a1c7e1d-2f39-4c77-9d3e-0c1e6f0a8b11",
    "detail-type": "Scheduled Event",
    "source": "aws.events",
    "account": "123456789012",
    "time": "2026-12-05T10:00:00Z",
    "region": "us-east-1",
    "resources": ["arn:aws:events:us-east-1:123456789012:rule/tagrelay-reconcile"],
    "detail": {},
}


def sweep() -> dict[str, Any]:
    from tagrelay.handlers.reconciler import handler

    result: dict[str, Any] = handler(SCHEDULED, lambda_context("reconciler"))
    return result


def sweep_env(tracker_env: Callable[..., TrackerSetup], **reconcile: Any) -> TrackerSetup:
    return tracker_env(extra={"reconcile": reconcile} if reconcile else None)


def lost_completion(scenario: SeedScenario, setup: TrackerSetup, env: str = "prod") -> Release:
    """CI pushes web, whose events arrive (the release waits for core-api), then core-api, whose events
    are all lost (EventBridge delivery is best effort). Returns the whole release."""
    sha = scenario.commit(BRANCH_OF_ENV[env])
    first = scenario.release(sha, branch=BRANCH_OF_ENV[env], images=scenario.images[:1])
    assert set(deliver(first, setup)) == {"wait"}
    rest = scenario.release(sha, branch=BRANCH_OF_ENV[env], images=scenario.images[1:])
    return Release(sha, first.tag, {**first.digests, **rest.digests}, first.events + rest.events)


def hand_edit(scenario: SeedScenario, env: str, tag: str, message: str) -> str:
    """Someone edits the values file by hand and pushes: the GitOps commit's SHA."""
    path = f"environments/{env}/values.yaml"
    edited = set_value(scenario.values_file(env).decode(), "global.imageTag", tag).text
    return scenario.gitops.commit_files({path: edited}, message)


# ------------------------------------------------------------------------ lost events


def test_a_release_whose_completing_event_was_lost_is_promoted_by_the_sweep(
    scenario: SeedScenario, tracker_env: Callable[..., TrackerSetup]
) -> None:
    setup = sweep_env(tracker_env)
    release = lost_completion(scenario, setup)
    assert gitops_tag(scenario, "prod") != release.tag

    result = sweep()

    assert gitops_tag(scenario, "prod") == release.tag
    assert subjects(scenario)[0] == f"deploy(prod): update image tag to {release.tag}"
    committed = deployment("prod", release.tag)
    assert committed.trigger == "push" and committed.event_ids and committed.event_ids[0].startswith("reconcile:")
    assert [(r["tag"], r["decision"]) for r in result["releases"]] == [(release.tag, "promote")]
    current = state("prod")
    assert current is not None and current.current_tag == release.tag
    # The next run has nothing left to do for it.
    assert sweep()["releases"] == []


def test_an_unsigned_release_with_no_later_event_is_rejected_once_overdue(
    scenario: SeedScenario, tracker_env: Callable[..., TrackerSetup]
) -> None:
    setup = sweep_env(tracker_env)
    release = pushed(scenario, "prod", sign=False)
    assert set(deliver(release, setup)) == {"wait"}

    assert [(r["tag"], r["decision"], r["reason"]) for r in sweep()["releases"]] == [
        (release.tag, "wait", "signature_missing")
    ]
    setup.control.tick(16 * 60)  # past promotion.signature_grace_minutes (15)
    result = sweep()

    assert [(r["tag"], r["decision"], r["reason"]) for r in result["releases"]] == [
        (release.tag, "reject", "signature_missing")
    ]
    [rejected] = [r for r in records("prod") if r.outcome == "rejected"]
    assert (rejected.tag, rejected.reason) == (release.tag, "signature_missing")
    assert "still unsigned 16 min after" in rejected.message
    assert sweep()["releases"] == []


def test_a_release_waiting_past_the_threshold_is_reported_stuck_with_its_reason(
    scenario: SeedScenario, tracker_env: Callable[..., TrackerSetup], capsys: pytest.CaptureFixture[str]
) -> None:
    from infra import pipeline_metrics

    setup = sweep_env(tracker_env, stuck_after_minutes=30)
    incomplete = pushed(scenario, "prod", images=scenario.images[:1])  # core-api never pushed
    assert set(deliver(incomplete, setup)) == {"wait"}
    assert sweep()["stuck"] == []

    setup.control.tick(31 * 60)
    capsys.readouterr()
    result = sweep()
    lines = capsys.readouterr().out.splitlines()

    [stuck] = result["stuck"]
    assert (stuck["tag"], stuck["reason"]) == (incomplete.tag, "release_incomplete")
    assert f"{scenario.images[1]} has no tag {incomplete.tag}" in stuck["message"]
    emitted = [json.loads(line) for line in lines if '"_aws"' in line]
    [document] = [
        document
        for document in emitted
        for directive in document["_aws"]["CloudWatchMetrics"]
        if directive["Metrics"][0]["Name"] == pipeline_metrics.RELEASES_STUCK_METRIC
    ]
    assert document[pipeline_metrics.RELEASES_STUCK_METRIC] == [1.0]
    # The reason travels with the count, in the record the alarm's metric comes from.
    assert document["stuck_releases"] == [{"app": "mosaic-life", "tag": incomplete.tag, "reason": "release_incomplete"}]


def test_releases_first_seen_before_the_lookback_are_left_alone(
    scenario: SeedScenario, tracker_env: Callable[..., TrackerSetup]
) -> None:
    setup = sweep_env(tracker_env, lookback_hours=1)
    release = lost_completion(scenario, setup)
    setup.control.tick(2 * 3600)

    assert sweep()["releases"] == []
    assert gitops_tag(scenario, "prod") != release.tag


# ------------------------------------------------------------------------ hand edits


def test_a_hand_edit_is_recorded_as_an_external_change_and_becomes_current(
    scenario: SeedScenario, tracker_env: Callable[..., TrackerSetup], capsys: pytest.CaptureFixture[str]
) -> None:
    setup = sweep_env(tracker_env)
    first = pushed(scenario, "prod")
    assert "promote" in deliver(first, setup)
    second = pushed(scenario, "prod")
    assert "promote" in deliver(second, setup)
    commit = hand_edit(scenario, "prod", first.tag, f"hotfix: back to {first.tag} by hand")
    # A later hand edit of another key: the walk back through the file's history passes over it.
    path = "environments/prod/values.yaml"
    scenario.gitops.commit_files({path: scenario.values_file("prod") + b"# reviewed by hand\n"}, "docs: a note")

    result = sweep()

    [change] = [r for r in records("prod") if r.reason == "external_change"]
    assert (change.outcome, change.trigger, change.tag, change.previous_tag) == (
        "committed",
        "external",
        first.tag,
        second.tag,
    )
    assert change.gitops_commit == commit and change.actor == "seed"  # the author's GitHub login
    assert f"hotfix: back to {first.tag} by hand" in change.message
    current = state("prod")
    assert current is not None and (current.current_tag, current.gitops_commit) == (first.tag, commit)
    # (staging, which tagrelay never deployed, is recorded as found: the seed's commit set its tag.)
    assert [(e["env"], e["tag"]) for e in result["external_changes"]] == [
        ("prod", first.tag),
        ("staging", "staging-545ef16"),
    ]
    code, out, _ = cli(capsys, "history", "--env", "prod", "--config", str(setup.config_path))
    assert code == 0 and "external_change" in out
    # Seen once: the next run records nothing new.
    assert sweep()["external_changes"] == []
    assert len([r for r in records("prod") if r.reason == "external_change"]) == 1


def test_a_hand_edit_of_another_key_is_not_an_external_change(
    scenario: SeedScenario, tracker_env: Callable[..., TrackerSetup]
) -> None:
    setup = sweep_env(tracker_env)
    release = pushed(scenario, "prod")
    assert "promote" in deliver(release, setup)
    path = "environments/prod/values.yaml"
    scenario.gitops.commit_files({path: scenario.values_file("prod") + b"# reviewed by hand\n"}, "docs: a note")

    assert [e for e in sweep()["external_changes"] if e["env"] == "prod"] == []
    current = state("prod")
    assert current is not None and current.current_tag == release.tag


# ------------------------------------------------------------------------ what a run may cost


def test_a_run_never_scans_the_table_nor_lists_tags(
    stack: LocalStack,
    scenario: SeedScenario,
    tracker_env: Callable[..., TrackerSetup],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    setup = sweep_env(tracker_env)
    for env in BRANCH_OF_ENV:
        assert "promote" in deliver(pushed(scenario, env), setup)
    waiting = pushed(scenario, "prod", images=scenario.images[:1])
    deliver(waiting, setup)
    operations: list[str] = []
    original = getattr(BaseClient, "_make_api_call")  # noqa: B009 - private to botocore, untyped

    def recording(self: BaseClient, operation_name: str, api_params: dict[str, Any]) -> Any:
        if self.meta.service_model.service_name == "dynamodb":
            operations.append(operation_name)
        return original(self, operation_name, api_params)

    monkeypatch.setattr(BaseClient, "_make_api_call", recording)
    stack.github_control.clear_requests()

    result = sweep()

    assert "Scan" not in operations and operations
    assert not [r for r in stack.github_control.requests() if "/tags" in r["path"]]
    budget = result["requests"]
    assert budget["dynamodb"] == len(operations)
    assert budget["github"] == len(stack.github_control.requests())
