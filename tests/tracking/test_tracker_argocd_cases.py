"""The tracker handler judges what Argo CD really did to our change (issue 11), case by case.

Each test promotes real releases through the promoter handler, makes the Argo CD simulator do what the
real one does in that case (automatic retries, a user's rollback, a repo-server outage, a lost
permission, a later commit on the shared branch, a flap after success; tests/devstack checks those
documents against Argo CD's own), then runs the tracker handler and reads the ledger.
"""

from __future__ import annotations

import json
import re
from datetime import timedelta
from typing import Any

import pytest

from devstack.scenario import SeedScenario
from devstack.stack import LocalStack
from tagrelay.domain.records import parse_timestamp
from tests.tracking.support import Configure, TrackerSetup, cli, deployment, in_flight, moves, promote, track

pytestmark = pytest.mark.stack

POLL = 180  # the simulator's poll interval on the manual clock, as Argo CD's default


# --------------------------------------------------------------------------------------------- helpers


def just_after_a_poll(setup: TrackerSetup, env: str = "prod") -> None:
    """Move the clock to one second after the application's poll, so that the next 179 s see no poll."""
    status = setup.control.app(setup.apps[env])["application"]["status"]
    next_poll = parse_timestamp(status["reconciledAt"]) + timedelta(seconds=POLL)
    setup.control.tick((next_poll - setup.control.now()).total_seconds() + 1)


def compares(stack: LocalStack) -> list[str]:
    """The GitHub compare requests since the last clear."""
    return [entry["path"] for entry in stack.github_control.requests() if "/compare/" in entry["path"]]


def metrics(capsys: pytest.CaptureFixture[str], name: str) -> list[dict[str, Any]]:
    """Every CloudWatch EMF document of metric ``name`` printed since the last read."""
    documents = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    return [
        d for d in documents if any(m["Name"] == name for c in d["_aws"]["CloudWatchMetrics"] for m in c["Metrics"])
    ]


def hand_commit(scenario: SeedScenario, message: str, files: dict[str, str]) -> str:
    """Somebody pushes to the GitOps branch by hand (a docs change, an edit of a values file)."""
    return scenario.gitops.commit_files(files, message, branch="main")


# --------------------------------------------------------------------------------------------- retries


def test_a_failed_apply_that_a_retry_fixes_succeeds(scenario: SeedScenario, tracker_env: Configure) -> None:
    setup = tracker_env()
    release = promote(scenario, setup, mark="sync_fails_once")
    setup.control.tick(5 + 20)  # the nudge made Argo CD notice at once: sync starts +5 s, the apply fails +20 s

    assert moves(track()) == [("prod", release.tag, "SYNCING")]
    reason = deployment("prod", release.tag).status_reason or ""
    assert "retry 1" in reason and "Retrying attempt #1" in reason

    setup.control.settle()
    assert moves(track()) == [("prod", release.tag, "SUCCEEDED")]
    assert deployment("prod", release.tag).initiated_by == "automated"


def test_retries_that_run_out_are_sync_failed_with_argo_cds_message(
    scenario: SeedScenario, tracker_env: Configure
) -> None:
    setup = tracker_env()
    release = promote(scenario, setup, mark="sync_failed")
    setup.control.tick(5 + 20)
    assert moves(track()) == [("prod", release.tag, "SYNCING")]

    for _ in range(4):  # while Argo CD retries, the apply that failed is not the outcome
        setup.control.tick(30)
        assert track()["transitions"] == []

    setup.control.settle()
    assert moves(track()) == [("prod", release.tag, "SYNC_FAILED")]
    reason = deployment("prod", release.tag).status_reason or ""
    assert "one or more objects failed to apply" in reason and reason.count("(retried 5 times).") == 1


# --------------------------------------------------------------------------------------------- users' operations


