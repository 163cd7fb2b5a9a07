"""The parser and the outcome rules on Application documents taken from Argo CD's own sources.

tests/testdata/argocd/README.md says where each document comes from (argoproj/argo-cd v3.5.1). These
tests hold the tracker to what Argo CD writes, not to what our simulator writes.
"""

from __future__ import annotations

import copy
from datetime import datetime, timedelta
from typing import Any

import pytest

from tagrelay.domain.outcome import (
    AccessDenied,
    AppMissing,
    ArgoCDUnreachable,
    DeploymentState,
    EndWatch,
    Lineage,
    NoTransition,
    TrackedDeployment,
    Transition,
    evaluate,
    parse_application,
    revisions_to_check,
    same_repository,
)
from tests.argocd_shapes import fixture

ROLLED_BACK_FROM = "4f9ae2d0c6d5f1a7b3e8c9d2a1b0f6e5d4c3b2a1"  # the README's invented SHA
VELERO = "ea8759964626a583667a2bfd08f334ec2070040a"  # diff-cache.yaml's revision
FAKE = "a" * 40  # appcontroller_test.go's revision


def at(value: str) -> datetime:
    return datetime.fromisoformat(value)


def tracked(sha: str, committed: str, **overrides: Any) -> TrackedDeployment:
    fields: dict[str, Any] = {
        "deployment_id": "ours",
        "gitops_commit": sha,
        "expected_images": ("nginx:latest",),
        "committed_at": at(committed),
        "gitops_repo": "foo/manifests-velero",
    }
    fields.update(overrides)
    return TrackedDeployment(**fields)


# --------------------------------------------------------------------------------------------- parsing


def test_a_real_application_parses_with_its_initiator_history_and_a_non_commit_revision() -> None:
    app = parse_application(fixture("healthy-manual-sync.json"))

    assert (app.name, app.project, app.auto_sync) == ("velero-test", "sre", False)
    assert app.sync_revisions == ("rev1",)  # Argo CD's own test data: not every revision is a SHA
    assert app.operation is not None
    assert (app.operation.initiated_by, app.operation.automated) == ("foo@example.com", False)
    assert app.operation.initiator == "foo@example.com"
    assert app.operation.revisions == (VELERO,)
    assert [entry.id for entry in app.history] == list(range(14, 24))
    assert app.images == ("nginx:latest",)
    assert app.revision_repos[VELERO] == "https://github.com/foo/manifests-velero.git"
    assert app.reconciled_at == app.operation.finished_at


def test_a_multi_source_application_pairs_each_revision_with_its_repository() -> None:
    app = parse_application(fixture("multi-source-synced.json"))

    assert app.operation is not None and app.operation.revisions == ("a" * 40, "b" * 40, "c" * 40)
    assert app.revision_repos == {
        "a" * 40: "https://github.com/argoproj/argocd-example-apps.git",
        "b" * 40: "https://github.com/argoproj/argocd-example-apps-fake.git",
        "c" * 40: "https://github.com/argoproj/argocd-example-apps-fake-ref.git",
    }
    # Only the GitOps repository's commit is worth asking GitHub about.
    deployment = tracked("e" * 40, "2018-09-21T23:50:00Z", gitops_repo="argoproj/argocd-example-apps-fake-ref")
    assert revisions_to_check(deployment, app) == ("c" * 40,)


# --------------------------------------------------------------------------------------------- rules


def test_health_is_not_trusted_when_argo_cd_reconciled_in_the_second_the_sync_finished() -> None:
    document = fixture("healthy-manual-sync.json")
    deployment = tracked(VELERO, "2024-03-05T07:33:00Z")

    waiting = evaluate(deployment, parse_application(document), at("2024-03-05T07:34:00Z"))
    assert isinstance(waiting, Transition) and waiting.state is DeploymentState.SYNCING
    assert "health not yet fresh" in waiting.reason

    document["status"]["reconciledAt"] = "2024-03-05T07:33:05Z"
    decision = evaluate(deployment, parse_application(document), at("2024-03-05T07:34:00Z"))
    assert isinstance(decision, Transition) and decision.state is DeploymentState.SUCCEEDED
    assert decision.initiated_by == "foo@example.com"
    assert decision.timestamps.deployed_at == at("2024-03-05T07:33:04Z")  # history entry 23


def test_a_failed_apply_with_retries_left_is_not_a_failure() -> None:
    app = parse_application(fixture("retry-waiting-for-backoff.json"))
    deployment = tracked(FAKE, "2018-09-21T23:50:00Z", expected_images=())

    decision = evaluate(deployment, app, at("2018-09-21T23:50:40Z"))

    assert isinstance(decision, Transition) and decision.state is DeploymentState.SYNCING
    assert "retry 1" in decision.reason and "Retrying attempt #1 at 11:50PM." in decision.reason
    late = evaluate(deployment, app, at("2018-09-22T00:05:00Z"))
    assert isinstance(late, Transition) and late.state is DeploymentState.TIMED_OUT  # never SYNC_FAILED


