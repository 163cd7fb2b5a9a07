"""FakeLedger: the DeploymentLedger port in memory, on the ledger's own key design.

Items live in one dict keyed by (partition key, sort key) built with adapters/ledger_schema.py, with
the same sparse index attributes, so every read is the Query or GetItem the adapter makes:

* conditional writes keep their conditions: one deployment per GitOps commit (the commit guard), the
  environment state only moves forward (or by compare-and-swap on its GitOps commit), a tracking
  transition only from the status it was read with, a request id and a nonce used once, a decided
  release never waiting again;
* queries page like DynamoDB's: a page of ``limit`` items and a key to resume from when it filled up
  (the last page may come back empty), newest or oldest first as the adapter asks;
* ``faults`` fails a method before it writes, or after (a write whose answer was lost).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator, Mapping
from datetime import datetime, timedelta
from typing import Any

from tagrelay.adapters import ledger_schema as keys
from tagrelay.domain.decision import Outcome, Reason
from tagrelay.domain.outcome import DeploymentState
from tagrelay.domain.records import (
    DecisionRecord,
    EnvironmentState,
    HistoryPage,
    PromotedRelease,
    StoredRequest,
    UndecidedRelease,
    parse_timestamp,
    timestamp,
)
from tests.fakes.faults import Faults

Key = tuple[str, str]
_DECISION_FIELDS = {f.name for f in dataclasses.fields(DecisionRecord)}
_STATE_FIELDS = {f.name for f in dataclasses.fields(EnvironmentState)}


class FakeLedger:
    def __init__(self, table_name: str = "tagrelay-ledger", *, ttl_days: int = 30) -> None:
        self.table_name = table_name
        self.ttl = timedelta(days=ttl_days)
        self.items: dict[Key, dict[str, Any]] = {}
        self.request_count = 0
        self.faults = Faults("dynamodb")

    # --- digest sightings ---

    def record_sighting(self, repository: str, digest: str, tag: str, now: datetime) -> None:
        self._call("record_sighting")
        item = self.items.setdefault((keys.sighting_partition(repository, digest), f"{keys.TAG_PREFIX}{tag}"), {})
        item.update(tag=tag, ttl=int((now + self.ttl).timestamp()))
        item.setdefault("seen_at", timestamp(now))
        self.faults.after("record_sighting")

    def release_tags_for(self, repository: str, digest: str) -> list[str]:
        self._call("release_tags_for")
        partition = keys.sighting_partition(repository, digest)
        return [str(item["tag"]) for (pk, _), item in sorted(self.items.items()) if pk == partition]

    def first_seen(self, repository: str, digest: str, tag: str) -> datetime | None:
        self._call("first_seen")
        item = self.items.get((keys.sighting_partition(repository, digest), f"{keys.TAG_PREFIX}{tag}"))
        return parse_timestamp(str(item["seen_at"])) if item else None

    # --- environment state ---

    def environment_state(self, app: str, env: str) -> EnvironmentState | None:
        self._call("environment_state")
        item = self.items.get(self._state_key(app, env))
        if item is None:
            return None
        return EnvironmentState(**{k: v for k, v in item.items() if k in _STATE_FIELDS})

    def set_current(self, record: DecisionRecord, *, expected_gitops_commit: str | None) -> bool:
        self._call("set_current")
        state = self.items.get(self._state_key(record.app, record.env), {})
        if state.get("gitops_commit") != expected_gitops_commit:
            return False
        self._make_current(record)
        self.faults.after("set_current")
        return True

    def note_alert(self, app: str, env: str, key: str) -> bool:
        self._call("note_alert")
        state = self.items.get(self._state_key(app, env))
        if state is None or key in state.get("alerts", set()):
            return False
        state.setdefault("alerts", set()).add(key)
        self.faults.after("note_alert")
        return True

    def set_pin(self, app: str, env: str, *, reason: str, pinned_by: str, pinned_at: str) -> None:
        self._call("set_pin")
        state = self.items.setdefault(self._state_key(app, env), {})
        state.update(app=app, env=env, pinned=True, pin_reason=reason, pinned_by=pinned_by, pinned_at=pinned_at)
        self.faults.after("set_pin")

    def clear_pin(self, app: str, env: str) -> None:
        self._call("clear_pin")
        state = self.items.setdefault(self._state_key(app, env), {})
        state.update(app=app, env=env, pinned=False)
        for name in ("pin_reason", "pinned_by", "pinned_at"):
            state.pop(name, None)
        self.faults.after("clear_pin")

    # --- decisions and deployments ---

    def record_decision(self, record: DecisionRecord) -> None:
        _in_the_vocabulary(record)
        self._call("record_decision")
        self.items[self._decision_key(record)] = self._decision_item(record)
        self.faults.after("record_decision")

    def record_deployment(self, record: DecisionRecord, gitops_repo: str, *, make_current: bool = True) -> bool:
        assert record.gitops_commit, "a deployment record needs its GitOps commit"
        _in_the_vocabulary(record)
        self._call("record_deployment")
        guard = (keys.commit_guard_partition(gitops_repo, record.gitops_commit), keys.COMMIT_GUARD_SORT_KEY)
        if guard in self.items:
            return False
        decision_key = self._decision_key(record)
        self.items[guard] = {
            "decision_id": record.decision_id,
            "decision_pk": decision_key[0],
            "decision_sk": decision_key[1],
        }
        self.items[decision_key] = self._decision_item(record)
        if record.tag and record.digests:
            release = self.items.setdefault((keys.release_partition(record.app, record.tag), keys.RELEASE_SORT_KEY), {})
            release.update(app=record.app, tag=record.tag)
            release.setdefault("digests", dict(record.digests))
            release.setdefault("promoted_at", record.committed_at or record.created_at)
            release.setdefault("envs", set()).add(record.env)
        self.faults.after("record_deployment")
        if make_current:
            self._call("advance_state")
            state = self.items.get(self._state_key(record.app, record.env), {})
            at = record.committed_at or record.created_at
            if "committed_at" not in state or state["committed_at"] <= at:
                self._make_current(record)
            self.faults.after("advance_state")
        return True

    def deployment_for_commit(self, app: str, env: str, gitops_repo: str, gitops_commit: str) -> DecisionRecord | None:
        self._call("deployment_for_commit")
        guard = self.items.get((keys.commit_guard_partition(gitops_repo, gitops_commit), keys.COMMIT_GUARD_SORT_KEY))
        if guard is None:
            return None
        item = self.items.get((guard["decision_pk"], guard["decision_sk"]))
        return _record(item) if item else None

    def promoted_release(self, app: str, tag: str) -> PromotedRelease | None:
        self._call("promoted_release")
        item = self.items.get((keys.release_partition(app, tag), keys.RELEASE_SORT_KEY))
        if item is None or "digests" not in item:
            return None
        return PromotedRelease(
            app=app,
            tag=tag,
            digests=dict(item["digests"]),
            envs=tuple(sorted(item.get("envs") or ())),
            promoted_at=item.get("promoted_at"),
        )

    def decision(self, app: str, env: str, created_at: str, decision_id: str) -> DecisionRecord | None:
        self._call("decision")
        item = self.items.get((keys.env_partition(app, env), keys.decision_sort_key(created_at, decision_id)))
        return _record(item) if item else None

    def deployments(
        self,
        app: str,
        env: str,
        *,
        since: str | None = None,
        through_key: tuple[str, str] | None = None,
        newest_first: bool = True,
        page_size: int = 100,
    ) -> Iterator[DecisionRecord]:
        low = f"{keys.DECISION_PREFIX}{since or ''}"
        high = keys.decision_sort_key(*through_key) if through_key else f"{keys.DECISION_PREFIX}~"
        partition = keys.env_partition(app, env)
        in_range = sorted(
            ((sk, item) for (pk, sk), item in self.items.items() if pk == partition and low <= sk <= high),
            reverse=newest_first,
        )
        # One Query per page; the filter (outcome = committed) applies after the page is read.
        for start in range(0, max(len(in_range), 1), page_size):
            self._call("deployments")
            for _, item in in_range[start : start + page_size]:
                if item.get("outcome") == "committed":
                    yield _record(item)

    # --- releases not decided yet ---

    def note_release_waiting(self, app: str, tag: str, *, reason: str, message: str, now: datetime) -> None:
        self._call("note_release_waiting")
        item = self.items.setdefault(self._release_status_key(app, tag), {})
        if "decided_at" in item:
            return  # decided already: a wait now does not reopen it
        first_seen = timestamp(now)
        item.update(app=app, tag=tag, last_seen_at=first_seen, waiting_reason=reason, waiting_message=message[:1000])
        item.setdefault("first_seen_at", first_seen)
        item[keys.UNDECIDED_PARTITION_KEY] = keys.UNDECIDED_MARKER
        item.setdefault(keys.UNDECIDED_SORT_KEY, keys.undecided_sort_key(first_seen, app, tag))
        self.faults.after("note_release_waiting")

    def note_release_decided(self, app: str, tag: str, *, decision: str, now: datetime) -> None:
        self._call("note_release_decided")
        item = self.items.setdefault(self._release_status_key(app, tag), {})
        item.update(app=app, tag=tag, decided_at=timestamp(now), decision=decision)
        item.pop(keys.UNDECIDED_PARTITION_KEY, None)
        item.pop(keys.UNDECIDED_SORT_KEY, None)
        self.faults.after("note_release_decided")

    def undecided_releases(self, *, seen_since: str, limit: int) -> tuple[list[UndecidedRelease], bool]:
        self._call("undecided_releases")
        waiting = sorted(
            (item[keys.UNDECIDED_SORT_KEY], item)
            for item in self.items.values()
            if item.get(keys.UNDECIDED_PARTITION_KEY) == keys.UNDECIDED_MARKER
            and item[keys.UNDECIDED_SORT_KEY] >= seen_since
        )
        found = [
            UndecidedRelease(
                app=str(item["app"]),
                tag=str(item["tag"]),
                first_seen_at=str(item["first_seen_at"]),
                waiting_reason=item.get("waiting_reason"),
                waiting_message=item.get("waiting_message"),
            )
            for _, item in waiting[:limit]
        ]
        return found, len(waiting) > limit

    # --- operator requests and nonces ---

    def begin_request(
        self, request_id: str, *, fingerprint: str, operation: str, app: str, env: str, actor: str, now: datetime
    ) -> StoredRequest | None:
        self._call("begin_request")
        key = (keys.request_partition(request_id), keys.REQUEST_SORT_KEY)
        if key in self.items:
            item = self.items[key]
            outcome = json.loads(item["outcome"]) if "outcome" in item else None
            return StoredRequest(request_id, str(item.get("fingerprint", "")), str(item.get("status", "")), outcome)
        self.items[key] = {
            "request_id": request_id,
            "fingerprint": fingerprint,
            "status": "started",
            "operation": operation,
            "app": app,
            "env": env,
            "actor": actor,
            "started_at": timestamp(now),
        }
        self.faults.after("begin_request")
        return None

    def finish_request(self, request_id: str, outcome: Mapping[str, Any], *, now: datetime) -> None:
        self._call("finish_request")
        item = self.items.setdefault((keys.request_partition(request_id), keys.REQUEST_SORT_KEY), {})
        item.update(status="done", outcome=json.dumps(dict(outcome), sort_keys=True), finished_at=timestamp(now))
        self.faults.after("finish_request")

    def use_nonce(self, nonce: str, *, expires_at: datetime) -> bool:
        self._call("use_nonce")
        key = (keys.nonce_partition(nonce), keys.NONCE_SORT_KEY)
        if key in self.items:
            return False
        self.items[key] = {"ttl": int(expires_at.timestamp())}
        self.faults.after("use_nonce")
        return True

    # --- tracking and history ---

    def in_flight(self) -> list[DecisionRecord]:
        self._call("in_flight")
        found = sorted(
            (item[keys.IN_FLIGHT_SORT_KEY], item)
            for item in self.items.values()
            if item.get(keys.IN_FLIGHT_PARTITION_KEY) == keys.IN_FLIGHT_MARKER
        )
        return [_record(item) for _, item in found]

    def record_tracking(
        self, record: DecisionRecord, status: str, attributes: Mapping[str, Any], *, final: bool
    ) -> bool:
        self._call("record_tracking")
        item = self.items.get(self._decision_key(record))
        if item is None or item.get("status") != record.status:
            return False
        item["status"] = status
        for name, value in attributes.items():
            if value is not None and name not in (keys.PARTITION_KEY, keys.SORT_KEY, "status"):
                item[name] = value
        if final:
            item.pop(keys.IN_FLIGHT_PARTITION_KEY, None)
            item.pop(keys.IN_FLIGHT_SORT_KEY, None)
        self.faults.after("record_tracking")
        return True

    def history(self, app: str, env: str, *, limit: int = 20, next_token: dict[str, Any] | None = None) -> HistoryPage:
        self._call("history")
        partition = keys.env_partition(app, env)
        found = sorted(
            (
                (sk, item)
                for (pk, sk), item in self.items.items()
                if pk == partition and sk.startswith(keys.DECISION_PREFIX)
            ),
            reverse=True,
        )
        if next_token:
            found = [(sk, item) for sk, item in found if sk < next_token["sk"]]
        page = found[:limit]
        token = {"pk": partition, "sk": page[-1][0]} if len(page) == limit else None
        return HistoryPage([_record(item) for _, item in page], token)

    def history_by_sha(self, sha: str, *, limit: int = 20, next_token: dict[str, Any] | None = None) -> HistoryPage:
        self._call("history_by_sha")
        partition = keys.sha_partition(sha)
        found = sorted(
            (
                (item[keys.BY_SHA_SORT_KEY], item)
                for item in self.items.values()
                if item.get(keys.BY_SHA_PARTITION_KEY) == partition
            ),
            key=lambda pair: pair[0],
            reverse=True,
        )
        if next_token:
            found = [(sk, item) for sk, item in found if sk < next_token[keys.BY_SHA_SORT_KEY]]
        page = found[:limit]
        token = {keys.BY_SHA_SORT_KEY: page[-1][0]} if len(page) == limit else None
        records = [_record(item) for _, item in page]
        if len(sha) > keys.SHORT_SHA_LENGTH:
            records = [r for r in records if (r.full_sha or "").startswith(sha)]
        return HistoryPage(records, token)

    def resume_key(self, record: DecisionRecord, *, by_sha: bool = False) -> dict[str, Any]:
        if by_sha and record.sha:
            return {keys.BY_SHA_SORT_KEY: f"{record.created_at}#{record.decision_id}"}
        pk, sk = self._decision_key(record)
        return {"pk": pk, "sk": sk}

    # --- internals ---

    def _call(self, method: str) -> None:
        self.request_count += 1
        self.faults.before(method)

    @staticmethod
    def _state_key(app: str, env: str) -> Key:
        return keys.env_partition(app, env), keys.STATE_SORT_KEY

    @staticmethod
    def _release_status_key(app: str, tag: str) -> Key:
        return keys.release_partition(app, tag), keys.RELEASE_STATUS_SORT_KEY

    @staticmethod
    def _decision_key(record: DecisionRecord) -> Key:
        return keys.env_partition(record.app, record.env), keys.decision_sort_key(record.created_at, record.decision_id)

    def _make_current(self, record: DecisionRecord) -> None:
        state = self.items.setdefault(self._state_key(record.app, record.env), {})
        state.update(
            app=record.app,
            env=record.env,
            current_decision_id=record.decision_id,
            current_tag=record.tag,
            current_sha=record.full_sha,
            committed_at=record.committed_at or record.created_at,
            gitops_commit=record.gitops_commit,
        )
        state.pop("alerts", None)  # a new current deployment forgets the alerts of the one before

    def _decision_item(self, record: DecisionRecord) -> dict[str, Any]:
        # As the adapter writes it: empty values left out, and the sparse index attributes.
        item: dict[str, Any] = {k: v for k, v in dataclasses.asdict(record).items() if v not in (None, "", {}, (), [])}
        if record.sha:
            item[keys.BY_SHA_PARTITION_KEY] = keys.sha_partition(record.sha)
            item[keys.BY_SHA_SORT_KEY] = f"{record.created_at}#{record.decision_id}"
        if record.in_flight:
            item[keys.IN_FLIGHT_PARTITION_KEY] = keys.IN_FLIGHT_MARKER
            item[keys.IN_FLIGHT_SORT_KEY] = f"{record.created_at}#{record.decision_id}"
        return item


def _record(item: Mapping[str, Any]) -> DecisionRecord:
    fields = {k: v for k, v in item.items() if k in _DECISION_FIELDS}
    if "event_ids" in fields:
        fields["event_ids"] = tuple(fields["event_ids"])
    fields.setdefault("message", "")
    return DecisionRecord(**fields)


def _in_the_vocabulary(record: DecisionRecord) -> None:
    """Every outcome, reason and state a service writes is a member of the domain's enums (a new code
    is added there, where docs, metrics and alarms pick it up), so every test on the fakes checks it."""
    Outcome(record.outcome)
    Reason(record.reason)
    if record.status is not None:
        DeploymentState(record.status)
