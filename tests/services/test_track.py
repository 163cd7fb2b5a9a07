"""The tracker service on the fakes, outcome by outcome: what one run records for each deployment the
promoter committed, from the Application documents Argo CD serves.

Releases are promoted by the promoter service on the fakes; the Argo CD applications are the
simulator's own model on the world's clock (tests/fakes/argocd_apps.py), so the documents are the
stack's, with its realistic timing. The tracker is ``world.tracker()`` and each run is its ``run``,
as the tracker handler calls it, logged and measured as the handler does (``log_run``,
``emit_tracking_metrics``: the EMF lines are read from stdout). Beyond the outcomes: what blocks
tracking (a 403, an unreachable Argo CD past the timeout) and what stops a run (a rejected token, a
ledger failure), records it cannot read, Argo CD not configured, later revisions that contain ours
(the ledger first, else one GitHub comparison), and the flap window. The end-to-end paths (the handler, the simulator over HTTP, moto's
DynamoDB, the metrics' wire format, the refresh nudge) are in tests/tracking/test_tracker_handler.py.
"""

from __future__ import annotations

import json
import logging
import re
from datetime import timedelta
from typing import Any

import pytest

from devstack.argocd_sim import Mark
from devstack.scenario import BRANCH_OF_ENV, Release
from infra import pipeline_metrics
from tagrelay.adapters import ledger_schema as keys
from tagrelay.config import Config, parse_config
from tagrelay.domain.records import DecisionRecord, parse_timestamp, timestamp
from tagrelay.errors import MisconfiguredError, TagrelayError
from tagrelay.services.promote import Promoter
from tagrelay.services.track import Tracker, TrackerRun, emit_tracking_metrics, log_run
from tests.emf import assert_one_success_and_one_degraded
from tests.fakes.argocd_apps import ArgoApps
from tests.fakes.world import FakeWorld
from tests.services.support import APP, deployment, invoke


@pytest.fixture
def apps(world: FakeWorld) -> ArgoApps:
    return ArgoApps.register(world)


class Setup:
    """The promoter and the tracker of one configuration, on the world and its Argo CD applications."""

    def __init__(self, world: FakeWorld, apps: ArgoApps, config: Config) -> None:
        self.world, self.apps = world, apps
        self.promoter: Promoter = world.promoter(config)
        self.tracker: Tracker = world.tracker(config)

    def promote(self, env: str = "prod", *, mark: Mark | None = None) -> Release:
        """A new commit on the environment's branch, released by CI; its first event promotes it a second
        later (the others would be duplicates), and the promoter nudges Argo CD."""
        sha = self.world.commit(BRANCH_OF_ENV[env])
        if mark is not None:
            self.apps.mark(sha[:7], mark)
        release = self.world.release(sha, branch=BRANCH_OF_ENV[env])
        self.world.clock.tick(1)
        assert invoke(self.promoter, release.events[0])["decision"] == "promote"
        return release

    def run(self) -> TrackerRun:
        """One tracker run, logged and measured as the handler does (handlers/tracker.py)."""
        run = self.tracker.run()
        log_run(run)
        emit_tracking_metrics(run)
        return run

    def track(self) -> dict[str, Any]:
        """One tracker run, as the handler makes it: its summary, or its error raised."""
        run = self.run()
        run.raise_if_failed()
        return run.summary()

    def just_after_a_poll(self, env: str = "prod") -> None:
        """Move the clock to one second after the application's poll: the next 179 s see no poll."""
        status = self.world.argocd.documents[self.apps.name(env)]["status"]
        next_poll = parse_timestamp(status["reconciledAt"]) + timedelta(seconds=POLL)
        self.apps.tick((next_poll - self.world.clock()).total_seconds() + 1)


@pytest.fixture
def setup(world: FakeWorld, apps: ArgoApps) -> Setup:
    return Setup(world, apps, world.config())


POLL = 180  # the simulator's poll interval, Argo CD's default


