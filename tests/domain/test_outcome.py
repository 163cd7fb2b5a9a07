"""The outcome state machine, rule by rule, including the traps Argo CD's notification triggers, Kargo and argo-watcher ran into.

Observations are built as Argo CD v3 JSON and go through parse_application, so the parser and the
rules are tested together on the shape Argo CD really sends.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tagrelay.domain.outcome import (
    AccessDenied,
    AppMissing,
    ArgoCDUnreachable,
    Blocked,
    Decision,
    DeploymentState,
    DeploymentTimestamps,
    EndWatch,
    Lineage,
    MalformedApplication,
    NoTransition,
    TrackedDeployment,
    Transition,
    evaluate,
    evaluate_environment,
    expected_images,
    flap_outcome,
    nothing_to_watch,
    parse_application,
    parse_application_list,
    superseded_by_newest,
    timeout_for,
    untrackable,
    untrackable_because,
)

T0 = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
OURS = "a" * 40
OLDER = "b" * 40
NEWER = "c" * 40
CHART = "d" * 40
REGISTRY = "033691785857.dkr.ecr.us-east-1.amazonaws.com"
OUR_IMAGES = expected_images(REGISTRY, ["mosaic-life/web", "mosaic-life/core-api"], "abc1234")
OLD_IMAGES = expected_images(REGISTRY, ["mosaic-life/web", "mosaic-life/core-api"], "0ld0000")
# What the tracker would have learned from the ledger or GitHub: none of the other commits contains ours.
KNOWN = Lineage({(OLDER, OURS): False, (NEWER, OURS): False, (CHART, OURS): False})


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def iso(seconds: float) -> str:
    return at(seconds).strftime("%Y-%m-%dT%H:%M:%SZ")


def deployment(
    sha: str = OURS,
    *,
    state: DeploymentState = DeploymentState.COMMITTED,
    committed: float = 0,
    timeout: timedelta = timedelta(minutes=15),
    deployment_id: str = "dep-ours",
) -> TrackedDeployment:
    return TrackedDeployment(
        deployment_id=deployment_id,
        gitops_commit=sha,
        expected_images=OUR_IMAGES,
        committed_at=at(committed),
        state=state,
        timeout=timeout,
    )


def operation(
    sha: str, phase: str, started: float, finished: float | None = None, *, chart: str | None = None, **extra: Any
) -> dict[str, Any]:
    revision: dict[str, Any] = {"revisions": [chart, sha]} if chart else {"revision": sha}
    state: dict[str, Any] = {
        "operation": {"sync": dict(revision), "initiatedBy": {"automated": True}},
        "phase": phase,
        "startedAt": iso(started),
        "syncResult": dict(revision),
    }
    if finished is not None:
        state["finishedAt"] = iso(finished)
    state.update(extra)
    return state


def application(
    *,
    revision: str | None = OURS,
    sync: str = "Synced",
    health: str = "Healthy",
    health_changed: float | None = None,
    reconciled: float | None = 100,
    op: dict[str, Any] | None = None,
    images: tuple[str, ...] = OUR_IMAGES,
    history: list[dict[str, Any]] | None = None,
    conditions: list[dict[str, Any]] | None = None,
    chart: str | None = None,
) -> dict[str, Any]:
    """An Application as Argo CD v3 sends it: omitempty, so absent keys rather than nulls."""
    sync_status: dict[str, Any] = {"status": sync}
    if revision is not None:
        if chart:
            sync_status["revisions"] = [chart, revision]
        else:
            sync_status["revision"] = revision
    status: dict[str, Any] = {"sync": sync_status, "health": {"status": health}, "resourceHealthSource": "appTree"}
    if health_changed is not None:
        status["health"]["lastTransitionTime"] = iso(health_changed)
    if reconciled is not None:
        status["reconciledAt"] = iso(reconciled)
    if op is not None:
        status["operationState"] = op
    if images:
        status["summary"] = {"images": list(images)}
    if history:
        status["history"] = history
    if conditions:
        status["conditions"] = conditions
    return {
        "metadata": {"name": "mosaic-life-prod", "namespace": "argocd", "labels": {"env": "prod"}},
        "spec": {"project": "mosaic-life"},
        "status": status,
    }


def history_entry(
    sha: str, started: float, deployed: float, entry_id: int, *, chart: str | None = None
) -> dict[str, Any]:
    revision: dict[str, Any] = {"revisions": [chart, sha]} if chart else {"revision": sha}
    return {**revision, "deployStartedAt": iso(started), "deployedAt": iso(deployed), "id": entry_id}


def decide(
    document: dict[str, Any], now: float = 120, dep: TrackedDeployment | None = None, lineage: Lineage = KNOWN
) -> Decision:
    return evaluate(dep or deployment(), parse_application(document), at(now), lineage)


def synced_healthy(**overrides: Any) -> dict[str, Any]:
    """Our commit synced at 10..40 s, reconciled at 100 s, Healthy, our images running."""
    arguments: dict[str, Any] = {
        "op": operation(OURS, "Succeeded", 10, 40, message="successfully synced (all tasks run)"),
        "history": [history_entry(OLDER, -600, -590, 41), history_entry(OURS, 10, 40, 42)],
        "health_changed": 90,
    }
    arguments.update(overrides)
    return application(**arguments)


# ---------------------------------------------------------------------------------------------- success


def test_synced_healthy_with_our_images_succeeds_with_history_timestamps() -> None:
    decision = decide(synced_healthy())

    assert isinstance(decision, Transition)
    assert (decision.previous, decision.state) == (DeploymentState.COMMITTED, DeploymentState.SUCCEEDED)
    times = decision.timestamps
    assert (times.deploy_started_at, times.deployed_at) == (at(10), at(40))
    assert (times.sync_started_at, times.synced_at, times.healthy_at) == (at(10), at(40), at(90))
    assert times.decided_at == at(120)
    assert decision.durations.to_sync_start == timedelta(seconds=10)
    assert decision.durations.sync == timedelta(seconds=30)
    assert decision.durations.to_synced == timedelta(seconds=40)
    assert decision.durations.to_healthy == timedelta(seconds=90)


def test_a_later_commit_for_another_environment_leaves_our_sync_running() -> None:
    # Prod and staging share the GitOps branch: Argo CD now compares staging's newer commit for the prod
    # app, finds nothing to change, runs no operation. Our operation and history entry are still newest.
    decision = decide(synced_healthy(revision=NEWER))

    assert isinstance(decision, Transition) and decision.state is DeploymentState.SUCCEEDED


def test_a_later_revision_with_a_newer_history_entry_is_not_ours() -> None:
    moved_on = synced_healthy(
        revision=NEWER,
        history=[history_entry(OURS, 10, 40, 42), history_entry(NEWER, 50, 60, 43)],
    )
    decision = decide(moved_on)

    assert not (isinstance(decision, Transition) and decision.state is DeploymentState.SUCCEEDED)


def test_health_that_never_changed_counts_from_the_end_of_our_sync() -> None:
    # A ConfigMap-only change never leaves Healthy: lastTransitionTime predates the commit.
    decision = decide(synced_healthy(health_changed=-3000))

    assert isinstance(decision, Transition) and decision.state is DeploymentState.SUCCEEDED
    assert decision.timestamps.healthy_at == at(40)


def test_operation_timestamps_are_used_when_history_has_no_entry_for_us() -> None:
    decision = decide(synced_healthy(history=[history_entry(OLDER, -600, -590, 41)]))

    assert isinstance(decision, Transition) and decision.state is DeploymentState.SUCCEEDED
    assert (decision.timestamps.deploy_started_at, decision.timestamps.deployed_at) == (None, None)
    assert (decision.timestamps.sync_started_at, decision.timestamps.synced_at) == (at(10), at(40))


def test_multi_source_app_correlates_on_any_revision_index() -> None:
    # The seed's apps: sources[0] = chart repository, sources[1] = GitOps values (`ref: values`).
    document = synced_healthy(
        chart=CHART,
        op=operation(OURS, "Succeeded", 10, 40, chart=CHART),
        history=[history_entry(OURS, 10, 40, 7, chart=CHART)],
    )
    assert parse_application(document).sync_revisions == (CHART, OURS)

    decision = decide(document)

    assert isinstance(decision, Transition) and decision.state is DeploymentState.SUCCEEDED
    assert decision.timestamps.deployed_at == at(40)


def test_multi_source_chart_revision_alone_is_not_our_commit() -> None:
    document = synced_healthy(
        revision=OLDER, chart=CHART, op=operation(OLDER, "Succeeded", 10, 40, chart=CHART), history=[]
    )
    decision = decide(document)

    assert isinstance(decision, NoTransition)
    assert "pick up" in decision.reason


def test_image_pinned_by_digest_after_the_tag_counts_as_present() -> None:
    pinned = tuple(f"{image}@sha256:{'e' * 64}" for image in OUR_IMAGES)
    decision = decide(synced_healthy(images=pinned))

    assert isinstance(decision, Transition) and decision.state is DeploymentState.SUCCEEDED


def test_our_revision_synced_without_an_operation_of_its_own_can_succeed() -> None:
    # An older operation finished before; the comparison against our commit reports Synced.
    decision = decide(synced_healthy(op=operation(OLDER, "Succeeded", -600, -590), history=[]))

    assert isinstance(decision, Transition) and decision.state is DeploymentState.SUCCEEDED


def test_a_visible_outcome_wins_over_an_elapsed_deadline() -> None:
    # Argo CD was unreachable for a while; when it answers again, the truth is recorded, not a timeout.
    decision = decide(synced_healthy(), now=3600)

    assert isinstance(decision, Transition) and decision.state is DeploymentState.SUCCEEDED


# ---------------------------------------------------------------------------------------------- traps (Argo CD notifications, Kargo, argo-watcher)


def test_trap_healthy_from_before_our_commit_was_picked_up() -> None:
    document = application(
        revision=OLDER, op=operation(OLDER, "Succeeded", -600, -590), images=OLD_IMAGES, reconciled=60
    )
    decision = decide(document)

    assert isinstance(decision, NoTransition)
    assert decision.state is DeploymentState.COMMITTED
    assert "waiting for Argo CD to pick up aaaaaaa" in decision.reason


def test_trap_healthy_while_our_commit_is_compared_but_out_of_sync() -> None:
    document = application(sync="OutOfSync", op=operation(OLDER, "Succeeded", -600, -590), images=OLD_IMAGES)
    decision = decide(document)

    assert isinstance(decision, Transition)
    assert decision.state is DeploymentState.SYNCING
    assert "OutOfSync" in decision.reason


@pytest.mark.parametrize("reconciled", [30, 40], ids=["before-finish", "same-second-as-finish"])
def test_trap_health_not_trusted_until_reconciled_after_the_operation_finished(reconciled: float) -> None:
    decision = decide(synced_healthy(reconciled=reconciled), dep=deployment(state=DeploymentState.SYNCING))

    assert isinstance(decision, NoTransition)
    assert "health not yet fresh" in decision.reason


def test_trap_our_images_missing_from_summary_keeps_waiting() -> None:
    only_web = (OUR_IMAGES[0], OLD_IMAGES[1])
    decision = decide(synced_healthy(images=only_web), dep=deployment(state=DeploymentState.SYNCING))

    assert isinstance(decision, NoTransition)
    assert OUR_IMAGES[1] in decision.reason


def test_trap_missing_images_end_in_a_timeout_that_names_them() -> None:
    decision = decide(synced_healthy(images=OLD_IMAGES), now=15 * 60)

    assert isinstance(decision, Transition) and decision.state is DeploymentState.TIMED_OUT
    assert OUR_IMAGES[0] in decision.reason and OUR_IMAGES[1] in decision.reason


def test_trap_an_older_operation_says_nothing_about_ours() -> None:
    # The last operation (for the previous commit) failed; our commit is not even compared yet.
    failed_older = operation(OLDER, "Failed", -60, -50, message="one or more objects failed to apply")
    decision = decide(application(revision=OLDER, sync="OutOfSync", op=failed_older, images=OLD_IMAGES))

    assert isinstance(decision, NoTransition)
    assert decision.state is DeploymentState.COMMITTED


def test_trap_an_older_operation_still_running_does_not_sync_ours() -> None:
    document = application(sync="OutOfSync", health="Progressing", op=operation(OLDER, "Running", 5))
    decision = decide(document, dep=deployment(state=DeploymentState.SYNCING))

    assert isinstance(decision, NoTransition)
    assert "OutOfSync" in decision.reason


def test_trap_degraded_left_over_from_the_previous_deployment_is_not_ours() -> None:
    # Health is Degraded from the last (bad) rollout; our sync finished but Argo CD has not reconciled.
    document = synced_healthy(health="Degraded", reconciled=35, health_changed=-100)
    decision = decide(document, dep=deployment(state=DeploymentState.SYNCING))

    assert isinstance(decision, NoTransition)


# ---------------------------------------------------------------------------------------------- syncing


def test_operation_running_for_our_commit_moves_to_syncing_with_its_start_time() -> None:
    document = application(sync="OutOfSync", health="Progressing", op=operation(OURS, "Running", 12))
    decision = decide(document)

    assert isinstance(decision, Transition)
    assert decision.state is DeploymentState.SYNCING
    assert decision.timestamps.sync_started_at == at(12)
    assert "sync operation (Running)" in decision.reason


def test_running_operation_without_sync_result_is_correlated_by_the_requested_revision() -> None:
    op = operation(OURS, "Running", 12)
    del op["syncResult"]
    decision = decide(application(sync="OutOfSync", health="Progressing", op=op))

    assert isinstance(decision, Transition) and decision.state is DeploymentState.SYNCING


def test_syncing_that_is_still_syncing_writes_nothing() -> None:
    document = application(sync="OutOfSync", health="Progressing", op=operation(OURS, "Running", 12, retryCount=2))
    decision = decide(document, dep=deployment(state=DeploymentState.SYNCING))

    assert isinstance(decision, NoTransition)
    assert "retry 2" in decision.reason


def test_progressing_after_a_fresh_reconcile_keeps_waiting_for_health() -> None:
    decision = decide(synced_healthy(health="Progressing"), dep=deployment(state=DeploymentState.SYNCING))

    assert isinstance(decision, NoTransition)
    assert "now Progressing" in decision.reason


# ---------------------------------------------------------------------------------------------- failures


@pytest.mark.parametrize("phase", ["Failed", "Error"])
def test_failed_operation_for_our_commit_is_sync_failed(phase: str) -> None:
    op = operation(
        OURS,
        phase,
        10,
        20,
        message="one or more objects failed to apply, reason: Deployment.apps is invalid",
    )
    op["syncResult"]["resources"] = [
        {"kind": "Service", "name": "web", "status": "Synced", "message": "service/web unchanged"},
        {"kind": "Deployment", "name": "web", "status": "SyncFailed", "message": "spec.replicas: Invalid value"},
    ]
    decision = decide(application(sync="OutOfSync", op=op, images=OLD_IMAGES))

    assert isinstance(decision, Transition) and decision.state is DeploymentState.SYNC_FAILED
    assert "Deployment.apps is invalid" in decision.reason
    assert "Deployment/web: spec.replicas: Invalid value" in decision.reason
    assert decision.timestamps.sync_started_at == at(10)
    assert decision.timestamps.synced_at is None


def test_comparison_error_after_our_commit_with_no_revision_is_sync_failed() -> None:
    # A failed manifest generation leaves sync.revision empty.
    condition = {"type": "ComparisonError", "message": "Manifest generation error (cached): helm template failed"}
    document = application(revision=None, sync="Unknown", conditions=[condition], reconciled=30, images=OLD_IMAGES)
    decision = decide(document)

    assert isinstance(decision, Transition) and decision.state is DeploymentState.SYNC_FAILED
    assert "ComparisonError for aaaaaaa: Manifest generation error" in decision.reason


def test_invalid_spec_error_for_our_revision_is_sync_failed() -> None:
    condition = {"type": "InvalidSpecError", "message": "application destination can't have both name and server"}
    decision = decide(application(sync="Unknown", conditions=[condition]))

    assert isinstance(decision, Transition) and decision.state is DeploymentState.SYNC_FAILED


def test_comparison_error_from_before_our_commit_is_not_ours() -> None:
    condition = {"type": "ComparisonError", "message": "rpc error"}
    document = application(revision=None, sync="Unknown", conditions=[condition], reconciled=-30, images=OLD_IMAGES)

    assert isinstance(decide(document), NoTransition)


def test_comparison_error_while_an_older_revision_is_compared_is_not_ours() -> None:
    condition = {"type": "ComparisonError", "message": "rpc error"}
    document = application(revision=OLDER, sync="Unknown", conditions=[condition], reconciled=30, images=OLD_IMAGES)

    assert isinstance(decide(document), NoTransition)


def test_warning_conditions_are_not_failures() -> None:
    conditions = [{"type": "OrphanedResourceWarning", "message": "1 orphaned resource"}]
    decision = decide(synced_healthy(conditions=conditions))

    assert isinstance(decision, Transition) and decision.state is DeploymentState.SUCCEEDED


def test_degraded_after_a_fresh_reconcile_of_our_synced_commit_is_degraded() -> None:
    document = synced_healthy(health="Degraded", health_changed=700)
    document["status"]["health"]["message"] = 'Deployment "web" exceeded its progress deadline'
    decision = decide(document, now=720, dep=deployment(state=DeploymentState.SYNCING))

    assert isinstance(decision, Transition) and decision.state is DeploymentState.DEGRADED
    assert "exceeded its progress deadline" in decision.reason
    assert decision.timestamps.healthy_at is None


def test_degraded_while_out_of_sync_is_ignored() -> None:
    document = application(sync="OutOfSync", health="Degraded", op=operation(OURS, "Running", 10))
    decision = decide(document, dep=deployment(state=DeploymentState.SYNCING))

    assert isinstance(decision, NoTransition)


# ---------------------------------------------------------------------------------------------- timeouts


def test_commit_never_picked_up_times_out_at_the_deadline() -> None:
    document = application(revision=OLDER, op=operation(OLDER, "Succeeded", -600, -590), images=OLD_IMAGES)

    assert isinstance(decide(document, now=15 * 60 - 1), NoTransition)
    decision = decide(document, now=15 * 60)

    assert isinstance(decision, Transition) and decision.state is DeploymentState.TIMED_OUT
    assert "15 min" in decision.reason and "pick up" in decision.reason


def test_operation_stuck_running_past_the_deadline_times_out() -> None:
    document = application(sync="OutOfSync", health="Progressing", op=operation(OURS, "Running", 10))
    decision = decide(document, now=16 * 60, dep=deployment(state=DeploymentState.SYNCING))

    assert isinstance(decision, Transition) and decision.state is DeploymentState.TIMED_OUT
    assert "Running" in decision.reason
    assert decision.timestamps.sync_started_at == at(10)


def test_timeout_is_configurable_per_environment() -> None:
    assert timeout_for(None) == timedelta(minutes=15)
    assert timeout_for(None, default_minutes=20) == timedelta(minutes=20)
    assert timeout_for(5) == timedelta(minutes=5)
    document = application(sync="OutOfSync", health="Progressing", op=operation(OURS, "Running", 10))

    decision = decide(document, now=5 * 60, dep=deployment(timeout=timeout_for(5), state=DeploymentState.SYNCING))

    assert isinstance(decision, Transition) and decision.state is DeploymentState.TIMED_OUT
    assert "5 min" in decision.reason


# ---------------------------------------------------------------------------------------------- missing app, outages


def test_missing_application_is_env_unavailable() -> None:
    missing = AppMissing("mosaic-life-staging", 404, 'applications.argoproj.io "mosaic-life-staging" not found')
    decision = evaluate(deployment(), missing, at(30))

    assert isinstance(decision, Transition) and decision.state is DeploymentState.ENV_UNAVAILABLE
    assert "HTTP 404" in decision.reason and "not found" in decision.reason
    assert not decision.state.is_failure


@given(
    state=st.sampled_from([DeploymentState.COMMITTED, DeploymentState.SYNCING]),
    minutes_later=st.integers(min_value=0, max_value=10_000),
    project=st.sampled_from([None, "mosaic-life"]),
)
@settings(max_examples=50)
def test_lost_permission_is_never_an_outcome(state: DeploymentState, minutes_later: int, project: str | None) -> None:
    denied = AccessDenied("mosaic-life-prod", project)
    decision = evaluate(deployment(state=state), denied, at(60 * minutes_later))

    assert isinstance(decision, NoTransition) and decision.state is state
    assert decision.blocked is Blocked.PERMISSION_DENIED
    assert decision.overdue == (minutes_later >= 15)
    assert ("argocd_project" in decision.reason) == (project is None)


@given(
    state=st.sampled_from([DeploymentState.COMMITTED, DeploymentState.SYNCING]),
    minutes_later=st.integers(min_value=0, max_value=10_000),
)
@settings(max_examples=50)
def test_unreachable_argocd_never_changes_a_deployment(state: DeploymentState, minutes_later: int) -> None:
    decision = evaluate(deployment(state=state), ArgoCDUnreachable("connection refused"), at(60 * minutes_later))

    assert isinstance(decision, NoTransition)
    assert decision.state is state
    assert "retrying next run" in decision.reason


def test_unreachable_argocd_supersedes_nothing_either() -> None:
    older = deployment(OLDER, committed=0, deployment_id="old", state=DeploymentState.SYNCING)
    newer = deployment(NEWER, committed=60, deployment_id="new")

    decisions = evaluate_environment([older, newer], ArgoCDUnreachable("timeout"), at(5000))

    assert all(isinstance(d, NoTransition) for d in decisions)


@pytest.mark.parametrize("state", sorted(state for state in DeploymentState if state.is_terminal))
def test_terminal_deployments_never_change(state: DeploymentState) -> None:
    assert isinstance(decide(synced_healthy(health="Degraded"), dep=deployment(state=state)), NoTransition)


# ---------------------------------------------------------------------------------------------- superseded


def test_newest_commit_supersedes_older_in_flight_deployments() -> None:
    first = deployment(OLDER, committed=0, deployment_id="first")
    second = deployment("e" * 40, committed=30, deployment_id="second", state=DeploymentState.SYNCING)
    newest = deployment(NEWER, committed=60, deployment_id="newest")
    done = deployment("f" * 40, committed=-60, deployment_id="done", state=DeploymentState.SUCCEEDED)

    pairs = superseded_by_newest([newest, first, done, second])

    assert [(old.deployment_id, new.deployment_id) for old, new in pairs] == [("first", "newest"), ("second", "newest")]


def test_deployments_committed_at_the_same_time_do_not_supersede_each_other() -> None:
    one = deployment(OLDER, committed=10, deployment_id="one")
    two = deployment(NEWER, committed=10, deployment_id="two")

    assert superseded_by_newest([one, two]) == []
    assert superseded_by_newest([one]) == []


def test_evaluate_environment_supersedes_the_older_and_tracks_the_newest() -> None:
    older = deployment(OLDER, committed=0, deployment_id="old", state=DeploymentState.SYNCING)
    newest = deployment(OURS, committed=60, deployment_id="new")
    document = application(sync="OutOfSync", health="Progressing", op=operation(OURS, "Running", 70))

    old_decision, new_decision = evaluate_environment([older, newest], parse_application(document), at(80))

    assert isinstance(old_decision, Transition) and old_decision.state is DeploymentState.SUPERSEDED
    assert old_decision.superseded_by == "new"
    assert old_decision.deployment_id == "old"
    assert isinstance(new_decision, Transition) and new_decision.state is DeploymentState.SYNCING


def test_a_newer_success_still_watched_supersedes_an_older_deployment_and_ends_no_watch_of_its_own() -> None:
    older = deployment(OLDER, committed=0, deployment_id="old", state=DeploymentState.SYNCING)
    newer = replace(
        deployment(OURS, committed=60, deployment_id="new", state=DeploymentState.SUCCEEDED), watch_until=at(400)
    )

    old_decision, new_decision = evaluate_environment(
        [older, newer], parse_application(synced_healthy()), at(120), KNOWN
    )

    assert isinstance(old_decision, Transition) and old_decision.state is DeploymentState.SUPERSEDED
    assert old_decision.superseded_by == "new"
    assert isinstance(new_decision, NoTransition) and "watching for a flap" in new_decision.reason


def test_an_older_deployment_whose_outcome_is_visible_keeps_it() -> None:
    # The older commit became Healthy before Argo CD picked up the newer one: it did reach production.
    older = TrackedDeployment("old", OLDER, OLD_IMAGES, at(0), DeploymentState.SYNCING)
    newest = deployment(OURS, committed=60, deployment_id="new")
    document = application(
        revision=OLDER,
        op=operation(OLDER, "Succeeded", 10, 40),
        images=OLD_IMAGES,
        history=[history_entry(OLDER, 10, 40, 9)],
    )

    old_decision, new_decision = evaluate_environment([older, newest], parse_application(document), at(80))

    assert isinstance(old_decision, Transition) and old_decision.state is DeploymentState.SUCCEEDED
    assert isinstance(new_decision, NoTransition)


@pytest.mark.parametrize(
    ("newer_committed", "outcome"),
    [(120, DeploymentState.TIMED_OUT), (30, DeploymentState.SUPERSEDED)],
    ids=["deadline-before-newer-commit", "newer-commit-before-deadline"],
)
def test_an_older_deployment_past_its_deadline_timed_out_only_if_that_came_first(
    newer_committed: float, outcome: DeploymentState
) -> None:
    older = deployment(OLDER, committed=0, deployment_id="old", timeout=timedelta(minutes=1))
    newest = deployment(OURS, committed=newer_committed, deployment_id="new")
    document = application(revision=CHART, images=OLD_IMAGES)

    old_decision, _ = evaluate_environment([older, newest], parse_application(document), at(130))

    assert isinstance(old_decision, Transition) and old_decision.state is outcome


def test_synced_then_replaced_by_an_untracked_revision_is_superseded() -> None:
    # Someone committed by hand on top of ours; Argo CD deployed ours (history) and then theirs.
    document = application(
        revision=NEWER,
        op=operation(NEWER, "Succeeded", 50, 55),
        images=OUR_IMAGES,
        history=[history_entry(OURS, 10, 40, 42), history_entry(NEWER, 50, 55, 43)],
    )
    decision = decide(document, dep=deployment(state=DeploymentState.SYNCING))

    assert isinstance(decision, Transition) and decision.state is DeploymentState.SUPERSEDED
    assert decision.superseded_by is None
    assert decision.timestamps.deployed_at == at(40)


# ---------------------------------------------------------------------------------------------- invariants


def test_illegal_transitions_cannot_be_built() -> None:
    with pytest.raises(ValueError, match="illegal transition"):
        Transition("x", DeploymentState.SUCCEEDED, DeploymentState.SYNC_FAILED, "late", decision_times())
    with pytest.raises(ValueError, match="illegal transition"):
        Transition("x", DeploymentState.DEGRADED, DeploymentState.SUCCEEDED, "recovered", decision_times())
    with pytest.raises(ValueError, match="illegal transition"):
        Transition("x", DeploymentState.SYNCING, DeploymentState.COMMITTED, "back", decision_times())


def decision_times() -> Any:
    from tagrelay.domain.outcome import DeploymentTimestamps

    return DeploymentTimestamps(committed_at=T0)


@pytest.mark.parametrize(
    ("sha", "committed_at", "message"),
    [
        ("abc1234", T0, "full lower-case commit SHA"),
        ("A" * 40, T0, "full lower-case commit SHA"),
        (OURS, datetime(2026, 3, 1), "timezone-aware"),  # naive on purpose
    ],
)
def test_tracked_deployment_rejects_what_cannot_be_correlated(sha: str, committed_at: datetime, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        TrackedDeployment("x", sha, OUR_IMAGES, committed_at)


def test_durations_never_go_negative_when_clocks_disagree() -> None:
    document = synced_healthy(op=operation(OURS, "Succeeded", -5, 40), history=[])
    decision = decide(document)

    assert isinstance(decision, Transition)
    assert decision.durations.to_sync_start == timedelta(0)


_phases = st.sampled_from(["Running", "Terminating", "Succeeded", "Failed", "Error"])
_revisions = st.sampled_from([OURS, OLDER, None])


@given(
    revision=_revisions,
    sync=st.sampled_from(["Synced", "OutOfSync", "Unknown"]),
    health=st.sampled_from(["Healthy", "Progressing", "Degraded", "Suspended", "Missing", "Unknown"]),
    op_revision=st.sampled_from([OURS, OLDER]),
    phase=_phases,
    finished=st.integers(min_value=10, max_value=200),
    reconciled=st.integers(min_value=0, max_value=200),
    images=st.sampled_from([OUR_IMAGES, OLD_IMAGES, OUR_IMAGES[:1], ()]),
)
@settings(max_examples=300)
def test_succeeded_only_when_every_rule_holds(
    *,
    revision: str | None,
    sync: str,
    health: str,
    op_revision: str,
    phase: str,
    finished: int,
    reconciled: int,
    images: tuple[str, ...],
) -> None:
    running = phase in {"Running", "Terminating"}
    document = application(
        revision=revision,
        sync=sync,
        health=health,
        reconciled=reconciled,
        op=operation(op_revision, phase, 5, None if running else finished),
        images=images,
    )
    decision = decide(document, now=300)

    if isinstance(decision, Transition) and decision.state is DeploymentState.SUCCEEDED:
        assert revision == OURS and sync == "Synced" and health == "Healthy"
        assert set(OUR_IMAGES) <= set(images)
        assert not running and reconciled > finished
        assert op_revision != OURS or phase == "Succeeded"


# ---------------------------------------------------------------------------------------------- parser


def test_parser_reads_the_wire_format_example() -> None:
    document = {
        "metadata": {"name": "my-app-prod", "labels": {"team": "payments", "env": "prod"}},
        "spec": {"project": "payments"},
        "status": {
            "sync": {"status": "Synced", "revision": "9F1C2D7E4B8A6C0D1E2F3A4B5C6D7E8F9A0B1C2D"},
            "health": {"status": "Healthy", "lastTransitionTime": "2025-06-02T10:04:31Z"},
            "history": [
                {"revision": "9f1c2d7e4b8a6c0d1e2f3a4b5c6d7e8f9a0b1c2d", "deployedAt": "2025-06-02T10:03:58Z", "id": 42}
            ],
            "reconciledAt": "2025-06-02T10:07:12Z",
            "operationState": {
                "operation": {"sync": {"revision": "9f1c2d7e4b8a6c0d1e2f3a4b5c6d7e8f9a0b1c2d"}},
                "phase": "Succeeded",
                "message": "successfully synced (all tasks run)",
                "syncResult": {"revision": "9f1c2d7e4b8a6c0d1e2f3a4b5c6d7e8f9a0b1c2d", "resources": []},
                "startedAt": "2025-06-02T10:03:55Z",
                "finishedAt": "2025-06-02T10:03:58Z",
            },
            "summary": {"images": ["123456789012.dkr.ecr.eu-west-1.amazonaws.com/my-app:1a2b3c4"]},
            "resourceHealthSource": "appTree",
        },
    }
    app = parse_application(document)

    assert app.name == "my-app-prod" and app.project == "payments"
    assert app.labels == {"team": "payments", "env": "prod"}
    assert app.sync_revisions == ("9f1c2d7e4b8a6c0d1e2f3a4b5c6d7e8f9a0b1c2d",)
    assert app.reconciled_at == datetime(2025, 6, 2, 10, 7, 12, tzinfo=UTC)
    assert app.operation is not None and app.operation.completed
    assert app.operation.finished_at == datetime(2025, 6, 2, 10, 3, 58, tzinfo=UTC)
    assert app.history[0].id == 42 and app.history[0].deploy_started_at is None
    assert app.images == ("123456789012.dkr.ecr.eu-west-1.amazonaws.com/my-app:1a2b3c4",)


def test_parser_tolerates_a_bare_application_and_nulls() -> None:
    app = parse_application(
        {
            "metadata": {"name": "new-app", "labels": None},
            "status": {"sync": None, "operationState": {}, "history": None},
        }
    )

    assert (app.sync_status, app.sync_revisions, app.health_status) == ("Unknown", (), None)
    assert app.operation is None and app.history == () and app.images == ()


def test_parser_ignores_unparseable_times() -> None:
    app = parse_application(
        {"metadata": {"name": "x"}, "status": {"reconciledAt": "yesterday", "health": {"lastTransitionTime": 5}}}
    )

    assert app.reconciled_at is None and app.health_changed_at is None


@pytest.mark.parametrize("document", [[], {"metadata": {}}, {"status": {}}, {"metadata": {"name": ""}}])
def test_parser_rejects_what_is_not_an_application(document: Any) -> None:
    with pytest.raises(MalformedApplication):
        parse_application(document)


def test_list_parser_reads_items_and_tolerates_absent_items() -> None:
    listing = {
        "metadata": {"resourceVersion": "1"},
        "items": [{"metadata": {"name": "a"}}, {"metadata": {"name": "b"}}],
    }

    assert [app.name for app in parse_application_list(listing)] == ["a", "b"]
    assert parse_application_list({"metadata": {}}) == []


def test_a_deployment_no_argo_cd_application_can_tell_about_becomes_env_unavailable() -> None:
    assert untrackable_because("web", "prod", configured=True, argocd_app="web-prod") is None
    assert untrackable_because("web", "prod", configured=False, argocd_app=None) == "web/prod is no longer configured"
    assert untrackable_because("web", "prod", configured=True, argocd_app=None) == "web/prod names no argocd_app"
    committed = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
    now = committed + timedelta(minutes=3)
    transition = untrackable("d-1", DeploymentState.SYNCING, committed, "web/prod names no argocd_app", now)
    assert (transition.previous, transition.state, transition.final) == (
        DeploymentState.SYNCING,
        DeploymentState.ENV_UNAVAILABLE,
        True,
    )
    assert transition.reason == "web/prod names no argocd_app: the outcome cannot be tracked"
    assert transition.timestamps.decided_at == now


def test_a_deployment_already_decided_and_not_watched_leaves_the_in_flight_set() -> None:
    assert nothing_to_watch(deployment(state=DeploymentState.SYNCING)) is None
    watched = replace(deployment(state=DeploymentState.SUCCEEDED), watch_until=at(600))
    assert nothing_to_watch(watched) is None  # a flap may still come
    ended = nothing_to_watch(deployment(state=DeploymentState.DEGRADED))
    assert ended == EndWatch("dep-ours", "already DEGRADED; nothing to watch")


def test_a_flap_after_a_newer_deployment_became_current_ends_the_watch_instead() -> None:
    times = DeploymentTimestamps(committed_at=at(0), decided_at=at(120))
    flap = Transition("dep-ours", DeploymentState.SUCCEEDED, DeploymentState.DEGRADED, "r", times, flapped_at=at(110))
    assert flap_outcome(flap, current_deployment_id="dep-ours") is flap
    assert flap_outcome(flap, current_deployment_id=None) is flap
    assert flap_outcome(flap, current_deployment_id="dep-newer") == EndWatch("dep-ours", "a newer deployment exists")
    first = Transition("dep-ours", DeploymentState.SYNCING, DeploymentState.DEGRADED, "r", times)
    assert flap_outcome(first, current_deployment_id="dep-newer") is first  # not a flap: recorded as it is
