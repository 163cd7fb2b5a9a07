"""Contract of the DeploymentLedger port: FakeLedger and the DynamoDB adapter (against moto, through
the local stack's fault proxy) keep the same conditions and page the same way."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from devstack.stack import LEDGER_TABLE, LocalStack
from tagrelay.domain.records import DecisionRecord, EnvironmentState, new_decision_id, timestamp
from tagrelay.ports import DeploymentLedger
from tagrelay.services.operate import restore_pin
from tests.fakes.ledger import FakeLedger

APP, REPO = "mosaic-life", "acme/gitops"
T0 = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(params=["fake", pytest.param("stack", marks=pytest.mark.stack)])
def ledger(request: pytest.FixtureRequest) -> Iterator[DeploymentLedger]:
    if request.param == "fake":
        yield FakeLedger(LEDGER_TABLE)
        return
    from tagrelay.adapters.store import Ledger

    stack: LocalStack = request.getfixturevalue("stack")
    stack.reset_ledger()
    yield Ledger(LEDGER_TABLE, client=stack.aws_client("dynamodb"))


def at(minutes: float) -> str:
    return timestamp(T0 + timedelta(minutes=minutes))


def decision(minutes: float, *, env: str = "prod", outcome: str = "committed", **fields: Any) -> DecisionRecord:
    tag = fields.pop("tag", f"{int(minutes):07x}")
    base: dict[str, Any] = {
        "decision_id": new_decision_id(),
        "app": APP,
        "env": env,
        "outcome": outcome,
        "reason": "committed" if outcome == "committed" else "release_incomplete",
        "message": f"{outcome} at {minutes}",
        "created_at": at(minutes),
        "trigger": "push",
        "tag": tag,
        "sha": tag[:7],
        "full_sha": tag[:7] + "0" * 33,
    }
    if outcome == "committed":
        base.update(
            status="COMMITTED",
            committed_at=at(minutes),
            gitops_commit=f"{int(minutes * 1000):040x}",
            digests={"web": "sha256:" + f"{int(minutes):064x}"},
        )
    base.update(fields)
    return DecisionRecord(**base)


def test_a_deployment_is_recorded_once_per_gitops_commit_and_becomes_current(ledger: DeploymentLedger) -> None:
    first = decision(1)
    assert ledger.record_deployment(first, REPO)
    assert not ledger.record_deployment(dataclasses.replace(first, decision_id=new_decision_id()), REPO)
    state = ledger.environment_state(APP, "prod")
    assert state is not None
    assert (state.current_decision_id, state.current_tag, state.gitops_commit) == (
        first.decision_id,
        first.tag,
        first.gitops_commit,
    )
    assert ledger.deployment_for_commit(APP, "prod", REPO, first.gitops_commit or "") == first
    assert ledger.deployment_for_commit(APP, "prod", REPO, "f" * 40) is None


def test_the_state_never_moves_back_to_an_older_deployment(ledger: DeploymentLedger) -> None:
    newer, older = decision(5), decision(2)
    assert ledger.record_deployment(newer, REPO)
    assert ledger.record_deployment(older, REPO)  # recorded, but not current
    state = ledger.environment_state(APP, "prod")
    assert state is not None and state.current_decision_id == newer.decision_id
    unrecorded = decision(1)
    assert ledger.record_deployment(unrecorded, REPO, make_current=False)
    assert (
        ledger.environment_state(APP, "prod") or EnvironmentState(APP, "prod")
    ).current_decision_id == newer.decision_id


def test_set_current_is_a_compare_and_swap_on_the_gitops_commit(ledger: DeploymentLedger) -> None:
    first, second = decision(1), decision(2)
    assert ledger.set_current(first, expected_gitops_commit=None)
    assert not ledger.set_current(second, expected_gitops_commit=None)  # someone is current already
    assert not ledger.set_current(second, expected_gitops_commit="0" * 40)
    assert ledger.set_current(second, expected_gitops_commit=first.gitops_commit)
    state = ledger.environment_state(APP, "prod")
    assert state is not None and state.current_tag == second.tag


def test_a_promoted_release_keeps_its_first_digests_and_gains_environments(ledger: DeploymentLedger) -> None:
    prod = decision(1, tag="abc1234")
    staging = decision(2, env="staging", tag="abc1234", digests={"web": "sha256:" + "9" * 64})
    ledger.record_deployment(prod, REPO)
    ledger.record_deployment(staging, REPO)
    promoted = ledger.promoted_release(APP, "abc1234")
    assert promoted is not None
    assert (promoted.digests, promoted.envs, promoted.promoted_at) == (
        prod.digests,
        ("prod", "staging"),
        prod.committed_at,
    )
    assert ledger.promoted_release(APP, "fffffff") is None


def test_history_pages_newest_first_without_gaps_or_repeats(ledger: DeploymentLedger) -> None:
    written = [decision(m, outcome="waiting") for m in range(7)]
    for record in written:
        ledger.record_decision(record)
    ledger.record_decision(decision(3, env="staging", outcome="waiting"))
    seen: list[DecisionRecord] = []
    token: dict[str, Any] | None = None
    for _ in range(10):
        page = ledger.history(APP, "prod", limit=3, next_token=token)
        assert len(page.records) <= 3
        seen.extend(page.records)
        token = page.next_token
        if token is None:
            break
    assert seen == list(reversed(written))
    resumed = ledger.history(APP, "prod", limit=2, next_token=ledger.resume_key(written[4]))
    assert resumed.records == [written[3], written[2]]


def test_history_by_sha_spans_environments_and_a_longer_sha_narrows_it(ledger: DeploymentLedger) -> None:
    prod = decision(1, tag="abc1234", full_sha="abc1234" + "1" * 33)
    staging = decision(2, env="staging", tag="abc1234", full_sha="abc1234" + "1" * 33)
    other = decision(3, tag="abc1234", full_sha="abc1234" + "2" * 33, outcome="waiting")
    for record in (prod, staging, other):
        ledger.record_decision(record)
    assert ledger.history_by_sha("abc1234", limit=10).records == [other, staging, prod]
    assert ledger.history_by_sha("abc12341", limit=10).records == [staging, prod]
    first = ledger.history_by_sha("abc1234", limit=1)
    assert first.records == [other]
    assert ledger.history_by_sha("abc1234", limit=5, next_token=ledger.resume_key(other, by_sha=True)).records == [
        staging,
        prod,
    ]


def test_in_flight_lists_committed_deployments_oldest_first_until_a_final_transition(ledger: DeploymentLedger) -> None:
    first, second = decision(1), decision(2)
    ledger.record_deployment(second, REPO)
    ledger.record_deployment(first, REPO)
    ledger.record_decision(decision(3, outcome="waiting"))
    assert [r.decision_id for r in ledger.in_flight()] == [first.decision_id, second.decision_id]
    assert ledger.record_tracking(first, "SYNCING", {"sync_started_at": at(1.5), "ignored": None}, final=False)
    assert not ledger.record_tracking(first, "SUCCEEDED", {}, final=True)  # read as COMMITTED: stale
    syncing = ledger.decision(APP, "prod", first.created_at, first.decision_id)
    assert syncing is not None and (syncing.status, syncing.sync_started_at) == ("SYNCING", at(1.5))
    assert ledger.record_tracking(syncing, "SUCCEEDED", {"healthy_at": at(3)}, final=True)
    assert [r.decision_id for r in ledger.in_flight()] == [second.decision_id]
    done = ledger.decision(APP, "prod", first.created_at, first.decision_id)
    assert done is not None and (done.status, done.healthy_at) == ("SUCCEEDED", at(3))


def test_deployments_by_sort_key_range_are_committed_ones_only(ledger: DeploymentLedger) -> None:
    records = [decision(m) for m in range(5)]
    for record in records:
        ledger.record_deployment(record, REPO)
    ledger.record_decision(decision(2.5, outcome="rejected"))
    newest_first = list(ledger.deployments(APP, "prod", page_size=2))
    assert newest_first == list(reversed(records))
    window = list(
        ledger.deployments(
            APP,
            "prod",
            since=records[1].created_at,
            through_key=(records[3].created_at, records[3].decision_id),
            newest_first=False,
        )
    )
    assert window == records[1:4]


def test_a_pin_is_set_cleared_and_restored_beside_the_current_deployment(ledger: DeploymentLedger) -> None:
    current = decision(1)
    ledger.record_deployment(current, REPO)
    ledger.set_pin(APP, "prod", reason="incident 42", pinned_by="alice", pinned_at=at(2))
    pinned = ledger.environment_state(APP, "prod")
    assert pinned is not None
    assert (pinned.pinned, pinned.pin_reason, pinned.pinned_by, pinned.current_tag) == (
        True,
        "incident 42",
        "alice",
        current.tag,
    )
    ledger.clear_pin(APP, "prod")
    cleared = ledger.environment_state(APP, "prod")
    assert cleared is not None and (cleared.pinned, cleared.pin_reason) == (False, None)
    restore_pin(ledger, APP, "prod", pinned)
    assert ledger.environment_state(APP, "prod") == pinned
    restore_pin(ledger, APP, "staging", None)
    assert ledger.environment_state(APP, "staging") == EnvironmentState(APP, "staging", pinned=False)


def test_an_alert_is_noted_once_per_key_until_a_new_deployment_is_current(ledger: DeploymentLedger) -> None:
    assert not ledger.note_alert(APP, "prod", "sha256:aa")  # no state yet: nothing to note it on
    ledger.record_deployment(decision(1), REPO)
    assert ledger.note_alert(APP, "prod", "sha256:aa")
    assert not ledger.note_alert(APP, "prod", "sha256:aa")
    assert ledger.note_alert(APP, "prod", "sha256:bb")
    ledger.record_deployment(decision(2), REPO)
    assert ledger.note_alert(APP, "prod", "sha256:aa")


def test_a_sighting_keeps_the_time_a_tag_was_first_seen_on_a_digest(ledger: DeploymentLedger) -> None:
    digest = "sha256:" + "a" * 64
    ledger.record_sighting("web", digest, "abc1234", T0)
    ledger.record_sighting("web", digest, "abc1234", T0 + timedelta(minutes=5))
    ledger.record_sighting("web", digest, "abc1234-rc", T0 + timedelta(minutes=6))
    assert ledger.first_seen("web", digest, "abc1234") == T0
    assert ledger.first_seen("web", digest, "def5678") is None
    assert sorted(ledger.release_tags_for("web", digest)) == ["abc1234", "abc1234-rc"]
    assert ledger.release_tags_for("web", "sha256:" + "b" * 64) == []


def test_a_waiting_release_is_undecided_until_decided_and_never_reopened(ledger: DeploymentLedger) -> None:
    for minute, tag in enumerate(("aaaaaaa", "bbbbbbb", "ccccccc")):
        ledger.note_release_waiting(
            APP, tag, reason="release_incomplete", message="web missing", now=T0 + timedelta(minutes=minute)
        )
    ledger.note_release_waiting(
        APP, "aaaaaaa", reason="signature_missing", message="unsigned", now=T0 + timedelta(minutes=9)
    )
    found, more = ledger.undecided_releases(seen_since=at(0), limit=10)
    assert [(r.tag, r.first_seen_at, r.waiting_reason) for r in found] == [
        ("aaaaaaa", at(0), "signature_missing"),
        ("bbbbbbb", at(1), "release_incomplete"),
        ("ccccccc", at(2), "release_incomplete"),
    ]
    assert not more
    ledger.note_release_decided(APP, "bbbbbbb", decision="promote", now=T0 + timedelta(minutes=3))
    ledger.note_release_waiting(
        APP, "bbbbbbb", reason="release_incomplete", message="late", now=T0 + timedelta(minutes=4)
    )
    found, more = ledger.undecided_releases(seen_since=at(0), limit=1)
    assert ([r.tag for r in found], more) == (["aaaaaaa"], True)
    found, _ = ledger.undecided_releases(seen_since=at(1), limit=10)
    assert [r.tag for r in found] == ["ccccccc"]


def test_a_request_id_and_a_nonce_are_each_used_once(ledger: DeploymentLedger) -> None:
    first = ledger.begin_request("req-1", fingerprint="f1", operation="pin", app=APP, env="prod", actor="alice", now=T0)
    assert first is None
    again = ledger.begin_request("req-1", fingerprint="f1", operation="pin", app=APP, env="prod", actor="alice", now=T0)
    assert again is not None and (again.status, again.fingerprint, again.outcome) == ("started", "f1", None)
    ledger.finish_request("req-1", {"ok": True, "outcome": "pinned"}, now=T0)
    done = ledger.begin_request("req-1", fingerprint="f1", operation="pin", app=APP, env="prod", actor="alice", now=T0)
    assert done is not None and (done.status, done.outcome) == ("done", {"ok": True, "outcome": "pinned"})
    assert ledger.use_nonce("n" * 32, expires_at=T0)
    assert not ledger.use_nonce("n" * 32, expires_at=T0)
