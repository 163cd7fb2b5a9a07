"""Follow one deployment to its outcome: what `tagrelay watch` and `deploy/rollback --wait` print.

The ledger says the deployment's state (the tracker records it, every ``tracking.schedule_minutes``);
Argo CD, asked directly with the operator's read-only token, says what it is doing meanwhile (its
operation phase, sync and health). A line is printed each time either changes; following ends at an
outcome (SUCCEEDED at once, without waiting for the flap window) or at the deadline.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from tagrelay.domain.outcome import AccessDenied, AppMissing, ArgoCDUnreachable, DeploymentState
from tagrelay.domain.records import DecisionRecord

if TYPE_CHECKING:
    from tagrelay.ports import ArgoCD, DeploymentLedger


@dataclass(frozen=True)
class Followed:
    """How following ended: the deployment's state, or None when it never reached an outcome in time."""

    record: DecisionRecord | None
    state: DeploymentState | None
    message: str

    @property
    def succeeded(self) -> bool:
        return self.state is DeploymentState.SUCCEEDED


@dataclass
class Follower:
    ledger: DeploymentLedger
    argocd: Callable[[], ArgoCD] | None  # None: Argo CD is not configured (only the ledger is read)
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    sleep: Callable[[float], None] = time.sleep

    def current(self, app: str, env: str, gitops_commit: str | None = None) -> DecisionRecord | None:
        """The environment's current deployment (the one that made ``gitops_commit``, when given)."""
        state = self.ledger.environment_state(app, env)
        if state is None or not state.current_decision_id or not state.committed_at:
            return None
        if gitops_commit is not None and state.gitops_commit != gitops_commit:
            return None
        return self.ledger.decision(app, env, state.committed_at, state.current_decision_id)

    def follow(
        self,
        record: DecisionRecord,
        *,
        argocd_app: str | None,
        argocd_project: str | None,
        timeout: timedelta,
        interval: float,
        emit: Callable[[str], None],
    ) -> Followed:
        deadline = self.clock() + timeout
        last = ""
        client = self.argocd() if self.argocd is not None and argocd_app else None
        try:
            while True:
                fresh = self.ledger.decision(record.app, record.env, record.created_at, record.decision_id) or record
                state = DeploymentState(fresh.status) if fresh.status else DeploymentState.COMMITTED
                argo = _argocd_line(client, argocd_app, argocd_project) if client is not None and argocd_app else ""
                line = f"{fresh.app}/{fresh.env} {fresh.tag}: {state.value}"
                if fresh.status_reason and state is not DeploymentState.COMMITTED:
                    line += f" ({fresh.status_reason})"
                if argo:
                    line += f"; Argo CD: {argo}"
                if line != last:
                    emit(f"{self.clock().strftime('%H:%M:%S')} {line}")
                    last = line
                if state.is_terminal:
                    return Followed(fresh, state, fresh.status_reason or state.value)
                if self.clock() >= deadline:
                    return Followed(fresh, None, f"still {state.value} after {int(timeout.total_seconds() // 60)} min")
                self.sleep(interval)
        finally:
            if client is not None:
                client.close()


def _argocd_line(client: ArgoCD, name: str | None, project: str | None) -> str:
    observation = client.observe_application(name or "", project)
    if isinstance(observation, AppMissing):
        return f"no application {observation.name}"
    if isinstance(observation, AccessDenied):
        return f"access to {observation.name} denied"
    if isinstance(observation, ArgoCDUnreachable):
        return f"unreachable ({observation.reason})"
    parts = [f"sync {observation.sync_status}", f"health {observation.health_status or 'Unknown'}"]
    operation = observation.operation
    if operation is not None:
        phase = f"operation {operation.phase}"
        if operation.retry_count:
            phase += f" (retry {operation.retry_count})"
        parts.append(phase)
    return ", ".join(parts)
