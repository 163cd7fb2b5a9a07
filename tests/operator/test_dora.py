"""DORA figures (domain/dora.py, `tagrelay dora`), from a synthetic ledger whose figures are worked out
by hand below: pure first, then written to DynamoDB (moto) and read back by the command."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from ruamel.yaml import YAML

from devstack.process import RunningServer
from devstack.stack import EXAMPLE_CONFIG
from tagrelay.adapters.ledger_schema import table_definition
from tagrelay.adapters.store import Ledger
from tagrelay.cli.main import main
from tagrelay.domain.dora import compute, percentile
from tagrelay.domain.records import DecisionRecord, new_decision_id, timestamp

APP = "mosaic-life"
H, M, D = 3600, 60, 86_400

# --------------------------------------------------------------------------------------------------
# The synthetic history of prod, 30-day window; T0 is 20 days ago. Offsets in seconds from T0.
#
#   name  trigger   committed  status      source commit  healthy     figures
#   D1    push      0          SUCCEEDED   -1h            +10m        lead 1h10m (4200)
#   D2    push      1d         SUCCEEDED   1d-2h          1d+20m      lead 2h20m (8400); failed: rolled back
#   R1    rollback  1d+1h      SUCCEEDED   (old commit)   1d+1h05m    restores D2: 1h05m (3900)
#   D3    push      2d         DEGRADED    2d-30m         -           failed; incident opens
#   D4    push      2d+3h      SUCCEEDED   2d+2h          2d+3h10m    lead 1h10m (4200); restores D3: 3h10m (11400)
#   D5    push      3d         SUPERSEDED  -              -           no result
#   D6    push      3d+1m      SYNC_FAILED -              -           failed; incident opens
#   D7    push      3d+2h      TIMED_OUT   -              -           failed; same incident
#   D8    manual    4d         SUCCEEDED   4d-45m         4d+15m      lead 1h (3600); restores D6: 1d+14m (87240)
#   D9    push      5d         COMMITTED   -              -           in flight: no result
#   D10   push      5d+1h      DEGRADED    -              -           failed; incident still open
#
# plus, ignored: a SUCCEEDED deployment 40 days ago (outside the window), and non-deployment records
# (a pin, a rejection, a skip) inside it.
#
# changes 10, rollbacks 1; SUCCEEDED changes 4 -> 4/30 per day; lead times [3600, 4200, 4200, 8400]:
# median 4200, p90 8400; with a result 8 (not D5, D9), failed 5 (D2 D3 D6 D7 D10) -> 0.625;
# incidents 4, restored 3: [3900, 11400, 87240] -> median 11400; 1 open.
PROD: list[tuple[str, str, int, str, int | None, int | None]] = [
    ("D1", "push", 0, "SUCCEEDED", -1 * H, 10 * M),
    ("D2", "push", 1 * D, "SUCCEEDED", 1 * D - 2 * H, 1 * D + 20 * M),
    ("R1", "rollback", 1 * D + 1 * H, "SUCCEEDED", None, 1 * D + 1 * H + 5 * M),
    ("D3", "push", 2 * D, "DEGRADED", 2 * D - 30 * M, None),
    ("D4", "push", 2 * D + 3 * H, "SUCCEEDED", 2 * D + 2 * H, 2 * D + 3 * H + 10 * M),
    ("D5", "push", 3 * D, "SUPERSEDED", None, None),
    ("D6", "push", 3 * D + 1 * M, "SYNC_FAILED", None, None),
    ("D7", "push", 3 * D + 2 * H, "TIMED_OUT", None, None),
    ("D8", "manual", 4 * D, "SUCCEEDED", 4 * D - 45 * M, 4 * D + 15 * M),
    ("D9", "push", 5 * D, "COMMITTED", None, None),
    ("D10", "push", 5 * D + 1 * H, "DEGRADED", None, None),
]
EXPECTED_PROD = {
    "deployments": 10,
    "rollbacks": 1,
    "successful_deployments": 4,
    "deployments_per_day": 4 / 30,
    "lead_time_samples": 4,
    "lead_time_median_seconds": 4200.0,
    "lead_time_p90_seconds": 8400.0,
    "changes_with_result": 8,
    "failed_changes": 5,
    "change_failure_rate": 0.625,
    "incidents": 4,
    "restored": 3,
    "open_incidents": 1,
    "time_to_restore_median_seconds": 11400.0,
}


def deployment(
    env: str, name: str, trigger: str, at: datetime, status: str, source: datetime | None, healthy: datetime | None
) -> DecisionRecord:
    created = timestamp(at)
    return DecisionRecord(
        decision_id=new_decision_id(),
        app=APP,
        env=env,
        outcome="committed",
        reason="committed",
        message=name,
        created_at=created,
        trigger=trigger,
        tag=f"{abs(hash(name)) % 16**7:07x}",
        gitops_commit=f"{abs(hash(name + env)) % 16**40:040x}",
        status=status,
        committed_at=created,
        source_committed_at=timestamp(source) if source else None,
        healthy_at=timestamp(healthy) if healthy else None,
        finished_at=timestamp(healthy) if healthy else None,
    )


def synthetic_ledger(now: datetime) -> dict[str, list[DecisionRecord]]:
    t0 = now - timedelta(days=20)

    def at(offset: int | None) -> datetime | None:
        return None if offset is None else t0 + timedelta(seconds=offset)

    prod = [
        deployment("prod", name, trigger, t0 + timedelta(seconds=committed), status, at(source), at(healthy))
        for name, trigger, committed, status, source, healthy in PROD
    ]
    old = now - timedelta(days=40)
    prod.append(deployment("prod", "old", "push", old, "SUCCEEDED", old - timedelta(hours=1), old))
    staging = [
        deployment("staging", "S1", "push", t0, "SUCCEEDED", t0 - timedelta(minutes=5), t0 + timedelta(minutes=5))
    ]
    noise = [
        DecisionRecord(
            new_decision_id(), APP, "prod", outcome, reason, "", timestamp(t0 + timedelta(hours=hours)), "push"
        )
        for outcome, reason, hours in (
            ("pinned", "environment_pinned", 2),
            ("rejected", "signature_invalid", 3),
            ("skipped", "environment_pinned", 4),
        )
    ]
    return {"prod": prod + noise, "staging": staging}


def figures_of(data: dict[str, Any]) -> dict[str, Any]:
    return {key: data[key] for key in EXPECTED_PROD}


# --------------------------------------------------------------------------------------------- pure


def test_the_synthetic_history_gives_the_figures_worked_out_by_hand() -> None:
    now = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
    ledger = synthetic_ledger(now)

    prod = compute(APP, "prod", ledger["prod"], since=now - timedelta(days=30), until=now)

    assert figures_of(prod.__dict__) == EXPECTED_PROD
    assert (prod.days, prod.since, prod.until) == (30.0, "2026-10-27T12:00:00.000Z", "2026-11-26T12:00:00.000Z")


def test_order_of_the_input_does_not_matter_and_an_empty_window_has_no_figures() -> None:
    now = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
    records = synthetic_ledger(now)["prod"]
    window = {"since": now - timedelta(days=30), "until": now}

    assert compute(APP, "prod", reversed(records), **window) == compute(APP, "prod", records, **window)
    empty = compute(APP, "prod", [], **window)
    assert (empty.deployments, empty.deployments_per_day, empty.change_failure_rate) == (0, 0.0, None)
    assert (empty.lead_time_median_seconds, empty.time_to_restore_median_seconds, empty.incidents) == (None, None, 0)


def test_a_failed_rollback_does_not_restore_and_a_rolled_back_change_fails_whatever_its_status() -> None:
    now = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
    t0 = now - timedelta(days=1)

    def at(minutes: int) -> datetime:
        return t0 + timedelta(minutes=minutes)

    records = [
        deployment("prod", "bad", "push", at(0), "SUPERSEDED", None, None),  # rolled back before its outcome
        deployment("prod", "rb1", "rollback", at(10), "DEGRADED", None, None),
        deployment("prod", "rb2", "rollback", at(20), "SUCCEEDED", None, at(25)),
    ]

    result = compute(APP, "prod", records, since=now - timedelta(days=7), until=now)

    assert (result.failed_changes, result.changes_with_result, result.change_failure_rate) == (1, 1, 1.0)
    assert (result.incidents, result.restored, result.open_incidents) == (1, 1, 0)
    assert result.time_to_restore_median_seconds == 25 * 60  # from the bad commit to rb2 healthy, not rb1
    assert result.rollbacks == 2 and result.deployments == 1


def test_percentile_is_nearest_rank() -> None:
    assert percentile([], 90) is None
    assert percentile([5.0], 90) == 5.0
    assert percentile([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0], 90) == 9.0
    assert percentile([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0], 90) == 10.0


# --------------------------------------------------------------------------------------------- the ledger and the command

TABLE = "dora-ledger"


@pytest.fixture(scope="module")
def ledger(moto_server: RunningServer) -> Iterator[Ledger]:
    client: Any = boto3.client("dynamodb")  # table_definition is the untyped CreateTable arguments
    client.create_table(**table_definition(TABLE))
    yield Ledger(TABLE)
    client.delete_table(TableName=TABLE)


@pytest.fixture(scope="module")
def written(ledger: Ledger, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The synthetic ledger in DynamoDB, 20 days before now, and a configuration that reads it."""
    for records in synthetic_ledger(datetime.now(UTC)).values():
        for record in records:
            ledger.record_decision(record)
    yaml = YAML(typ="safe", pure=True)
    data = yaml.load(EXAMPLE_CONFIG.read_text())
    data["ledger"] = {"table": TABLE}
    path = tmp_path_factory.mktemp("dora") / "tagrelay.yaml"
    with path.open("w") as stream:
        yaml.dump(data, stream)
    return path