def without_the_nudge(world: FakeWorld, **app_overrides: Any) -> Config:
    """The world's configuration with ``argocd.refresh_after_commit`` off: Argo CD notices a commit at its poll."""
    data = world.config_data(**app_overrides)
    data["argocd"]["refresh_after_commit"] = False
    return parse_config(data)


def hand_commit(world: FakeWorld, message: str, files: dict[str, str]) -> str:
    """Somebody pushes to the GitOps branch by hand (a docs change, an edit of a values file)."""
    return world.github.commit(world.gitops_repo, "main", files, message, author="ops")


def compares(world: FakeWorld) -> int:
    """GitHub comparisons asked so far (the tracker's only GitHub request)."""
    return world.github.calls.count("comparison")


def metrics(capsys: pytest.CaptureFixture[str], name: str) -> list[dict[str, Any]]:
    """Every CloudWatch EMF document of metric ``name`` printed since the last read."""
    documents = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    return [
        d for d in documents if any(m["Name"] == name for c in d["_aws"]["CloudWatchMetrics"] for m in c["Metrics"])
    ]


def logged(caplog: pytest.LogCaptureFixture, level: int) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "tagrelay.services.track" and r.levelno == level]


def moves(result: dict[str, Any]) -> list[tuple[str, str, str]]:
    return [(t["env"], t["tag"], t["to"]) for t in result["transitions"]]


def item(world: FakeWorld, record: DecisionRecord) -> dict[str, Any]:
    """The ledger item as stored, with what DecisionRecord does not read (durations, index keys...)."""
    return world.ledger.items[
        (keys.env_partition(record.app, record.env), keys.decision_sort_key(record.created_at, record.decision_id))
    ]


# --------------------------------------------------------------------------------------------- outcomes


def test_a_healthy_rollout_is_recorded_as_syncing_then_succeeded_with_argo_cds_times(
    world: FakeWorld, setup: Setup
) -> None:
    release = setup.promote()
    tag = release.tag

    # The refresh nudge made Argo CD notice the commit at once; its auto-sync starts 5 s later.
    setup.apps.tick(10)
    assert moves(setup.track()) == [("prod", tag, "SYNCING")]
    record = deployment(world, "prod", tag)
    assert record.status == "SYNCING" and record.sync_started_at

    setup.apps.settle()
    assert moves(setup.track()) == [("prod", tag, "SUCCEEDED")]

    record = deployment(world, "prod", tag)
    assert record.status == "SUCCEEDED"
    assert "Healthy with all 2 image(s) running" in (record.status_reason or "")
    assert record.committed_at and record.sync_started_at and record.synced_at and record.healthy_at
    assert record.committed_at <= record.sync_started_at < record.synced_at < record.healthy_at
    assert record.finished_at
    stored = item(world, record)
    # Argo CD's status.history times, and the durations derived from them (the stack's timing: 5 s, then 20 s).
    assert stored["deploy_started_at"] == record.sync_started_at and stored["deployed_at"] == record.synced_at
    assert parse_timestamp(record.sync_started_at) - parse_timestamp(record.committed_at) == timedelta(seconds=5)
    assert stored["sync_seconds"] == 20
    assert 0 < stored["time_to_sync_seconds"] < stored["time_to_healthy_seconds"] <= stored["lead_time_seconds"]
    # SUCCEEDED, but watched for a flap for tracking.flap_window_minutes (5) after it became healthy.
    assert stored["watch_until"] == timestamp(parse_timestamp(record.healthy_at) + timedelta(minutes=5))
    assert keys.IN_FLIGHT_PARTITION_KEY in stored
    assert [r.status for r in world.ledger.in_flight()] == ["SUCCEEDED"]

    setup.apps.tick(timedelta(minutes=5).total_seconds())
    result = setup.track()
    assert result["transitions"] == [] and [w["written"] for w in result["watches_ended"]] == [True]
    stored = item(world, record)
    assert keys.IN_FLIGHT_PARTITION_KEY not in stored and keys.IN_FLIGHT_SORT_KEY not in stored
    assert stored["status"] == "SUCCEEDED" and stored["watch_ended_at"]
    assert world.ledger.in_flight() == []