def test_a_rollback_supersedes_ours_and_records_who_ran_it(
    stack: LocalStack, scenario: SeedScenario, tracker_env: Configure
) -> None:
    setup = tracker_env()
    app = setup.apps["prod"]
    setup.control.set_auto_sync(app, enabled=False)
    previous = setup.control.app(app)["history"][-1]["id"]  # the release before ours
    release = promote(scenario, setup)  # the nudge: Argo CD compares ours, and with auto-sync off does nothing
    stack.github_control.clear_requests()

    assert moves(track()) == [("prod", release.tag, "SYNCING")]
    assert "auto-sync is off" in (deployment("prod", release.tag).status_reason or "")

    setup.control.rollback(app, previous, username="admin")  # `argocd app rollback`
    setup.control.settle()
    result = track()

    assert moves(result) == [("prod", release.tag, "SUPERSEDED")]
    record = deployment("prod", release.tag)
    assert record.initiated_by == "admin"
    assert (record.status_reason or "").startswith("admin ran an Argo CD sync of ")
    # Whether the rolled-back revision contains ours was asked of GitHub, once.
    assert len(compares(stack)) == 1 and result["github_requests"] == 1


def test_a_sync_to_an_explicit_older_revision_supersedes_ours(scenario: SeedScenario, tracker_env: Configure) -> None:
    setup = tracker_env()
    app = setup.apps["prod"]
    setup.control.set_auto_sync(app, enabled=False)
    older = setup.control.app(app)["deployed_commit"]
    release = promote(scenario, setup)

    setup.control.sync(app, older, username="bob@example.com")  # `argocd app sync --revision <older>`
    setup.control.settle()

    assert moves(track()) == [("prod", release.tag, "SUPERSEDED")]
    assert deployment("prod", release.tag).initiated_by == "bob@example.com"


def test_with_auto_sync_off_and_nobody_syncing_the_timeout_says_so(
    scenario: SeedScenario, tracker_env: Configure
) -> None:
    setup = tracker_env()
    setup.control.set_auto_sync(setup.apps["prod"], enabled=False)
    release = promote(scenario, setup)

    setup.control.tick(timedelta(minutes=15).total_seconds())
    result = track()

    assert moves(result) == [("prod", release.tag, "TIMED_OUT")]
    assert "waiting for someone to sync" in (deployment("prod", release.tag).status_reason or "")


def test_a_user_sync_of_ours_succeeds_and_records_the_user(scenario: SeedScenario, tracker_env: Configure) -> None:
    setup = tracker_env()
    app = setup.apps["prod"]
    setup.control.set_auto_sync(app, enabled=False)
    release = promote(scenario, setup)

    setup.control.sync(app, username="alice@example.com")  # the branch head: ours
    setup.control.settle()

    assert moves(track()) == [("prod", release.tag, "SUCCEEDED")]
    assert deployment("prod", release.tag).initiated_by == "alice@example.com"


# --------------------------------------------------------------------------------------------- conditions


def test_a_repo_server_outage_after_our_commit_is_transient(scenario: SeedScenario, tracker_env: Configure) -> None:
    setup = tracker_env()
    setup.control.set_repo_server(up=False)
    release = promote(scenario, setup)  # the nudge's comparison fails: hidden for the grace period
    setup.control.tick(POLL + 1)  # the next poll reports it

    conditions = setup.control.app(setup.apps["prod"])["application"]["status"]["conditions"]
    assert "code = Unavailable" in conditions[0]["message"]
    assert track()["transitions"] == []
    assert deployment("prod", release.tag).status == "COMMITTED"

    setup.control.set_repo_server(up=True)
    setup.control.settle()
    assert moves(track()) == [("prod", release.tag, "SUCCEEDED")]


def test_a_repo_server_outage_that_outlasts_the_timeout_times_out_with_argo_cds_message(
    scenario: SeedScenario, tracker_env: Configure
) -> None:
    setup = tracker_env()
    setup.control.set_repo_server(up=False)
    release = promote(scenario, setup)

    setup.control.tick(timedelta(minutes=15).total_seconds())
    result = track()

    assert moves(result) == [("prod", release.tag, "TIMED_OUT")]
    reason = deployment("prod", release.tag).status_reason or ""
    assert "treated as transient" in reason and "rpc error: code = Unavailable" in reason