@pytest.mark.stack
def test_deployments_are_read_by_sort_key_range_a_page_at_a_time(ledger: Ledger, written: Path) -> None:
    since = timestamp(datetime.now(UTC) - timedelta(days=30))
    before = ledger.request_count

    records = list(ledger.deployments(APP, "prod", since=since, newest_first=False, page_size=4))

    assert [r.message for r in records] == [name for name, *_ in PROD]  # oldest first; not 'old', no noise
    assert ledger.request_count - before == 4  # 14 items in the range, 4 a page: 4 Queries, no Scan
    newest_first = [r.message for r in ledger.deployments(APP, "prod", since=since)]
    assert newest_first == [name for name, *_ in reversed(PROD)]


@pytest.mark.stack
def test_tagrelay_dora_json_reports_the_known_figures_per_environment(
    written: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    code = main(["dora", "--config", str(written), "-o", "json"])
    out, err = capsys.readouterr()

    assert (code, err) == (0, "")
    data = json.loads(out)
    assert data["days"] == 30
    prod, staging = data["environments"]
    assert (prod["env"], staging["env"]) == ("prod", "staging")
    assert figures_of(prod) == EXPECTED_PROD
    assert (staging["deployments"], staging["change_failure_rate"], staging["lead_time_median_seconds"]) == (
        1,
        0.0,
        600.0,
    )


@pytest.mark.stack
def test_tagrelay_dora_table_and_its_refusals(written: Path, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert main(["dora", "--config", str(written), "--env", "prod"]) == 0
    out = capsys.readouterr().out

    header, row = out.splitlines()[1:3]
    assert header.split()[:3] == ["ENVIRONMENT", "SUCCEEDED", "PER"]
    assert row.split() == [
        "mosaic-life/prod",
        "4/10",
        "0.13",
        "1h10m",
        "2h20m",
        "62%",
        "(5/8)",
        "3h10m",
        "1",
        "4",
        "(1",
        "open)",
    ]

    assert main(["dora", "--config", str(written), "--env", "qa"]) == 2
    assert "no environment 'qa'; configured: prod, staging" in capsys.readouterr().err
    assert main(["dora", "--config", str(written), "--days", "0"]) == 2
    assert "--days must be between 1 and 366" in capsys.readouterr().err