def test_a_tag_that_never_becomes_healthy_is_degraded(world: FakeWorld, setup: Setup) -> None:
    release = setup.promote("prod", mark="degraded")

    setup.apps.settle()
    result = setup.track()

    assert moves(result) == [("prod", release.tag, "DEGRADED")]
    record = deployment(world, "prod", release.tag)
    assert "health is Degraded" in (record.status_reason or "")
    assert "exceeded its progress deadline" in (record.status_reason or "")
    assert record.synced_at and not record.healthy_at


def test_a_manifest_that_fails_to_apply_is_sync_failed(world: FakeWorld, setup: Setup) -> None:
    release = setup.promote("staging", mark="sync_failed")

    setup.apps.settle()  # Argo CD retries the apply five times, then fails the operation
    result = setup.track()

    assert moves(result) == [("staging", release.tag, "SYNC_FAILED")]
    reason = deployment(world, "staging", release.tag).status_reason or ""
    assert "Failed" in reason and "failed to apply" in reason


def test_a_manifest_argo_cd_cannot_render_is_sync_failed(world: FakeWorld) -> None:
    # A single-source application: sync.revision (not revisions) becomes the branch name.
    setup = Setup(world, ArgoApps.register(world, multi_source=False), world.config())
    release = setup.promote("prod", mark="comparison_error")

    setup.apps.tick(200)  # the next reconcile after the commit reports the error
    result = setup.track()

    assert moves(result) == [("prod", release.tag, "SYNC_FAILED")]
    assert "ComparisonError" in (deployment(world, "prod", release.tag).status_reason or "")


def test_no_outcome_within_the_environments_timeout_is_timed_out(world: FakeWorld, apps: ArgoApps) -> None:
    # Kubernetes waits 600 s before calling a bad rollout Degraded; prod's tracking window is 1 minute.
    setup = Setup(world, apps, world.config(environments={"prod": {"timeout_minutes": 1}}))
    release = setup.promote("prod", mark="degraded")

    apps.tick(59)
    assert [t["to"] for t in setup.track()["transitions"]] == ["SYNCING"]
    apps.tick(2)
    result = setup.track()

    assert moves(result) == [("prod", release.tag, "TIMED_OUT")]
    reason = deployment(world, "prod", release.tag).status_reason or ""
    assert reason.startswith("no outcome 1 min after the commit; still waiting for health (now Progressing)")


def test_a_newer_commit_supersedes_the_one_still_rolling_out(world: FakeWorld, setup: Setup) -> None:
    first = setup.promote()
    setup.apps.tick(10)  # Argo CD is syncing the first commit
    second = setup.promote()

    result = setup.track()

    assert ("prod", first.tag, "SUPERSEDED") in moves(result)
    assert "superseded by" in (deployment(world, "prod", first.tag).status_reason or "")
    setup.apps.settle()
    assert moves(setup.track()) == [("prod", second.tag, "SUCCEEDED")]
    assert [(r.tag, r.status) for r in world.ledger.in_flight()] == [(second.tag, "SUCCEEDED")]  # watched


def test_an_application_argo_cd_does_not_know_is_env_unavailable(world: FakeWorld, setup: Setup) -> None:
    release = setup.promote("staging")
    setup.apps.remove("staging")  # like `just stage-down`

    result = setup.track()

    assert moves(result) == [("staging", release.tag, "ENV_UNAVAILABLE")]
    reason = deployment(world, "staging", release.tag).status_reason or ""
    assert f"application {setup.apps.name('staging')} unavailable (HTTP 404)" in reason
    assert world.ledger.in_flight() == []


