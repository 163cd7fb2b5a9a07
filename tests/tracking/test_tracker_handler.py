"""The tracker Lambda handler against the local stack and the Argo CD simulator, outcome by outcome.

Each test promotes real releases through the promoter handler (real registry, signatures, GitHub
stand-in commits, DynamoDB on moto), then drives the simulator's manual clock and runs the tracker
handler. The promoter, the simulator and the tracker share that clock, so nothing depends on how
fast this machine is.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

from devstack.scenario import SeedScenario
from devstack.stack import LEDGER_TABLE, LocalStack
from tagrelay.domain.records import DecisionRecord, parse_timestamp, timestamp
from tagrelay.errors import MisconfiguredError
from tests.tracking.support import Configure, deployment, in_flight, moves, promote, track

pytestmark = pytest.mark.stack


# --------------------------------------------------------------------------------------------- helpers


def raw_item(stack: LocalStack, record: DecisionRecord) -> dict[str, Any]:
    """The ledger item as stored, with the attributes DecisionRecord does not read (durations...)."""
    from boto3.dynamodb.types import TypeDeserializer

    key = {"pk": {"S": f"ENV#{record.app}#{record.env}"}, "sk": {"S": f"DEC#{record.created_at}#{record.decision_id}"}}
    item = stack.aws_client("dynamodb").get_item(TableName=LEDGER_TABLE, Key=key, ConsistentRead=True)["Item"]
    deserializer = TypeDeserializer()
    return {name: deserializer.deserialize(value) for name, value in item.items()}


# --------------------------------------------------------------------------------------------- outcomes


def test_a_healthy_rollout_is_recorded_as_syncing_then_succeeded_with_argo_cds_times(
    stack: LocalStack, scenario: SeedScenario, tracker_env: Configure
) -> None:
    setup = tracker_env()
    release = promote(scenario, setup)
    tag = release.tag

    # The refresh nudge made Argo CD notice the commit at once; its auto-sync starts 5 s later.
    setup.control.tick(10)
    assert moves(track()) == [("prod", tag, "SYNCING")]
    record = deployment("prod", tag)
    assert record.status == "SYNCING" and record.sync_started_at

    setup.control.settle()
    result = track()

    assert moves(result) == [("prod", tag, "SUCCEEDED")]
    record = deployment("prod", tag)
    assert record.status == "SUCCEEDED"
    assert "Healthy with all 2 image(s) running" in (record.status_reason or "")
    assert record.committed_at and record.sync_started_at and record.synced_at and record.healthy_at
    assert record.committed_at <= record.sync_started_at < record.synced_at < record.healthy_at
    assert record.finished_at
    item = raw_item(stack, record)
    # Argo CD's status.history times, and the durations derived from them (simulated: 5 s, then 20 s).
    assert item["deploy_started_at"] == record.sync_started_at and item["deployed_at"] == record.synced_at
    assert item["sync_seconds"] == 20
    assert 0 < item["time_to_sync_seconds"] < item["time_to_healthy_seconds"] <= item["lead_time_seconds"]
    # SUCCEEDED, but watched for a flap for tracking.flap_window_minutes (5) after it became healthy.
    assert item["watch_until"] == timestamp(parse_timestamp(record.healthy_at) + timedelta(minutes=5))
    assert "gsi2pk" in item and [r.status for r in in_flight()] == ["SUCCEEDED"]

    setup.control.tick(timedelta(minutes=5).total_seconds())
    result = track()
    assert result["transitions"] == [] and [w["written"] for w in result["watches_ended"]] == [True]
    item = raw_item(stack, record)
    assert "gsi2pk" not in item and "gsi2sk" not in item  # left the in-flight index
    assert item["status"] == "SUCCEEDED" and item["watch_ended_at"]
    assert in_flight() == []


def test_a_tag_that_never_becomes_healthy_is_degraded(scenario: SeedScenario, tracker_env: Configure) -> None:
    setup = tracker_env()
    release = promote(scenario, setup, "prod", mark="degraded")

    setup.control.settle()
    result = track()

    assert moves(result) == [("prod", release.tag, "DEGRADED")]
    record = deployment("prod", release.tag)
    assert "health is Degraded" in (record.status_reason or "")
    assert "exceeded its progress deadline" in (record.status_reason or "")
    assert record.synced_at and not record.healthy_at


def test_a_manifest_that_fails_to_apply_is_sync_failed(scenario: SeedScenario, tracker_env: Configure) -> None:
    setup = tracker_env()
    release = promote(scenario, setup, "staging", mark="sync_failed")

    setup.control.settle()
    result = track()

    assert moves(result) == [("staging", release.tag, "SYNC_FAILED")]
    reason = deployment("staging", release.tag).status_reason or ""
    assert "Failed" in reason and "failed to apply" in reason


def test_a_manifest_argo_cd_cannot_render_is_sync_failed(scenario: SeedScenario, tracker_env: Configure) -> None:
    setup = tracker_env(multi_source=False)
    release = promote(scenario, setup, "prod", mark="comparison_error")

    setup.control.tick(200)  # the next reconcile after the commit reports the error
    result = track()

    assert moves(result) == [("prod", release.tag, "SYNC_FAILED")]
    assert "ComparisonError" in (deployment("prod", release.tag).status_reason or "")


def test_no_outcome_within_the_environments_timeout_is_timed_out(
    scenario: SeedScenario, tracker_env: Configure
) -> None:
    # Kubernetes waits 600 s before calling a bad rollout Degraded; prod's tracking window is 1 minute.
    setup = tracker_env(environments={"prod": {"timeout_minutes": 1}})
    release = promote(scenario, setup, "prod", mark="degraded")

    setup.control.tick(59)
    assert [t["to"] for t in track()["transitions"]] == ["SYNCING"]
    setup.control.tick(2)
    result = track()

    assert moves(result) == [("prod", release.tag, "TIMED_OUT")]
    reason = deployment("prod", release.tag).status_reason or ""
    assert reason.startswith("no outcome 1 min after the commit; still waiting for health (now Progressing)")


def test_a_newer_commit_supersedes_the_one_still_rolling_out(scenario: SeedScenario, tracker_env: Configure) -> None:
    setup = tracker_env()
    first = promote(scenario, setup)
    setup.control.tick(10)  # Argo CD is syncing the first commit
    second = promote(scenario, setup)

    result = track()

    assert ("prod", first.tag, "SUPERSEDED") in moves(result)
    older = deployment("prod", first.tag)
    assert "superseded by" in (older.status_reason or "")
    setup.control.settle()
    assert moves(track()) == [("prod", second.tag, "SUCCEEDED")]
    assert [(r.tag, r.status) for r in in_flight()] == [(second.tag, "SUCCEEDED")]  # watched for a flap


def test_an_application_argo_cd_does_not_know_is_env_unavailable(
    scenario: SeedScenario, tracker_env: Configure
) -> None:
    setup = tracker_env()
    release = promote(scenario, setup, "staging")
    setup.control.remove_app(setup.apps["staging"])  # like `just stage-down`

    result = track()

    assert moves(result) == [("staging", release.tag, "ENV_UNAVAILABLE")]
    reason = deployment("staging", release.tag).status_reason or ""
    assert f"application {setup.apps['staging']} unavailable (HTTP 404)" in reason
    assert in_flight() == []


def test_an_environment_without_an_argo_cd_application_leaves_the_in_flight_set(
    scenario: SeedScenario, tracker_env: Configure
) -> None:
    setup = tracker_env(environments={"staging": {"argocd_app": None}})
    release = promote(scenario, setup, "staging")
    setup.control.clear_requests()

    result = track()

    assert moves(result) == [("staging", release.tag, "ENV_UNAVAILABLE")]
    assert "names no argocd_app" in (deployment("staging", release.tag).status_reason or "")
    assert result["argocd_requests"] == 0 and setup.control.requests() == []


# --------------------------------------------------------------------------------------------- failures of Argo CD


def test_an_unreachable_argo_cd_records_nothing_even_past_the_deadline(
    scenario: SeedScenario, tracker_env: Configure
) -> None:
    setup = tracker_env()
    release = promote(scenario, setup)
    setup.control.settle()
    setup.control.tick(timedelta(minutes=20).total_seconds())  # far past the 15-minute timeout
    setup.control.inject_fault(503, count=4)  # the request and its three retries

    result = track()

    assert result["transitions"] == [] and result["waiting"] == 1
    assert setup.apps["prod"] in result["unreachable"]
    assert result["dynamodb_requests"] == 1  # the in-flight query, no write
    assert deployment("prod", release.tag).status == "COMMITTED"

    # Argo CD is back: the evidence wins over the elapsed deadline.
    assert moves(track()) == [("prod", release.tag, "SUCCEEDED")]


def test_a_rejected_token_fails_the_run_and_records_nothing(
    stack: LocalStack, scenario: SeedScenario, tracker_env: Configure
) -> None:
    from devstack.argocd_sim import make_token

    secrets = stack.aws_client("secretsmanager")
    secret_name = f"{scenario.gitops_repo.split('/')[0]}/argocd-token"
    secrets.create_secret(Name=secret_name, SecretString=make_token("intruder"))
    setup = tracker_env(argocd={"token_secret": secret_name, "refresh_after_commit": False})
    release = promote(scenario, setup)
    setup.control.settle()

    with pytest.raises(MisconfiguredError, match="token is invalid or expired"):
        track()

    assert deployment("prod", release.tag).status == "COMMITTED"
    assert [entry["status"] for entry in setup.control.requests()][-1] == 401


# --------------------------------------------------------------------------------------------- budgets


def test_one_argo_cd_request_per_application_however_many_deployments_are_in_flight(
    scenario: SeedScenario, tracker_env: Configure
) -> None:
    setup = tracker_env()
    prod = [promote(scenario, setup, "prod") for _ in range(3)]
    staging = [promote(scenario, setup, "staging") for _ in range(2)]
    setup.control.clear_requests()

    result = track()

    paths = sorted(entry["path"] for entry in setup.control.requests())
    assert paths == sorted(f"/api/v1/applications/{app}" for app in setup.apps.values())
    assert (result["in_flight"], result["applications"], result["argocd_requests"]) == (5, 2, 2)
    superseded = {t["tag"] for t in result["transitions"] if t["to"] == "SUPERSEDED"}
    assert superseded == {prod[0].tag, prod[1].tag, staging[0].tag}
    # DynamoDB: the one in-flight query, then one conditional write per transition.
    assert result["dynamodb_requests"] == 1 + len(result["transitions"])


def test_the_ledger_is_written_only_on_transitions(scenario: SeedScenario, tracker_env: Configure) -> None:
    setup = tracker_env()
    release = promote(scenario, setup)
    setup.control.tick(10)
    assert track()["dynamodb_requests"] == 2  # query + COMMITTED -> SYNCING

    for _ in range(3):
        setup.control.tick(5)  # still syncing: nothing new to record
        result = track()
        assert (result["transitions"], result["waiting"], result["dynamodb_requests"]) == ([], 1, 1)

    setup.control.settle()
    assert track()["dynamodb_requests"] == 2  # query + SYNCING -> SUCCEEDED
    assert track()["dynamodb_requests"] == 1  # watched for a flap, nothing changed: the query only
    setup.control.tick(timedelta(minutes=5).total_seconds())
    assert track()["dynamodb_requests"] == 2  # query + the end of the watch
    assert track()["dynamodb_requests"] == 1  # nothing in flight: the query only
    assert deployment("prod", release.tag).status == "SUCCEEDED"


def test_a_concurrent_writer_is_never_overwritten(scenario: SeedScenario, tracker_env: Configure) -> None:
    from tagrelay import runtime

    setup = tracker_env()
    release = promote(scenario, setup)
    stale = in_flight()  # what a slower, concurrent run read
    setup.control.settle()
    assert moves(track()) == [("prod", release.tag, "SUCCEEDED")]

    ledger = runtime.tracker().deps.ledger
    assert not ledger.record_tracking(stale[0], "TIMED_OUT", {"status_reason": "late"}, final=True)
    assert deployment("prod", release.tag).status == "SUCCEEDED"


def test_a_staging_commit_during_a_prod_rollout_leaves_the_prod_outcome_alone(
    scenario: SeedScenario, tracker_env: Configure
) -> None:
    setup = tracker_env()
    prod = promote(scenario, setup, "prod")
    promote(scenario, setup, "staging")
    setup.control.settle()  # prod also syncs the staging commit: same repository, same branch

    result = track()

    assert ("prod", prod.tag, "SUCCEEDED") in moves(result)


# --------------------------------------------------------------------------------------------- metrics


def test_metrics_carry_exactly_the_dimensions_the_stacks_alarms_select_on(
    scenario: SeedScenario, tracker_env: Configure, capsys: pytest.CaptureFixture[str]
) -> None:
    from infra import pipeline_metrics

    def tracker_output() -> list[str]:
        capsys.readouterr()  # leave out what the promoter printed
        track()
        return capsys.readouterr().out.splitlines()

    setup = tracker_env()
    promote(scenario, setup, "prod")
    setup.control.settle()
    # Prod is tracked before and after the staging commit moves the shared GitOps branch.
    lines = tracker_output()
    promote(scenario, setup, "staging", mark="degraded")
    setup.control.settle()
    lines += tracker_output()

    emitted = [json.loads(line) for line in lines if '"_aws"' in line]
    metrics = [
        (directive["Metrics"][0]["Name"], tuple(sorted(dimension_set)), document)
        for document in emitted
        for directive in document["_aws"]["CloudWatchMetrics"]
        for dimension_set in directive["Dimensions"]
    ]
    assert {document["_aws"]["CloudWatchMetrics"][0]["Namespace"] for _, _, document in metrics} == {
        pipeline_metrics.NAMESPACE
    }
    outcomes = sorted(
        d[pipeline_metrics.OUTCOME_DIMENSION] for n, _, d in metrics if n == pipeline_metrics.OUTCOMES_METRIC
    )
    assert outcomes == ["DEGRADED", "SUCCEEDED"]
    dimensions = {name: dims for name, dims, _ in metrics}
    assert dimensions[pipeline_metrics.OUTCOMES_METRIC] == tuple(
        sorted((pipeline_metrics.OUTCOME_DIMENSION, pipeline_metrics.SERVICE_DIMENSION))
    )
    for name in (pipeline_metrics.LEAD_TIME_METRIC, pipeline_metrics.TIME_TO_SYNC_METRIC):
        assert dimensions[name] == (pipeline_metrics.SERVICE_DIMENSION,)
    assert {d[pipeline_metrics.SERVICE_DIMENSION] for _, _, d in metrics} == {pipeline_metrics.TRACKER_SERVICE}
    lead_times = [d[pipeline_metrics.LEAD_TIME_METRIC] for n, _, d in metrics if n == pipeline_metrics.LEAD_TIME_METRIC]
    assert len(lead_times) == 1 and lead_times[0][0] > 0  # SUCCEEDED only
    assert len([n for n, _, _ in metrics if n == pipeline_metrics.TIME_TO_SYNC_METRIC]) == 2


# --------------------------------------------------------------------------------------------- refresh nudge


def test_the_promoter_nudges_argo_cd_right_after_the_commit(scenario: SeedScenario, tracker_env: Configure) -> None:
    setup = tracker_env()
    setup.control.clear_requests()

    release = promote(scenario, setup)

    refreshes = [e for e in setup.control.requests() if "refresh=normal" in e["query"]]
    assert [(e["path"], e["status"]) for e in refreshes] == [(f"/api/v1/applications/{setup.apps['prod']}", 200)]
    assert "project=mosaic-life" in refreshes[0]["query"]
    # Without waiting for its 180 s poll, Argo CD already compares our commit.
    app = setup.control.app(setup.apps["prod"])
    assert app["sync_status"] == "OutOfSync"
    gitops_commit = deployment("prod", release.tag).gitops_commit
    assert gitops_commit and gitops_commit in app["application"]["status"]["sync"]["revisions"]


def test_no_nudge_when_the_configuration_turns_it_off(scenario: SeedScenario, tracker_env: Configure) -> None:
    setup = tracker_env(argocd={"refresh_after_commit": False})
    setup.control.clear_requests()
    promote(scenario, setup)
    assert setup.control.requests() == []
    assert setup.control.app(setup.apps["prod"])["sync_status"] == "Synced"  # not noticed before its poll


@pytest.mark.parametrize("failure", ["connection refused", "HTTP 503", "slow answer"])
def test_a_failed_nudge_never_fails_the_promotion(scenario: SeedScenario, tracker_env: Configure, failure: str) -> None:
    from devstack.process import free_port

    if failure == "connection refused":
        setup = tracker_env(argocd={"url": f"http://127.0.0.1:{free_port()}"})
    elif failure == "HTTP 503":
        setup = tracker_env()
        setup.control.inject_fault(503, count=1)
    else:  # the nudge does not wait for Argo CD's reconcile: its short read timeout counts as "asked"
        setup = tracker_env()
        setup.control.inject_fault(None, delay_seconds=3.0, count=1)

    release = promote(scenario, setup)

    record = deployment("prod", release.tag)
    assert record.status == "COMMITTED"
    assert f'imageTag: "{release.tag}"' in scenario.values_file("prod").decode()