def test_an_error_from_before_our_commit_does_not_fail_it(scenario: SeedScenario, tracker_env: Configure) -> None:
    # The repo-server went down before our commit; Argo CD keeps the same message, so the same time.
    setup = tracker_env()
    setup.control.set_repo_server(up=False)
    setup.control.tick(2 * POLL)  # the grace period passed: the ComparisonError is reported
    release = promote(scenario, setup)  # the nudge's comparison fails the same way: the condition is older than ours

    assert track()["transitions"] == []
    assert deployment("prod", release.tag).status == "COMMITTED"

    setup.control.set_repo_server(up=True)
    setup.control.settle()
    assert moves(track()) == [("prod", release.tag, "SUCCEEDED")]


def test_a_chart_error_from_before_our_commit_does_not_fail_it(scenario: SeedScenario, tracker_env: Configure) -> None:
    setup = tracker_env()
    app = setup.apps["prod"]
    setup.control.set_chart_error(
        app, 'template: app/templates/deployment.yaml:31:22: map has no entry for key "ports"'
    )
    setup.control.tick(POLL + 10)  # a poll reported it
    release = promote(scenario, setup)  # Argo CD compares ours: the same chart error, the same time

    result = track()
    assert result["transitions"] == []
    status = setup.control.app(app)["application"]["status"]
    assert parse_timestamp(status["conditions"][0]["lastTransitionTime"]) < parse_timestamp(
        deployment("prod", release.tag).committed_at or ""
    )

    setup.control.set_chart_error(app, None)  # someone fixes the chart
    setup.control.settle()
    assert moves(track()) == [("prod", release.tag, "SUCCEEDED")]


def test_an_error_about_our_revision_fails_it_with_argo_cds_message(
    scenario: SeedScenario, tracker_env: Configure
) -> None:
    setup = tracker_env()
    setup.control.tick(0.5)  # mid-second: Argo CD's times (to the second) then look older than our commit's
    release = promote(scenario, setup, "staging", mark="comparison_error")

    result = track()  # the nudge made Argo CD compare ours at once, in the same second

    assert moves(result) == [("staging", release.tag, "SYNC_FAILED")]
    reason = deployment("staging", release.tag).status_reason or ""
    assert reason.startswith("Argo CD reports ComparisonError for ")
    assert f"Manifest generation error (cached): tag {release.tag} is marked as a manifest error" in reason


# --------------------------------------------------------------------------------------------- 403 and 404


def test_lost_permission_blocks_tracking_and_alarms_but_is_never_an_outcome(
    scenario: SeedScenario, tracker_env: Configure, capsys: pytest.CaptureFixture[str]
) -> None:
    setup = tracker_env()
    release = promote(scenario, setup)
    setup.control.set_permission(setup.apps["prod"], allowed=False)
    setup.control.settle()
    setup.control.tick(timedelta(minutes=20).total_seconds())  # far past the 15-minute timeout
    capsys.readouterr()

    result = track()

    record = deployment("prod", release.tag)
    assert result["transitions"] == [] and record.status == "COMMITTED" and record in in_flight()
    assert "grant it `applications, get` on mosaic-life/" in result["blocked"][record.decision_id]
    [emitted] = metrics(capsys, "TrackingBlocked")
    assert (emitted["cause"], emitted["service"], emitted["TrackingBlocked"]) == ("permission_denied", "tracker", [1.0])

    setup.control.set_permission(setup.apps["prod"], allowed=True)
    assert moves(track()) == [("prod", release.tag, "SUCCEEDED")]  # the evidence wins over the elapsed deadline