def test_an_environment_without_an_argo_cd_application_leaves_the_in_flight_set(
    world: FakeWorld, apps: ArgoApps
) -> None:
    setup = Setup(world, apps, world.config(environments={"staging": {"argocd_app": None}}))
    release = setup.promote("staging")
    world.argocd.asked.clear()

    result = setup.track()

    assert moves(result) == [("staging", release.tag, "ENV_UNAVAILABLE")]
    assert "names no argocd_app" in (deployment(world, "staging", release.tag).status_reason or "")
    assert result["argocd_requests"] == 0 and world.argocd.asked == []
    assert world.ledger.in_flight() == []


# --------------------------------------------------------------------------------------------- failures of Argo CD


def test_an_unreachable_argo_cd_records_nothing_even_past_the_deadline(world: FakeWorld, setup: Setup) -> None:
    release = setup.promote()
    setup.apps.settle()
    setup.apps.tick(timedelta(minutes=20).total_seconds())  # far past the 15-minute timeout
    world.argocd.faults.fail("get_application")  # the client's retries exhausted: TransientError
    record = deployment(world, "prod", release.tag)
    before = dict(item(world, record))

    result = setup.track()

    assert world.argocd.faults.met == {"get_application": 1}
    assert result["transitions"] == [] and result["waiting"] == 1
    assert setup.apps.name("prod") in result["unreachable"]
    assert list(result["blocked"]) == [record.decision_id]
    assert result["dynamodb_requests"] == 1  # the in-flight query, no write
    assert item(world, record) == before
    assert deployment(world, "prod", release.tag).status == "COMMITTED"

    # Argo CD is back: the evidence wins over the elapsed deadline.
    assert moves(setup.track()) == [("prod", release.tag, "SUCCEEDED")]


# --------------------------------------------------------------------------------------------- budgets and writes


def test_one_argo_cd_request_per_application_however_many_deployments_are_in_flight(
    world: FakeWorld, setup: Setup
) -> None:
    prod = [setup.promote("prod") for _ in range(3)]
    staging = [setup.promote("staging") for _ in range(2)]
    world.argocd.asked.clear()
    before = world.argocd.request_count

    result = setup.track()

    assert sorted(world.argocd.asked) == sorted((setup.apps.name(env), "mosaic-life") for env in BRANCH_OF_ENV)
    assert (result["in_flight"], result["applications"], world.argocd.request_count - before) == (5, 2, 2)
    superseded = {t["tag"] for t in result["transitions"] if t["to"] == "SUPERSEDED"}
    assert superseded == {prod[0].tag, prod[1].tag, staging[0].tag}
    # The ledger: the one in-flight query, then one conditional write per transition.
    assert result["dynamodb_requests"] == 1 + len(result["transitions"])


def test_the_ledger_is_written_only_on_transitions(world: FakeWorld, setup: Setup) -> None:
    release = setup.promote()
    setup.apps.tick(10)
    assert setup.track()["dynamodb_requests"] == 2  # query + COMMITTED -> SYNCING

    for _ in range(3):
        setup.apps.tick(5)  # still syncing: nothing new to record
        result = setup.track()
        assert (result["transitions"], result["waiting"], result["dynamodb_requests"]) == ([], 1, 1)

    setup.apps.settle()
    assert setup.track()["dynamodb_requests"] == 2  # query + SYNCING -> SUCCEEDED
    assert setup.track()["dynamodb_requests"] == 1  # watched for a flap, nothing changed: the query only
    setup.apps.tick(timedelta(minutes=5).total_seconds())
    assert setup.track()["dynamodb_requests"] == 2  # query + the end of the watch
    assert setup.track()["dynamodb_requests"] == 1  # nothing in flight: the query only
    assert deployment(world, "prod", release.tag).status == "SUCCEEDED"


