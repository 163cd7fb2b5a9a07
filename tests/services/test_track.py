"""The tracker service on the fakes, outcome by outcome: what one run records for each deployment the
promoter committed, from the Application documents Argo CD serves.

Releases are promoted by the promoter service on the fakes; the Argo CD applications are the
simulator's own model on the world's clock (tests/fakes/argocd_apps.py), so the documents are the
stack's, with its realistic timing. The tracker is ``world.tracker()`` and each run is its ``run``,
as the tracker handler calls it. The end-to-end paths (the handler, the simulator over HTTP, moto's
DynamoDB, the metrics' wire format, the refresh nudge) are in tests/tracking/test_tracker_handler.py.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from devstack.argocd_sim import Mark
from devstack.scenario import BRANCH_OF_ENV, Release
from tagrelay.adapters import ledger_schema as keys
from tagrelay.config import Config
from tagrelay.domain.records import DecisionRecord, parse_timestamp, timestamp
from tagrelay.services.promote import Promoter
from tagrelay.services.track import Tracker
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

    def track(self) -> dict[str, Any]:
        """One tracker run, as the handler makes it: its summary, or its error raised."""
        run = self.tracker.run()
        run.raise_if_failed()
        return run.summary()


@pytest.fixture
def setup(world: FakeWorld, apps: ArgoApps) -> Setup:
    return Setup(world, apps, world.config())


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
