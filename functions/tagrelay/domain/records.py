"""What the ledger remembers: one record per decision, and one state per environment.

Pure data. The DynamoDB layout lives in adapters/ledger_schema.py and adapters/store.py.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from tagrelay.domain.decision import Outcome
from tagrelay.domain.outcome import DeploymentState

# The environment of decisions made before one is known (e.g. a release still incomplete): their own
# ledger partition, and `tagrelay history --env unresolved`.
UNRESOLVED_ENV = "unresolved"
# Outcomes that are transient: kept for ledger.decision_ttl_days, then expired by DynamoDB TTL.
TRANSIENT_OUTCOMES = frozenset(outcome for outcome in Outcome if outcome.is_transient)


def timestamp(moment: datetime) -> str:
    """ISO 8601 in UTC with milliseconds; sorts lexicographically in time order."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_timestamp(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def seconds_between(start: str | None, end: str | None) -> float | None:
    """Seconds from one record timestamp to another (never negative: clocks of two writers may differ
    by a little); None when either is unknown."""
    if not start or not end:
        return None
    return max((parse_timestamp(end) - parse_timestamp(start)).total_seconds(), 0.0)


def new_decision_id() -> str:
    return secrets.token_hex(6)


@dataclass(frozen=True)
class DecisionRecord:
    """One decision of the promoter, as written to the ledger (never contains a secret)."""

    decision_id: str
    app: str
    env: str
    outcome: str  # committed | rejected | refused (an operator's request) | noop | superseded | skipped | waiting | pinned | unpinned
    reason: str
    message: str
    created_at: str
    # push | manual | rollback (pins: manual, or rollback when a rollback pinned) | external (a change
    # made outside tagrelay, found in the GitOps repository: reason external_change)
    trigger: str
    tag: str | None = None
    sha: str | None = None
    full_sha: str | None = None
    source_branch: str | None = None
    actor: str | None = None
    digests: dict[str, str] = field(default_factory=dict)
    signers: dict[str, str] = field(default_factory=dict)
    signature_policy: str | None = None
    # "immutable", or "mutable (allow_mutable_tags)" when the app accepted overwritable release tags.
    tag_policy: str | None = None
    # tag_moved: image -> the digest tagrelay promoted under the tag (``digests`` holds where it points now).
    promoted_digests: dict[str, str] = field(default_factory=dict)
    previous_tag: str | None = None
    deployed_sha: str | None = None
    gitops_commit: str | None = None
    gitops_url: str | None = None
    pull_request_url: str | None = None  # gitops.write: pull_request: the pull request that carried the change
    event_ids: tuple[str, ...] = ()
    request_id: str | None = None  # operator changes: the id the `tagrelay` command gave the request
    # Deployment tracking (committed records only): COMMITTED, then the tracker's states.
    status: str | None = None
    status_reason: str | None = None
    committed_at: str | None = None
    sync_started_at: str | None = None
    synced_at: str | None = None
    healthy_at: str | None = None
    finished_at: str | None = None
    source_committed_at: str | None = None
    pushed_at: str | None = None
    # Written by the tracker on each transition (services/track.py, tracking_attributes).
    deploy_started_at: str | None = None  # Argo CD history entry of our revision
    deployed_at: str | None = None
    tracked_at: str | None = None
    superseded_by: str | None = None  # the newer deployment's decision id
    time_to_sync_seconds: Decimal | None = None
    sync_seconds: Decimal | None = None
    time_to_healthy_seconds: Decimal | None = None
    lead_time_seconds: Decimal | None = None  # image push -> healthy (SUCCEEDED only)
    initiated_by: str | None = None  # who started the Argo CD operation behind the outcome: a user, or automated
    watch_until: str | None = None  # SUCCEEDED: watched for a flap until then (tracking.flap_window_minutes)
    watch_ended_at: str | None = None
    flapped_at: str | None = None  # SUCCEEDED, then DEGRADED: when health turned Degraded

    @property
    def transient(self) -> bool:
        return self.outcome in TRANSIENT_OUTCOMES

    @property
    def in_flight(self) -> bool:
        if self.outcome != Outcome.COMMITTED or self.status is None:
            return self.outcome == Outcome.COMMITTED
        try:
            return not DeploymentState(self.status).is_terminal
        except ValueError:
            # A status this version does not know (an item written by hand, or by another version) is not
            # known to be over: the tracker reports the record as unreadable instead of failing its run.
            return True


@dataclass(frozen=True)
class PromotedRelease:
    """The digests a release tag had when tagrelay first committed it, and the environments it went to."""

    app: str
    tag: str
    digests: dict[str, str]
    envs: tuple[str, ...] = ()
    promoted_at: str | None = None


@dataclass(frozen=True)
class EnvironmentState:
    """The current deployment of one environment, and whether it is pinned."""

    app: str
    env: str
    current_decision_id: str | None = None
    current_tag: str | None = None
    current_sha: str | None = None
    committed_at: str | None = None
    gitops_commit: str | None = None
    pinned: bool = False
    pin_reason: str | None = None
    pinned_by: str | None = None
    pinned_at: str | None = None


@dataclass(frozen=True)
class HistoryPage:
    """One page of decisions, newest first; ``next_token`` (opaque) resumes after it, None at the end."""

    records: list[DecisionRecord]
    next_token: dict[str, Any] | None


@dataclass(frozen=True)
class UndecidedRelease:
    """A release seen waiting and not decided since (the reconcile sweep re-evaluates it)."""

    app: str
    tag: str
    first_seen_at: str
    waiting_reason: str | None = None
    waiting_message: str | None = None


@dataclass(frozen=True)
class StoredRequest:
    """An operator request seen before (services/operate.py): what it was, and its outcome once done."""

    request_id: str
    fingerprint: str
    status: str  # started | done
    outcome: dict[str, Any] | None = None
