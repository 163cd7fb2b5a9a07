"""The tracker Lambda handler end to end, against the local stack and the Argo CD simulator over HTTP.

What stays here needs the real parts: the healthy rollout (the demo path) with its DynamoDB item, an
Argo CD that answers 503 through the client's retries, a token it rejects (401), one HTTP request per
application, the metrics' EMF lines against the stack's alarms, and the promoter's refresh nudge on
the wire. Every other outcome (degraded, sync failed, timed out, superseded, unknown or unconfigured
application, writes only on transitions, a concurrent writer, a staging commit during a prod rollout)
is a service test on the fakes, with the simulator's own documents: tests/services/test_track.py.

Each test promotes real releases through the promoter handler (real registry, signatures, GitHub
stand-in commits, DynamoDB on moto), then drives the simulator's manual clock and runs the tracker
handler. The promoter, the simulator and the tracker share that clock, so nothing depends on how
fast this machine is.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from devstack.scenario import SeedScenario
from devstack.stack import LEDGER_TABLE, LocalStack
from tagrelay.domain.records import DecisionRecord, parse_timestamp, timestamp
from tagrelay.errors import MisconfiguredError
from tests.emf import assert_one_success_and_one_degraded
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


# --------------------------------------------------------------------------------------------- metrics


def test_metrics_carry_exactly_the_dimensions_the_stacks_alarms_select_on(
    scenario: SeedScenario, tracker_env: Configure, capsys: pytest.CaptureFixture[str]
) -> None:
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

    assert_one_success_and_one_degraded(lines)


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