def test_without_a_project_a_403_blocks_tracking_and_says_to_set_one(
    scenario: SeedScenario, tracker_env: Configure
) -> None:
    setup = tracker_env(environments={"staging": {"argocd_project": None}})
    release = promote(scenario, setup, "staging")
    setup.control.remove_app(setup.apps["staging"])  # Argo CD answers 403 for it: missing, or no access?

    result = track()

    record = deployment("staging", release.tag)
    assert result["transitions"] == [] and record.status == "COMMITTED"
    assert "set the environment's argocd_project" in result["blocked"][record.decision_id]


def test_an_unreachable_argo_cd_past_the_timeout_raises_the_blocked_metric(
    scenario: SeedScenario, tracker_env: Configure, capsys: pytest.CaptureFixture[str]
) -> None:
    setup = tracker_env()
    promote(scenario, setup)
    setup.control.inject_fault(503, count=4)  # the request and its three retries
    capsys.readouterr()
    track()
    assert metrics(capsys, "TrackingBlocked") == []  # a short outage before the deadline wakes nobody

    setup.control.tick(timedelta(minutes=16).total_seconds())
    setup.control.inject_fault(503, count=4)
    result = track()

    assert result["transitions"] == []
    [emitted] = metrics(capsys, "TrackingBlocked")
    assert (emitted["cause"], emitted["TrackingBlocked"]) == ("unreachable_past_timeout", [1.0])


# --------------------------------------------------------------------------------------------- later commits


def test_a_later_commit_on_the_shared_branch_that_contains_ours_counts_as_ours(
    stack: LocalStack, scenario: SeedScenario, tracker_env: Configure
) -> None:
    # Without the nudge, prod's and staging's promotions land within one Argo CD poll; both applications
    # then sync the staging commit, which contains prod's.
    setup = tracker_env(argocd={"refresh_after_commit": False})
    just_after_a_poll(setup)
    prod = promote(scenario, setup, "prod")
    setup.control.tick(30)
    staging = promote(scenario, setup, "staging")
    setup.control.settle()
    stack.github_control.clear_requests()

    result = track()

    assert sorted(moves(result)) == [("prod", prod.tag, "SUCCEEDED"), ("staging", staging.tag, "SUCCEEDED")]
    reason = deployment("prod", prod.tag).status_reason or ""
    assert re.search(r"synced via [0-9a-f]{7}, which contains [0-9a-f]{7} and Healthy", reason)
    assert compares(stack) == [] and result["github_requests"] == 0  # the ledger knew


def test_a_later_hand_made_commit_that_contains_ours_is_checked_on_github_once(
    stack: LocalStack, scenario: SeedScenario, tracker_env: Configure
) -> None:
    setup = tracker_env(argocd={"refresh_after_commit": False})
    just_after_a_poll(setup)
    release = promote(scenario, setup, "prod")
    hand_commit(scenario, "docs: how to deploy", {"docs/deploy.md": "# Deploying\n"})
    stack.github_control.clear_requests()
    setup.control.tick(POLL + 5)  # Argo CD's poll saw the docs commit; its sync is running

    assert moves(track()) == [("prod", release.tag, "SYNCING")]
    assert len(compares(stack)) == 1

    setup.control.settle()
    result = track()
    assert moves(result) == [("prod", release.tag, "SUCCEEDED")]
    assert len(compares(stack)) == 1 and result["github_requests"] == 0  # cached: one request per new revision


def test_one_github_request_answers_for_every_environment_a_later_revision_contains(
    stack: LocalStack, scenario: SeedScenario, tracker_env: Configure
) -> None:
    setup = tracker_env(argocd={"refresh_after_commit": False})
    just_after_a_poll(setup)
    prod = promote(scenario, setup, "prod")
    setup.control.tick(15)
    staging = promote(scenario, setup, "staging")
    hand_commit(scenario, "docs: runbook", {"docs/runbook.md": "# Runbook\n"})
    setup.control.settle()
    stack.github_control.clear_requests()

    result = track()

    assert sorted(moves(result)) == [("prod", prod.tag, "SUCCEEDED"), ("staging", staging.tag, "SUCCEEDED")]
    assert len(compares(stack)) == result["github_requests"] == 1