def test_a_concurrent_writer_is_never_overwritten(
    world: FakeWorld, setup: Setup, monkeypatch: pytest.MonkeyPatch
) -> None:
    release = setup.promote()
    stale = world.ledger.in_flight()  # what a slower, concurrent run read: COMMITTED
    setup.apps.settle()
    assert moves(setup.track()) == [("prod", release.tag, "SUCCEEDED")]
    recorded = dict(item(world, deployment(world, "prod", release.tag)))

    # The slower run decides from what it read, past the deadline and with the application gone; its
    # conditional write (from COMMITTED) finds SUCCEEDED and changes nothing.
    setup.apps.tick(timedelta(minutes=20).total_seconds())
    setup.apps.remove("prod")
    monkeypatch.setattr(world.ledger, "in_flight", lambda: stale)
    result = setup.track()

    assert [(t["to"], t["written"]) for t in result["transitions"]] == [("ENV_UNAVAILABLE", False)]
    assert item(world, deployment(world, "prod", release.tag)) == recorded


def test_a_staging_commit_during_a_prod_rollout_leaves_the_prod_outcome_alone(world: FakeWorld, setup: Setup) -> None:
    prod = setup.promote("prod")
    setup.promote("staging")
    setup.apps.settle()  # prod also compares the staging commit: same repository, same branch

    result = setup.track()

    assert ("prod", prod.tag, "SUCCEEDED") in moves(result)
    record = deployment(world, "prod", prod.tag)
    assert record.status == "SUCCEEDED" and record.healthy_at
    assert world.ledger.environment_state(APP, "prod") is not None


# --------------------------------------------------------------------------------------------- blocked: 403 and past the timeout


