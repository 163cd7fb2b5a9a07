"""DORA figures of one environment, computed from its ledger records (pure; `tagrelay dora` reads them).

Input: the environment's committed deployments in a window (``DecisionRecord`` with outcome
``committed``), in any order. Definitions (docs/operations.md explains the choices):

* A **change** is a deployment triggered by a push or by `tagrelay deploy`. A rollback is a deployment
  too, but it is the remedy for a change, not a change: it is counted apart.
* **Deployment frequency**: changes that reached SUCCEEDED, per day of the window.
* **Lead time for changes**: for each change that reached SUCCEEDED, from the source commit's time
  (``source_committed_at``) to healthy (``healthy_at``); median and 90th percentile (nearest rank).
* **Change failure rate**: failed changes / changes whose result is known. A change *failed* when it
  ended DEGRADED, SYNC_FAILED or TIMED_OUT, or when the environment's next deployment was a rollback
  (whatever the change's own status). A result is known when the change ended SUCCEEDED or failed;
  SUPERSEDED, ENV_UNAVAILABLE and changes still in flight are left out.
* **Time to restore**: per incident, from the GitOps commit of the first failed change (after the
  environment was last fine) to ``healthy_at`` of the next deployment — a fix or a rollback — that
  reached SUCCEEDED and was not itself rolled back. Median; incidents still open are counted apart.
  An incident that began before the window is not seen.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from tagrelay.domain.decision import Outcome
from tagrelay.domain.outcome import DeploymentState
from tagrelay.domain.records import DecisionRecord, parse_timestamp, seconds_between, timestamp

SECONDS_PER_DAY = 86_400
FAILED_STATES = frozenset(state for state in DeploymentState if state.is_failure)
SUCCEEDED = DeploymentState.SUCCEEDED.value


@dataclass(frozen=True)
class DoraFigures:
    app: str
    env: str
    since: str
    until: str
    days: float
    deployments: int  # changes committed in the window (push and manual)
    rollbacks: int
    successful_deployments: int
    deployments_per_day: float
    lead_time_samples: int
    lead_time_median_seconds: float | None
    lead_time_p90_seconds: float | None
    changes_with_result: int
    failed_changes: int
    change_failure_rate: float | None
    incidents: int
    restored: int
    open_incidents: int
    time_to_restore_median_seconds: float | None


def compute(
    app: str, env: str, deployments: Iterable[DecisionRecord], *, since: datetime, until: datetime
) -> DoraFigures:
    ordered = sorted(
        (r for r in deployments if r.outcome == Outcome.COMMITTED and since <= parse_timestamp(r.created_at) <= until),
        key=lambda r: (r.created_at, r.decision_id),
    )
    rolled_back = [i + 1 < len(ordered) and ordered[i + 1].trigger == "rollback" for i in range(len(ordered))]
    changes = [(r, reverted) for r, reverted in zip(ordered, rolled_back, strict=True) if r.trigger != "rollback"]
    failed = [r for r, reverted in changes if reverted or _failed_status(r)]
    with_result = [r for r, reverted in changes if reverted or _failed_status(r) or r.status == SUCCEEDED]
    successful = [r for r, _ in changes if r.status == SUCCEEDED]
    lead_times = sorted(
        _seconds(r.source_committed_at, r.healthy_at) for r in successful if r.source_committed_at and r.healthy_at
    )
    restores, incidents, still_open = _restores(ordered, rolled_back)
    days = (until - since).total_seconds() / SECONDS_PER_DAY
    return DoraFigures(
        app=app,
        env=env,
        since=timestamp(since),
        until=timestamp(until),
        days=days,
        deployments=len(changes),
        rollbacks=len(ordered) - len(changes),
        successful_deployments=len(successful),
        deployments_per_day=len(successful) / days if days > 0 else 0.0,
        lead_time_samples=len(lead_times),
        lead_time_median_seconds=statistics.median(lead_times) if lead_times else None,
        lead_time_p90_seconds=percentile(lead_times, 90),
        changes_with_result=len(with_result),
        failed_changes=len(failed),
        change_failure_rate=len(failed) / len(with_result) if with_result else None,
        incidents=incidents,
        restored=len(restores),
        open_incidents=1 if still_open else 0,
        time_to_restore_median_seconds=statistics.median(restores) if restores else None,
    )


def percentile(sorted_values: Sequence[float], p: float) -> float | None:
    """Nearest-rank percentile: the smallest value with at least p% of the values at or below it."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(p / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


def _restores(ordered: Sequence[DecisionRecord], rolled_back: Sequence[bool]) -> tuple[list[float], int, bool]:
    """Time to restore per incident, the number of incidents, and whether the last one is still open."""
    restores: list[float] = []
    incidents = 0
    open_since: str | None = None
    for record, reverted in zip(ordered, rolled_back, strict=True):
        if record.trigger != "rollback" and (reverted or _failed_status(record)):
            if open_since is None:
                open_since = record.committed_at or record.created_at
                incidents += 1
        elif record.status == SUCCEEDED and not reverted and record.healthy_at and open_since is not None:
            restores.append(_seconds(open_since, record.healthy_at))
            open_since = None
    return restores, incidents, open_since is not None


def _failed_status(record: DecisionRecord) -> bool:
    return record.status in FAILED_STATES


def _seconds(start: str, end: str) -> float:
    seconds = seconds_between(start, end)
    assert seconds is not None  # both are given
    return seconds