def test_a_retry_attempt_without_a_result_is_correlated_by_the_requested_revision() -> None:
    app = parse_application(fixture("retry-attempt-running.json"))
    assert app.operation is not None and app.operation.revisions == (FAKE,) and app.operation.retry_count == 1

    decision = evaluate(tracked(FAKE, "2018-09-21T23:50:00Z"), app, at("2018-09-21T23:50:40Z"))

    assert isinstance(decision, Transition) and decision.state is DeploymentState.SYNCING
    assert "Retrying operation. Attempt #1" in decision.reason


def test_retries_that_ran_out_are_sync_failed_with_argo_cds_message() -> None:
    app = parse_application(fixture("retries-exhausted.json"))

    decision = evaluate(tracked(FAKE, "2018-09-21T23:50:00Z"), app, at("2018-09-21T23:54:00Z"))

    assert isinstance(decision, Transition) and decision.state is DeploymentState.SYNC_FAILED
    assert "(retried 5 times)." in decision.reason and "Deployment/guestbook" in decision.reason
    assert decision.initiated_by == "automated"


def test_a_rollback_by_a_user_supersedes_ours_once_the_lineage_is_known() -> None:
    app = parse_application(fixture("rollback-succeeded.json"))
    deployment = tracked(ROLLED_BACK_FROM, "2024-03-05T08:09:00Z", state=DeploymentState.SYNCING)
    now = at("2024-03-05T08:21:00Z")

    # The rolled-back revision was seen after our commit: is it an older one? The tracker must ask first.
    assert revisions_to_check(deployment, app) == (VELERO,)
    unknown = evaluate(deployment, app, now)
    assert isinstance(unknown, NoTransition) and f"checking whether {VELERO[:7]} contains" in unknown.reason

    decision = evaluate(deployment, app, now, Lineage({(VELERO, ROLLED_BACK_FROM): False}))

    assert isinstance(decision, Transition) and decision.state is DeploymentState.SUPERSEDED
    assert decision.initiated_by == "admin"
    assert decision.reason.startswith(f"admin ran an Argo CD sync of {VELERO[:7]}")


def test_a_repo_server_error_after_our_commit_is_transient_until_the_deadline() -> None:
    app = parse_application(fixture("comparison-error-repo-server.json"))
    deployment = tracked("b" * 40, "2024-03-05T08:29:00Z")

    waiting = evaluate(deployment, app, at("2024-03-05T08:31:30Z"))
    assert isinstance(waiting, NoTransition)
    assert "treated as transient until the deadline" in waiting.reason

    late = evaluate(deployment, app, at("2024-03-05T08:44:00Z"))
    assert isinstance(late, Transition) and late.state is DeploymentState.TIMED_OUT
    assert "rpc error: code = Unavailable" in late.reason


def test_a_manifest_error_after_our_commit_fails_it_with_argo_cds_message() -> None:
    app = parse_application(fixture("comparison-error-manifest.json"))
    assert app.sync_revisions == ("test-lla",)  # v3.2+: the target revision, not a commit

    decision = evaluate(tracked("b" * 40, "2024-03-05T08:29:00Z"), app, at("2024-03-05T08:31:30Z"))

    assert isinstance(decision, Transition) and decision.state is DeploymentState.SYNC_FAILED
    assert "Manifest generation error (cached): open does-not-exist-values.yaml" in decision.reason


def test_an_error_reported_in_the_second_of_our_commit_is_about_it() -> None:
    # Argo CD writes times to the second: 08:30:00 may be 08:30:00.999, after our commit at 08:30:00.400.
    document = fixture("comparison-error-manifest.json")
    document["status"]["reconciledAt"] = "2024-03-05T08:30:00Z"

    decision = evaluate(
        tracked("b" * 40, "2024-03-05T08:30:00.400Z"), parse_application(document), at("2024-03-05T08:30:30Z")
    )

    assert isinstance(decision, Transition) and decision.state is DeploymentState.SYNC_FAILED


def test_a_manifest_error_from_before_our_commit_does_not_fail_it() -> None:
    app = parse_application(fixture("comparison-error-manifest.json"))

    decision = evaluate(tracked("b" * 40, "2024-03-05T08:30:30Z"), app, at("2024-03-05T08:31:30Z"))

    assert isinstance(decision, NoTransition) and "since before our commit" in decision.reason


def test_the_same_error_about_another_commit_is_not_ours() -> None:
    document = copy.deepcopy(fixture("comparison-error-manifest.json"))
    document["status"]["sync"]["revision"] = VELERO  # Argo CD resolved and compared an older commit
    app = parse_application(document)

    decision = evaluate(
        tracked("b" * 40, "2024-03-05T08:29:00Z"), app, at("2024-03-05T08:31:30Z"), Lineage({(VELERO, "b" * 40): False})
    )

    assert isinstance(decision, NoTransition) and "about another revision" in decision.reason