def test_lost_permission_blocks_tracking_and_alarms_but_is_never_an_outcome(
    world: FakeWorld, setup: Setup, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    release = setup.promote()
    world.argocd.denied.add(setup.apps.name("prod"))  # the token lost `applications, get` on it
    setup.apps.settle()
    setup.apps.tick(timedelta(minutes=20).total_seconds())  # far past the 15-minute timeout
    capsys.readouterr()

    result = setup.track()

    record = deployment(world, "prod", release.tag)
    assert result["transitions"] == [] and record.status == "COMMITTED" and record in world.ledger.in_flight()
    assert "grant it `applications, get` on mosaic-life/" in result["blocked"][record.decision_id]
    [emitted] = metrics(capsys, pipeline_metrics.BLOCKED_METRIC)
    assert (emitted["cause"], emitted["service"], emitted["TrackingBlocked"]) == ("permission_denied", "tracker", [1.0])
    [error] = logged(caplog, logging.ERROR)
    assert error.getMessage().startswith("tracking blocked: ") and error.__dict__["cause"] == "permission_denied"

    world.argocd.denied.clear()
    assert moves(setup.track()) == [("prod", release.tag, "SUCCEEDED")]  # the evidence wins over the elapsed deadline
    assert metrics(capsys, pipeline_metrics.BLOCKED_METRIC) == []


def test_an_unreachable_argo_cd_past_the_timeout_raises_the_blocked_metric(
    world: FakeWorld, setup: Setup, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    setup.promote()
    world.argocd.faults.fail("get_application")  # the client's retries exhausted
    capsys.readouterr()
    setup.track()
    assert metrics(capsys, pipeline_metrics.BLOCKED_METRIC) == []  # a short outage before the deadline wakes nobody
    assert logged(caplog, logging.ERROR) == []
    assert [r.getMessage() for r in logged(caplog, logging.WARNING)] == ["Argo CD unreachable; retrying next run"]

    setup.apps.tick(timedelta(minutes=16).total_seconds())
    world.argocd.faults.fail("get_application")
    result = setup.track()

    assert result["transitions"] == [] and world.argocd.faults.met == {"get_application": 2}
    [emitted] = metrics(capsys, pipeline_metrics.BLOCKED_METRIC)
    assert (emitted["cause"], emitted["TrackingBlocked"]) == ("unreachable_past_timeout", [1.0])
    [error] = logged(caplog, logging.ERROR)
    assert "tracking blocked past the deployment's timeout" in error.getMessage()


# --------------------------------------------------------------------------------------------- what stops a run


def test_a_rejected_token_stops_the_run_and_records_nothing(
    world: FakeWorld, setup: Setup, caplog: pytest.LogCaptureFixture
) -> None:
    release = setup.promote()
    setup.apps.settle()
    world.argocd.faults.fail("get_application", MisconfiguredError("argocd", "the token is invalid or expired"))

    run = setup.run()

    assert run.summary()["error"] == str(run.error) and "token is invalid or expired" in str(run.error)
    assert run.transitions == [] and world.argocd.closed >= 1  # the run's client is closed all the same
    assert deployment(world, "prod", release.tag).status == "COMMITTED"
    assert [r.getMessage() for r in logged(caplog, logging.ERROR)] == ["tracker run stopped"]
    with pytest.raises(MisconfiguredError, match="token is invalid or expired"):
        run.raise_if_failed()  # what makes the Lambda report an error


def test_a_ledger_failure_stops_the_run_and_the_next_run_records_it(world: FakeWorld, setup: Setup) -> None:
    release = setup.promote()
    setup.apps.settle()
    world.ledger.faults.fail("record_tracking")  # DynamoDB throttled past the client's retries

    run = setup.run()

    assert isinstance(run.error, TagrelayError) and world.ledger.faults.met == {"record_tracking": 1}
    assert deployment(world, "prod", release.tag).status == "COMMITTED"
    with pytest.raises(TagrelayError):
        run.raise_if_failed()
    assert moves(setup.track()) == [("prod", release.tag, "SUCCEEDED")]


def test_without_argo_cd_configured_the_tracker_records_nothing_and_says_why(
    world: FakeWorld, setup: Setup, caplog: pytest.LogCaptureFixture
) -> None:
    release = setup.promote()
    tracker = world.tracker(world.config(extra={"argocd": None}))
    before = world.argocd.request_count, world.ledger.request_count

    run = tracker.run()
    log_run(run)

    summary = run.summary()
    assert summary["disabled"] == "argocd is not configured: deployment outcomes are not tracked"
    assert (summary["in_flight"], summary["transitions"]) == (0, [])
    assert (world.argocd.request_count, world.ledger.request_count) == before  # nothing asked, nothing read
    assert [r.getMessage() for r in logged(caplog, logging.WARNING)] == [summary["disabled"]]
    assert deployment(world, "prod", release.tag).status == "COMMITTED"


# --------------------------------------------------------------------------------------------- records it cannot read


@pytest.mark.parametrize(
    ("env", "overrides", "change", "problem"),
    [
        ("prod", {}, {"committed_at": "yesterday"}, "Invalid isoformat string: 'yesterday'"),
        ("prod", {}, {"gitops_commit": None}, "has no GitOps commit or tag"),
        ("prod", {}, {"status": "LOST"}, "has an unknown status 'LOST'"),
        (
            "staging",
            {"environments": {"staging": {"argocd_app": None}}},
            {"committed_at": "yesterday"},
            "Invalid isoformat string: 'yesterday'",
        ),
    ],
    ids=["bad-commit-time", "no-commit", "unknown-status", "untracked-bad-commit-time"],
)
def test_an_unreadable_in_flight_record_is_reported_and_left_alone(
    world: FakeWorld,
    apps: ArgoApps,
    caplog: pytest.LogCaptureFixture,
    env: str,
    overrides: dict[str, Any],
    change: dict[str, Any],
    problem: str,
) -> None:
    setup = Setup(world, apps, world.config(**overrides))
    bad = setup.promote(env)
    good = setup.promote("prod" if env == "staging" else "staging")
    stored = item(world, deployment(world, env, bad.tag))
    stored.update(change)  # an item written by hand, or by another version
    before = dict(stored)
    apps.settle()

    result = setup.track()

    [unreadable] = result["unreadable"]
    assert unreadable["decision_id"] == stored["decision_id"] and problem in unreadable["problem"]
    assert item(world, deployment(world, env, bad.tag)) == before
    assert [(t["tag"], t["to"]) for t in result["transitions"]] == [(good.tag, "SUCCEEDED")]  # the others go on
    [error] = logged(caplog, logging.ERROR)
    assert error.getMessage() == "in-flight record cannot be tracked" and problem in error.__dict__["why"]


def test_a_decided_record_left_in_the_in_flight_index_leaves_it_without_asking(world: FakeWorld, setup: Setup) -> None:
    release = setup.promote(mark="degraded")
    setup.apps.settle()
    assert moves(setup.track()) == [("prod", release.tag, "DEGRADED")]
    stored = item(world, deployment(world, "prod", release.tag))
    # An older version's write: the outcome, but still in the index.
    stored[keys.IN_FLIGHT_PARTITION_KEY] = keys.IN_FLIGHT_MARKER
    stored[keys.IN_FLIGHT_SORT_KEY] = stored["created_at"]
    world.argocd.asked.clear()

    result = setup.track()

    assert result["watches_ended"] == [
        {"decision_id": stored["decision_id"], "reason": "already DEGRADED; nothing to watch", "written": True}
    ]
    assert world.argocd.asked == [] and world.ledger.in_flight() == []
    assert item(world, deployment(world, "prod", release.tag))["status"] == "DEGRADED"


# --------------------------------------------------------------------------------------------- later commits


def test_a_later_commit_on_the_shared_branch_that_contains_ours_counts_as_ours(
    world: FakeWorld, apps: ArgoApps
) -> None:
    # Without the nudge, prod's and staging's promotions land within one Argo CD poll; both applications
    # then sync the staging commit, which contains prod's.
    setup = Setup(world, apps, without_the_nudge(world))
    setup.just_after_a_poll()
    prod = setup.promote("prod")
    apps.tick(30)
    staging = setup.promote("staging")
    apps.settle()
    before = compares(world)

    result = setup.track()

    assert sorted(moves(result)) == [("prod", prod.tag, "SUCCEEDED"), ("staging", staging.tag, "SUCCEEDED")]
    reason = deployment(world, "prod", prod.tag).status_reason or ""
    assert re.search(r"synced via [0-9a-f]{7}, which contains [0-9a-f]{7} and Healthy", reason)
    assert compares(world) == before and result["github_requests"] == 0  # the ledger knew


def test_a_later_hand_made_commit_that_contains_ours_is_checked_on_github_once(
    world: FakeWorld, apps: ArgoApps
) -> None:
    setup = Setup(world, apps, without_the_nudge(world))
    setup.just_after_a_poll()
    release = setup.promote("prod")
    hand_commit(world, "docs: how to deploy", {"docs/deploy.md": "# Deploying\n"})
    before = compares(world)
    apps.tick(POLL + 5)  # Argo CD's poll saw the docs commit; its sync is running

    result = setup.track()
    assert moves(result) == [("prod", release.tag, "SYNCING")]
    assert compares(world) - before == result["github_requests"] == 1

    apps.settle()
    result = setup.track()
    assert moves(result) == [("prod", release.tag, "SUCCEEDED")]
    assert compares(world) - before == 1 and result["github_requests"] == 0  # cached: one request per revision


def test_one_github_request_answers_for_every_environment_a_later_revision_contains(
    world: FakeWorld, apps: ArgoApps
) -> None:
    setup = Setup(world, apps, without_the_nudge(world))
    setup.just_after_a_poll()
    prod = setup.promote("prod")
    apps.tick(15)
    staging = setup.promote("staging")
    hand_commit(world, "docs: runbook", {"docs/runbook.md": "# Runbook\n"})
    apps.settle()
    before = compares(world)

    result = setup.track()

    assert sorted(moves(result)) == [("prod", prod.tag, "SUCCEEDED"), ("staging", staging.tag, "SUCCEEDED")]
    assert compares(world) - before == result["github_requests"] == 1


def test_a_github_error_leaves_the_revision_unknown_until_the_next_run(world: FakeWorld, apps: ArgoApps) -> None:
    setup = Setup(world, apps, without_the_nudge(world))
    setup.just_after_a_poll()
    release = setup.promote("prod")
    hand_commit(world, "docs: how to deploy", {"docs/deploy.md": "# Deploying\n"})
    apps.settle()
    world.github.faults.fail("comparison")

    result = setup.track()

    assert result["transitions"] == [] and result["waiting"] == 1 and result["github_requests"] == 1
    assert deployment(world, "prod", release.tag).status == "COMMITTED"
    result = setup.track()  # asked again, and answered
    assert moves(result) == [("prod", release.tag, "SUCCEEDED")] and result["github_requests"] == 1


def test_a_later_hand_edit_of_our_tag_supersedes_ours(world: FakeWorld, apps: ArgoApps) -> None:
    setup = Setup(world, apps, without_the_nudge(world))
    setup.just_after_a_poll()
    release = setup.promote("prod")
    values = world.values_file("prod").decode().replace(f'"{release.tag}"', '"feedbee"')
    hand_commit(world, "hotfix: pin prod to feedbee", {"environments/prod/values.yaml": values})
    apps.settle()

    result = setup.track()

    assert moves(result) == [("prod", release.tag, "SUPERSEDED")]
    assert "a later commit changed the tag" in (deployment(world, "prod", release.tag).status_reason or "")


# --------------------------------------------------------------------------------------------- flap window


def test_degraded_within_the_flap_window_turns_succeeded_into_degraded(
    world: FakeWorld, setup: Setup, capsys: pytest.CaptureFixture[str]
) -> None:
    release = setup.promote()
    setup.apps.settle()
    assert moves(setup.track()) == [("prod", release.tag, "SUCCEEDED")]
    succeeded = deployment(world, "prod", release.tag)

    setup.apps.mark(release.tag, "degraded")  # its pods start failing after the rollout
    setup.apps.tick(POLL)  # within the 5-minute window
    capsys.readouterr()
    result = setup.track()

    assert moves(result) == [("prod", release.tag, "DEGRADED")]
    record = deployment(world, "prod", release.tag)
    assert "was SUCCEEDED, then health turned Degraded within the 5 min flap window" in (record.status_reason or "")
    assert record.healthy_at == succeeded.healthy_at and record.flapped_at  # both moments are kept
    assert world.ledger.in_flight() == []
    assert [d["outcome"] for d in metrics(capsys, pipeline_metrics.OUTCOMES_METRIC)] == ["DEGRADED"]


def test_after_the_flap_window_a_degraded_application_is_left_alone(world: FakeWorld, setup: Setup) -> None:
    release = setup.promote()
    setup.apps.settle()
    assert moves(setup.track()) == [("prod", release.tag, "SUCCEEDED")]

    setup.apps.tick(timedelta(minutes=6).total_seconds())
    assert [w["reason"] for w in setup.track()["watches_ended"]] == ["no flap within 5 min after SUCCEEDED"]
    setup.apps.mark(release.tag, "degraded")
    setup.apps.tick(POLL)

    assert setup.track()["transitions"] == []
    assert deployment(world, "prod", release.tag).status == "SUCCEEDED"


# --------------------------------------------------------------------------------------------- metrics


def test_metrics_carry_exactly_the_dimensions_the_stacks_alarms_select_on(
    setup: Setup, capsys: pytest.CaptureFixture[str]
) -> None:
    def tracker_output() -> list[str]:
        capsys.readouterr()  # leave out what the promoter printed
        setup.track()
        return capsys.readouterr().out.splitlines()

    setup.promote("prod")
    setup.apps.settle()
    lines = tracker_output()
    setup.promote("staging", mark="degraded")
    setup.apps.settle()
    lines += tracker_output()

    assert_one_success_and_one_degraded(lines)