def test_a_later_hand_edit_of_our_tag_supersedes_ours(scenario: SeedScenario, tracker_env: Configure) -> None:
    setup = tracker_env(argocd={"refresh_after_commit": False})
    just_after_a_poll(setup)
    release = promote(scenario, setup, "prod")
    values = scenario.values_file("prod").decode().replace(f'"{release.tag}"', '"feedbee"')
    hand_commit(scenario, "hotfix: pin prod to feedbee", {"environments/prod/values.yaml": values})
    setup.control.settle()

    result = track()

    assert moves(result) == [("prod", release.tag, "SUPERSEDED")]
    assert "a later commit changed the tag" in (deployment("prod", release.tag).status_reason or "")


# --------------------------------------------------------------------------------------------- flap window


def test_degraded_within_the_flap_window_turns_succeeded_into_degraded(
    scenario: SeedScenario, tracker_env: Configure, capsys: pytest.CaptureFixture[str]
) -> None:
    setup = tracker_env()
    release = promote(scenario, setup)
    setup.control.settle()
    assert moves(track()) == [("prod", release.tag, "SUCCEEDED")]
    succeeded = deployment("prod", release.tag)

    setup.control.mark(release.tag, "degraded")  # its pods start failing after the rollout
    setup.control.tick(POLL)  # within the 5-minute window
    capsys.readouterr()
    result = track()

    assert moves(result) == [("prod", release.tag, "DEGRADED")]
    record = deployment("prod", release.tag)
    assert "was SUCCEEDED, then health turned Degraded within the 5 min flap window" in (record.status_reason or "")
    assert record.healthy_at == succeeded.healthy_at and record.flapped_at  # both moments are kept
    assert in_flight() == []
    assert [d["outcome"] for d in metrics(capsys, "DeploymentOutcomes")] == ["DEGRADED"]
    code, out, _ = cli(capsys, "history", "--env", "prod", "--sha", release.tag)
    assert code == 0 and "SUCCEEDED→DEGRADED" in out


def test_after_the_flap_window_a_degraded_application_is_left_alone(
    scenario: SeedScenario, tracker_env: Configure
) -> None:
    setup = tracker_env()
    release = promote(scenario, setup)
    setup.control.settle()
    assert moves(track()) == [("prod", release.tag, "SUCCEEDED")]

    setup.control.tick(timedelta(minutes=6).total_seconds())
    assert [w["reason"] for w in track()["watches_ended"]] == ["no flap within 5 min after SUCCEEDED"]
    setup.control.mark(release.tag, "degraded")
    setup.control.tick(POLL)

    assert track()["transitions"] == []
    assert deployment("prod", release.tag).status == "SUCCEEDED"


def test_a_newer_deployment_ends_the_watch_of_the_older_one(scenario: SeedScenario, tracker_env: Configure) -> None:
    setup = tracker_env()
    first = promote(scenario, setup)
    setup.control.settle()
    assert moves(track()) == [("prod", first.tag, "SUCCEEDED")]

    second = promote(scenario, setup, mark="degraded")
    result = track()

    assert [w["decision_id"] for w in result["watches_ended"]] == [deployment("prod", first.tag).decision_id]
    setup.control.settle()
    assert moves(track()) == [("prod", second.tag, "DEGRADED")]
    assert deployment("prod", first.tag).status == "SUCCEEDED"


def test_a_flap_window_of_zero_ends_tracking_at_succeeded(scenario: SeedScenario, tracker_env: Configure) -> None:
    setup = tracker_env(extra={"tracking": {"flap_window_minutes": 0}})
    release = promote(scenario, setup)
    setup.control.settle()

    assert moves(track()) == [("prod", release.tag, "SUCCEEDED")]
    assert in_flight() == [] and deployment("prod", release.tag).watch_until is None