def test_a_later_revision_that_contains_ours_counts_as_ours() -> None:
    document = fixture("healthy-manual-sync.json")
    document["status"]["reconciledAt"] = "2024-03-05T07:33:05Z"
    ours = "c" * 40  # committed before the sync of ea87599, which contains it
    deployment = tracked(ours, "2024-03-05T07:32:50Z")
    app = parse_application(document)

    assert revisions_to_check(deployment, app) == (VELERO,)
    assert isinstance(evaluate(deployment, app, at("2024-03-05T07:34:00Z")), NoTransition)

    decision = evaluate(deployment, app, at("2024-03-05T07:34:00Z"), Lineage({(VELERO, ours): True}))

    assert isinstance(decision, Transition) and decision.state is DeploymentState.SUCCEEDED
    assert f"synced via {VELERO[:7]}, which contains {ours[:7]}" in decision.reason
    assert decision.timestamps.synced_at == at("2024-03-05T07:33:04Z")
    assert decision.watch_until == at("2024-03-05T07:38:04Z")  # healthy (the sync's end) + 5 min


def test_a_revision_argo_cd_reported_before_our_commit_is_not_looked_up() -> None:
    app = parse_application(fixture("healthy-manual-sync.json"))

    assert revisions_to_check(tracked("c" * 40, "2024-03-05T09:00:00Z"), app) == ()


def test_a_success_that_turns_degraded_within_the_flap_window_is_degraded() -> None:
    document = fixture("healthy-manual-sync.json")
    document["status"]["reconciledAt"] = "2024-03-05T07:36:00Z"
    document["status"]["health"] = {
        "status": "Degraded",
        "message": 'Deployment "test-lla" exceeded its progress deadline',
        "lastTransitionTime": "2024-03-05T07:36:00Z",
    }
    watched = tracked(
        VELERO,
        "2024-03-05T07:33:00Z",
        state=DeploymentState.SUCCEEDED,
        watch_until=at("2024-03-05T07:38:04Z"),
    )

    decision = evaluate(watched, parse_application(document), at("2024-03-05T07:37:00Z"))

    assert isinstance(decision, Transition) and decision.previous is DeploymentState.SUCCEEDED
    assert decision.state is DeploymentState.DEGRADED and decision.flapped_at == at("2024-03-05T07:36:00Z")
    later = evaluate(
        replace_watch(watched, "2024-03-05T07:35:00Z"), parse_application(document), at("2024-03-05T07:37:00Z")
    )
    assert not isinstance(later, Transition)  # degraded after its window closed: left alone


def replace_watch(deployment: TrackedDeployment, until: str) -> TrackedDeployment:
    from dataclasses import replace

    return replace(deployment, watch_until=at(until))


def test_watched_successes_stop_being_watched_when_the_window_ends() -> None:
    document = fixture("healthy-manual-sync.json")
    document["status"]["reconciledAt"] = "2024-03-05T07:33:05Z"
    watched = tracked(
        VELERO, "2024-03-05T07:33:00Z", state=DeploymentState.SUCCEEDED, watch_until=at("2024-03-05T07:38:04Z")
    )

    inside = evaluate(watched, parse_application(document), at("2024-03-05T07:35:00Z"))
    after = evaluate(watched, parse_application(document), at("2024-03-05T07:38:05Z"))

    assert isinstance(inside, NoTransition) and "watching for a flap" in inside.reason
    assert not isinstance(after, NoTransition | Transition) and after.reason == "no flap within 5 min after SUCCEEDED"
    assert timedelta(minutes=5) == watched.flap_window


@pytest.mark.parametrize(
    ("url", "same"),
    [
        ("https://github.com/mosaic-stories/gitops.git", True),
        ("https://github.com/Mosaic-Stories/GitOps", True),
        ("git@github.com:mosaic-stories/gitops.git", True),
        ("ssh://git@github.example.com/mosaic-stories/gitops.git/", True),
        ("https://github.com/mosaic-stories/mosaic-life.git", False),
        ("https://github.com/other/gitops.git", False),
    ],
)
def test_a_repo_url_is_matched_to_the_gitops_repository_in_any_form_argo_cd_accepts(url: str, same: bool) -> None:
    assert same_repository(url, "mosaic-stories/gitops") is same


def test_a_watch_ends_with_its_window_even_when_the_application_is_gone_or_argo_cd_cannot_be_asked() -> None:
    watched = tracked(
        VELERO, "2024-03-05T07:33:00Z", state=DeploymentState.SUCCEEDED, watch_until=at("2024-03-05T07:38:04Z")
    )
    after = at("2024-03-05T07:39:00Z")

    gone = evaluate(watched, AppMissing("velero-test", 404, "not found"), after)
    blocked = evaluate(watched, AccessDenied("velero-test", "sre"), after)
    much_later = evaluate(watched, ArgoCDUnreachable("connection refused"), after + timedelta(minutes=15))

    assert isinstance(gone, EndWatch)
    assert isinstance(blocked, NoTransition)  # a flap within the window may still show once it answers
    assert isinstance(much_later, EndWatch) and "could not be asked" in much_later.reason
