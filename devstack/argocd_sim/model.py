"""One simulated Argo CD Application: how it moves through sync and health states as time passes.

Time is a number of seconds (the server's clock, wall or manual); every state change happens at the
moment it was scheduled, however late the next request arrives, so the timestamps it reports are the
ones a real controller would have written. A rollout goes::

    poll notices a new commit ──► OutOfSync, health unchanged (still the old pods' health)
      + sync_delay        ──► operation Running, health Progressing
      + sync_duration     ──► operation Succeeded, Synced, history entry — but reconciledAt < finishedAt
                              and summary.images still old: health is not yet fresh
      + reconcile_delay   ──► reconciledAt > finishedAt, summary.images old + new, Progressing
      + rollout_duration  ──► Healthy, summary.images new
        (progress_deadline ► Degraded, for a tag marked "degraded")

A failed apply is retried as Argo CD's controller does (controller/appcontroller.go): the phase goes
back to ``Running`` with ``finishedAt`` set, ``retryCount`` goes up and the message says "Retrying
attempt #n at <time>."; after the backoff the attempt runs ("Retrying operation. Attempt #n", no
``finishedAt``, no ``syncResult``). A tag marked ``sync_failed`` fails every attempt, so the operation
ends ``Failed`` "(retried 5 times)." with a SyncError condition; one marked ``sync_fails_once`` fails
only the first. A tag marked ``comparison_error`` never gets an operation: sync Unknown, the branch
name as revision (Argo CD v3.2+), a ComparisonError. A repo-server outage is hidden for the
controller's grace period, then reported as a ComparisonError the same way.

Without auto-sync (``SimApp.auto_sync``) Argo CD only compares; ``manual_sync`` (``argocd app sync
--revision``) and ``rollback`` (``argocd app rollback``) run operations initiated by a user.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from devstack.argocd_sim.config import Mark, SimApp, SimTiming
from devstack.argocd_sim.gitops import BareRepository, GitOpsReader, RenderedTag

HISTORY_LIMIT = 10  # spec.revisionHistoryLimit default
SYNC_OPTIONS = ["CreateNamespace=true", "PrunePropagationPolicy=foreground", "PruneLast=true"]
RETRY_LIMIT = 5
RETRY = {"limit": RETRY_LIMIT, "backoff": {"duration": "5s", "factor": 2, "maxDuration": "3m"}}
# What the controller reports when it cannot reach the repo-server (grpc-go's status text).
REPO_SERVER_UNAVAILABLE = (
    'connection error: desc = "transport: Error while dialing: dial tcp 10.96.140.12:8081: connect: connection refused"'
)
MarkLookup = Callable[[str], Mark | None]


class SimConflict(ValueError):
    """An operation cannot start now (Argo CD answers FailedPrecondition)."""


class Phase(StrEnum):
    DETECTED = "detected"
    RUNNING = "running"
    RETRY_WAIT = "retry_wait"  # an attempt failed; the next one starts after the backoff
    SYNCED = "synced"  # operation done; health still from before the sync
    ROLLING_OUT = "rolling_out"


@dataclass
class Rollout:
    commit: str
    tag: str
    phase: Phase
    since: float
    images_before: tuple[str, ...]
    health_before: str


@dataclass
class Operation:
    commit: str
    tag: str
    phase: str
    started_at: float
    finished_at: float | None = None
    message: str | None = None
    failed_resource: tuple[str, str] | None = None  # (deployment name, error)
    retry_count: int = 0
    has_result: bool = True  # a retry attempt clears syncResult until it has one again
    initiated_by: str | None = None  # a user's name; None: the controller's auto-sync
    apply_strategy: bool = False  # rollbacks sync with syncStrategy.apply


@dataclass
class HistoryItem:
    id: int
    commit: str
    deploy_started_at: float
    deployed_at: float
    initiated_by: str | None = None


@dataclass
class SimCondition:
    type: str
    message: str
    since: float


@dataclass
class SimulatedApp:
    spec: SimApp
    timing: SimTiming
    mark_of: MarkLookup
    created_at: float
    repo_server_up: Callable[[], bool] = lambda: True
    present: bool = True
    auto_sync: bool = True
    sync_status: str = "Unknown"
    compared_commit: str | None = None
    health: str = "Missing"
    health_message: str | None = None
    health_changed_at: float | None = None
    reconciled_at: float | None = None
    operation: Operation | None = None
    history: list[HistoryItem] = field(default_factory=list)
    images: tuple[str, ...] = ()
    conditions: list[SimCondition] = field(default_factory=list)
    deployed_commit: str | None = None
    deployed_tag: str | None = None
    failed_commit: str | None = None
    broken_commit: str | None = None
    comparison_failed: bool = False  # the last comparison failed: sync shows the target revision, not a SHA
    chart_error: str | None = None  # the chart (source 1) fails to render whatever the values say
    repo_error_since: float | None = None
    rollout: Rollout | None = None
    last_poll: float = 0.0
    resource_version: int = 1
    # Where the GitOps source is read; None: the bare repository at spec.repo_path.
    gitops: GitOpsReader | None = None

    @classmethod
    def create(
        cls,
        spec: SimApp,
        timing: SimTiming,
        mark_of: MarkLookup,
        now: float,
        repo_server_up: Callable[[], bool] = lambda: True,
        gitops: GitOpsReader | None = None,
    ) -> SimulatedApp:
        """An application that has already synced the branch head and is Healthy (or never synced, if none)."""
        app = cls(
            spec=spec,
            timing=timing,
            mark_of=mark_of,
            created_at=now - 3600,
            repo_server_up=repo_server_up,
            auto_sync=spec.auto_sync,
            last_poll=now,
            reconciled_at=now,
            gitops=gitops,
        )
        head = app._branch_head()
        rendered = app._tag_at(head) if head else None
        if head is None or rendered is None or rendered.tag is None:
            app._comparison_error(
                now, (rendered.error or "no tag") if rendered else f"unable to resolve '{spec.branch}'"
            )
            app.broken_commit = head
            return app
        app.operation = Operation(
            head, rendered.tag, "Succeeded", now - 30, now - 25, "successfully synced (all tasks run)"
        )
        app.history.append(HistoryItem(1, head, now - 30, now - 25))
        app.sync_status, app.compared_commit = "Synced", head
        app.deployed_commit, app.deployed_tag = head, rendered.tag
        app.images = app._images_for(rendered.tag)
        bad = mark_of(rendered.tag) == "degraded"
        app._set_health("Degraded" if bad else "Healthy", now - 20, app._degraded_message() if bad else None)
        return app

    # ------------------------------------------------------------------------------------ time

    def advance(self, now: float) -> None:
        """Apply every scheduled change up to ``now``, at the time each was due."""
        head = self._branch_head()  # once per request: HEAD may move between them
        while True:
            due, apply = self._next_change()
            if due > now:
                return
            apply(due, head)
            if self.rollout is None and due == self.last_poll:
                # Idle: every further poll until `now` would see the same HEAD; do only the last one.
                polls = int((now - self.last_poll) // self.timing.poll_interval)
                if polls > 0:
                    self._poll(self.last_poll + polls * self.timing.poll_interval, head)

    def refresh(self, now: float) -> None:
        """``?refresh=normal``: reconcile with the latest git right now instead of at the next poll."""
        self.advance(now)
        self._poll(now, self._branch_head())

    def next_change_at(self) -> float:
        return self._next_change()[0]

    def has_pending_work(self) -> bool:
        """A rollout in progress, or a HEAD the controller has not acted on yet (or not reported failing)."""
        if self.rollout is not None:
            return True
        if not self.repo_server_up():  # until the controller reports it
            return (
                self.repo_error_since is None or self.last_poll - self.repo_error_since < self.timing.repo_error_grace
            )
        if self.chart_error is not None:
            return not self.comparison_failed
        head = self._branch_head()
        if self.comparison_failed and head != self.broken_commit:
            return True  # the cause went away: the next comparison clears the condition
        settled = {self.deployed_commit, self.compared_commit, self.failed_commit, self.broken_commit}
        return head is not None and head not in settled

    def _next_change(self) -> tuple[float, Callable[[float, str | None], None]]:
        poll = (self.last_poll + self.timing.poll_interval, self._poll)
        rollout = self.rollout
        if rollout is None:
            return poll
        timing = self.timing
        step: tuple[float, Callable[[float, str | None], None]]
        match rollout.phase:
            case Phase.DETECTED:
                step = (rollout.since + timing.sync_delay, self._start_operation)
            case Phase.RUNNING:
                step = (rollout.since + timing.sync_duration, self._finish_operation)
            case Phase.RETRY_WAIT:
                step = (rollout.since + self._backoff(), self._retry_operation)
            case Phase.SYNCED:
                step = (rollout.since + timing.reconcile_delay, self._fresh_reconcile)
            case Phase.ROLLING_OUT:
                wait = timing.progress_deadline if self.mark_of(rollout.tag) == "degraded" else timing.rollout_duration
                step = (rollout.since + wait, self._settle_health)
        # A rollout step due at the same moment as a poll goes first.
        return step if step[0] <= poll[0] else poll

    # ------------------------------------------------------------------------------------ transitions

    def _poll(self, t: float, head: str | None) -> None:  # noqa: PLR0911, PLR0912 - the controller's poll, step by step as Argo CD's appcontroller takes it; one branch per state it can be in
        self.last_poll = t
        if not self.repo_server_up():
            # The controller ignores repo-server errors for its grace period, writing nothing; then it
            # reports them (controller/state.go CompareAppState, repoErrorGracePeriod).
            if self.repo_error_since is None:
                self.repo_error_since = t
            if t - self.repo_error_since >= self.timing.repo_error_grace:
                self.reconciled_at = t
                self._comparison_error(t, REPO_SERVER_UNAVAILABLE, source=1, code="Unavailable", cached=False)
            return
        self.repo_error_since = None
        self.reconciled_at = t
        self._changed()
        rollout = self.rollout
        if rollout is not None and rollout.phase is Phase.SYNCED:
            self._fresh_reconcile(t, head)  # this poll is the reconcile after the sync
        if head is None:
            self._comparison_error(t, f"unable to resolve '{self.spec.branch}' to a commit SHA", source=1)
            return
        if self.chart_error is not None:
            self._comparison_error(t, self.chart_error, source=1)
            return
        if rollout is not None and rollout.phase in (Phase.DETECTED, Phase.RUNNING, Phase.RETRY_WAIT):
            return  # an operation is in progress; a newer HEAD waits for it to end
        target = rollout.commit if rollout is not None else self.deployed_commit
        if head in (target, self.failed_commit):  # auto-sync never retries a revision that failed
            if self.comparison_failed:
                self._compared(head, "OutOfSync" if head == self.failed_commit or rollout is not None else "Synced")
            self._reassess_health(t)
            return
        rendered = self._tag_at(head)
        error: str | None
        if rendered.tag is not None and self.mark_of(rendered.tag) == "comparison_error":
            error = f"tag {rendered.tag} is marked as a manifest error"
        else:
            error = rendered.error
        if rendered.tag is None or error is not None:
            self._comparison_error(t, error or "no tag")
            self.broken_commit = head
            return
        running_tag = rollout.tag if rollout is not None else self.deployed_tag
        if rendered.tag == running_tag and self.failed_commit is None:
            # The branch moved with a commit that does not change this app (another environment's values):
            # Argo CD compares the new revision, finds nothing to apply, and runs no operation.
            self._compared(head, "Synced" if rollout is None else self.sync_status)
            if rollout is None:
                self._reassess_health(t)
            return
        self._compared(head, "OutOfSync")
        if not self.auto_sync:
            self._reassess_health(t)  # without auto-sync Argo CD only reports the difference
            return
        self.rollout = Rollout(head, rendered.tag, Phase.DETECTED, t, self.images, self.health)

    def _compared(self, head: str, sync_status: str) -> None:
        """A comparison that worked: its conditions go, and sync reports the resolved revision."""
        self.conditions = [c for c in self.conditions if c.type != "ComparisonError"]
        if head != self.failed_commit:
            self.conditions = [c for c in self.conditions if c.type != "SyncError"]
        self.comparison_failed, self.broken_commit = False, None
        self.sync_status, self.compared_commit = sync_status, head
        self._changed()

    def _reassess_health(self, t: float) -> None:
        """Health is assessed on every reconcile: the running tag's mark decides it (no rollout under way)."""
        if self.rollout is not None or not self.deployed_tag:
            return
        if self.mark_of(self.deployed_tag) == "degraded":
            self._set_health("Degraded", t, self._degraded_message())
        elif self.health == "Degraded":
            self._set_health("Healthy", t)

    def _start_operation(self, t: float, head: str | None) -> None:
        rollout = self._current()
        rollout.phase, rollout.since = Phase.RUNNING, t
        self.operation = Operation(rollout.commit, rollout.tag, "Running", started_at=t)
        self._set_health("Progressing", t)

    def _finish_operation(self, t: float, head: str | None) -> None:
        rollout, operation = self._current(), self.operation
        assert operation is not None
        operation.finished_at, operation.has_result = t, True
        mark = self.mark_of(rollout.tag)
        if mark == "sync_failed" or (mark == "sync_fails_once" and operation.retry_count == 0):
            self._apply_failed(t, rollout, operation)
            return
        operation.phase, operation.message = "Succeeded", "successfully synced (all tasks run)"
        operation.failed_resource = None
        next_id = self.history[-1].id + 1 if self.history else 1
        entry = HistoryItem(next_id, rollout.commit, operation.started_at, t, operation.initiated_by)
        self.history = [*self.history, entry][-HISTORY_LIMIT:]
        self.deployed_commit, self.deployed_tag, self.failed_commit = rollout.commit, rollout.tag, None
        if operation.initiated_by is None:
            self._compared(rollout.commit, "Synced")
        elif head is not None:
            # After a user's operation the controller compares with the latest revision at once: after a
            # rollback, the branch head again (OutOfSync, unless it renders the same tag).
            rendered = self._tag_at(head)
            self._compared(head, "Synced" if rendered.tag == rollout.tag else "OutOfSync")
        rollout.phase, rollout.since = Phase.SYNCED, t
        self._changed()

    def _apply_failed(self, t: float, rollout: Rollout, operation: Operation) -> None:
        """An attempt failed to apply: retry after the backoff while the retry limit allows, else fail."""
        name = self._workloads()[0]
        error = (
            f'Deployment.apps "{name}" is invalid: spec.template.spec.containers[0].image: '
            f'Invalid value: "{self.spec.images[0]}:{rollout.tag}": tag is marked as a manifest error'
        )
        failed = f"one or more objects failed to apply, reason: {error}"
        operation.failed_resource = (name, error)
        if operation.initiated_by is None and operation.retry_count < RETRY_LIMIT:
            operation.retry_count += 1
            retry_at = t + self._backoff()
            operation.phase = "Running"
            operation.message = f"{failed}. Retrying attempt #{operation.retry_count} at {_kitchen(retry_at)}."
            rollout.phase, rollout.since = Phase.RETRY_WAIT, t
            self._changed()
            return
        operation.phase = "Failed"
        operation.message = f"{failed} (retried {operation.retry_count} times)." if operation.retry_count else failed
        revisions = " ".join(self._revision_list(rollout.commit))
        self._set_condition("SyncError", f"Failed last sync attempt to [{revisions}]: {operation.message}", t)
        self.sync_status, self.failed_commit, self.rollout = "OutOfSync", rollout.commit, None
        self._set_health(rollout.health_before, t)  # the old pods are still serving

    def _retry_operation(self, t: float, head: str | None) -> None:
        rollout, operation = self._current(), self.operation
        assert operation is not None
        operation.phase, operation.message = "Running", f"Retrying operation. Attempt #{operation.retry_count}"
        operation.finished_at, operation.has_result, operation.failed_resource = None, False, None
        rollout.phase, rollout.since = Phase.RUNNING, t
        self._changed()

    def _backoff(self) -> float:
        """Wait before retry n (retryCount n): duration * 2^(n-1), capped (RetryStrategy.NextRetryAt)."""
        count = self.operation.retry_count if self.operation is not None else 1
        return float(min(self.timing.retry_backoff * 2 ** max(count - 1, 0), self.timing.retry_backoff_max))

    # ------------------------------------------------------------------------------------ users' operations

    def manual_sync(self, now: float, revision: str | None, username: str, *, rollback: bool = False) -> None:
        """``argocd app sync [--revision R]`` (or, with ``rollback``, a rollback to R): a user's operation."""
        self.advance(now)
        if self.rollout is not None:
            raise SimConflict("another operation is already in progress")
        if rollback and self.auto_sync:
            raise SimConflict("rollback cannot be initiated when auto-sync is enabled")
        commit = revision or self._branch_head()
        if commit is None:
            raise ValueError(f"unable to resolve '{self.spec.branch}' to a commit SHA")
        rendered = self._tag_at(commit)
        if rendered.tag is None:
            raise ValueError(f"cannot sync {commit[:7]}: {rendered.error}")
        self.rollout = Rollout(commit, rendered.tag, Phase.RUNNING, now, self.images, self.health)
        self.operation = Operation(
            commit, rendered.tag, "Running", started_at=now, initiated_by=username, apply_strategy=rollback
        )
        self._set_health("Progressing", now)

    def rollback(self, now: float, history_id: int, username: str) -> None:
        """``argocd app rollback APP ID``: sync the revision of that history entry (server Rollback)."""
        entry = next((item for item in self.history if item.id == history_id), None)
        if entry is None:
            raise ValueError(f"application {self.spec.name} does not have deployment with id {history_id}")
        self.manual_sync(now, entry.commit, username, rollback=True)

    def _fresh_reconcile(self, t: float, head: str | None) -> None:
        rollout = self._current()
        self.reconciled_at = t
        self.images = tuple(sorted({*rollout.images_before, *self._images_for(rollout.tag)}))
        rollout.phase, rollout.since = Phase.ROLLING_OUT, t
        self._changed()

    def _settle_health(self, t: float, head: str | None) -> None:
        rollout = self._current()
        self.reconciled_at, self.rollout = t, None
        if self.mark_of(rollout.tag) == "degraded":
            self._set_health("Degraded", t, self._degraded_message())  # old and new pods both listed
        else:
            self.images = self._images_for(rollout.tag)
            self._set_health("Healthy", t)

    def _comparison_error(
        self, t: float, error: str, *, source: int | None = None, code: str = "Unknown", cached: bool = True
    ) -> None:
        # Manifest generation failed (controller/state.go): sync Unknown, and since Argo CD v3.2 the
        # revision is the target revision (the branch name), not a commit.
        sources = 2 if self.spec.multi_source else 1
        detail = f"Manifest generation error (cached): {error}" if cached else error
        message = (
            f"Failed to load target state: failed to generate manifest for source {source or sources} of {sources}: "
            f"rpc error: code = {code} desc = {detail}"
        )
        self._set_condition("ComparisonError", message, t)
        self.sync_status, self.compared_commit, self.comparison_failed = "Unknown", None, True
        self._changed()

    def _set_condition(self, kind: str, message: str, t: float) -> None:
        """ApplicationStatus.SetConditions: the time moves only when the message changes."""
        existing = next((c for c in self.conditions if c.type == kind), None)
        if existing is None or existing.message != message:
            self.conditions = [c for c in self.conditions if c.type != kind]
            self.conditions.append(SimCondition(kind, message, t))

    # ------------------------------------------------------------------------------------ helpers

    def _gitops_source(self) -> GitOpsReader:
        return self.gitops or BareRepository(self.spec.repo_path)

    def _branch_head(self) -> str | None:
        return self._gitops_source().branch_head(self.spec.branch)

    def _tag_at(self, commit: str) -> RenderedTag:
        return self._gitops_source().tag_at(commit, self.spec.values_file, self.spec.key)

    def _current(self) -> Rollout:
        assert self.rollout is not None
        return self.rollout

    def _set_health(self, status: str, t: float, message: str | None = None) -> None:
        if status != self.health:
            self.health_changed_at = t
        self.health, self.health_message = status, message
        self._changed()

    def _changed(self) -> None:
        self.resource_version += 1

    def _images_for(self, tag: str) -> tuple[str, ...]:
        return tuple(f"{image}:{tag}" for image in self.spec.images)

    def _workloads(self) -> list[str]:
        return [image.rsplit("/", 1)[-1] for image in self.spec.images]

    def _degraded_message(self) -> str:
        return f'Deployment "{self._workloads()[0]}" exceeded its progress deadline'

    # ------------------------------------------------------------------------------------ Argo CD JSON

    def render(self, *, resource_health: bool) -> dict[str, Any]:
        """The Application as Argo CD v3 serves it: Go ``omitempty``, so absent keys rather than nulls.

        ``resource_health``: Get fills ``status.resources[].health`` from the cache (appTree); List does not.
        """
        spec = self.spec
        status: dict[str, Any] = {}
        resources = self._resources(resource_health)
        if resources:
            status["resources"] = resources
        sync: dict[str, Any] = {"status": self.sync_status, "comparedTo": {**self._sources(), **self._destination()}}
        if self.compared_commit:
            sync.update(self._revision(self.compared_commit))
        elif self.comparison_failed:
            sync.update(self._revision(self.spec.branch, target=True))
        status["sync"] = sync
        health: dict[str, Any] = {"status": self.health}
        if self.health_changed_at is not None:
            health["lastTransitionTime"] = _time(self.health_changed_at)
        if self.health_message:
            health["message"] = self.health_message
        status["health"] = health
        if self.history:
            status["history"] = [self._history_entry(item) for item in self.history]
        if self.conditions:
            status["conditions"] = [
                {"type": c.type, "message": c.message, "lastTransitionTime": _time(c.since)} for c in self.conditions
            ]
        if self.reconciled_at is not None:
            status["reconciledAt"] = _time(self.reconciled_at)
        if self.operation is not None:
            status["operationState"] = self._operation_state(self.operation)
        if spec.multi_source:
            status["sourceTypes"] = ["Helm"]
        else:
            status["sourceType"] = "Helm"
        status["summary"] = {"images": list(self.images)} if self.images else {}
        status["resourceHealthSource"] = "appTree"
        status["controllerNamespace"] = "argocd"
        return {
            "metadata": {
                "name": spec.name,
                "namespace": "argocd",
                "uid": str(uuid.uuid5(uuid.NAMESPACE_URL, f"argocd-sim/{spec.name}")),
                "resourceVersion": str(self.resource_version),
                "generation": self.resource_version,
                "creationTimestamp": _time(self.created_at),
                **({"labels": dict(spec.labels)} if spec.labels else {}),
                "finalizers": ["resources-finalizer.argocd.argoproj.io"],
            },
            "spec": {
                **self._sources(),
                **self._destination(),
                "project": spec.project,
                "syncPolicy": {
                    **({"automated": {"prune": True, "selfHeal": True}} if self.auto_sync else {}),
                    "syncOptions": SYNC_OPTIONS,
                    "retry": RETRY,
                },
                "revisionHistoryLimit": HISTORY_LIMIT,
            },
            "status": status,
        }

    def _revision(self, commit: str, *, target: bool = False) -> dict[str, Any]:
        """``revision`` (single source) or ``revisions`` (one per source); ``target``: unresolved names."""
        if self.spec.multi_source:
            return {"revisions": [self.spec.branch if target else self.spec.chart_revision, commit]}
        return {"revision": commit}

    def _revision_list(self, commit: str) -> list[str]:
        return [self.spec.chart_revision, commit] if self.spec.multi_source else [commit]

    def _sources(self) -> dict[str, Any]:
        spec = self.spec
        if not spec.multi_source:
            source = {
                "repoURL": spec.repo_url,
                "path": spec.chart_path,
                "targetRevision": spec.branch,
                "helm": {"valueFiles": [spec.values_file]},
            }
            return {"source": source}
        chart = {
            "repoURL": spec.chart_repo_url,
            "path": spec.chart_path,
            "targetRevision": spec.branch,
            "helm": {"valueFiles": [f"$values/{spec.values_file}"]},
        }
        values = {"repoURL": spec.repo_url, "targetRevision": spec.branch, "ref": "values"}
        return {"sources": [chart, values]}

    def _destination(self) -> dict[str, Any]:
        return {"destination": {"server": "https://kubernetes.default.svc", "namespace": self.spec.namespace}}

    def _history_entry(self, item: HistoryItem) -> dict[str, Any]:
        entry: dict[str, Any] = {
            **self._revision(item.commit),
            "deployedAt": _time(item.deployed_at),
            "id": item.id,
            **self._source_of_record(),
            "deployStartedAt": _time(item.deploy_started_at),
            "initiatedBy": _initiator(item.initiated_by),
        }
        return entry

    def _source_of_record(self) -> dict[str, Any]:
        # Go omitempty never omits a struct: multi-source records carry an empty `source` next to `sources`.
        sources = self._sources()
        return {"source": {"repoURL": ""}, **sources} if self.spec.multi_source else sources

    def _operation_state(self, op: Operation) -> dict[str, Any]:
        sync_request: dict[str, Any] = {**self._revision(op.commit), "prune": True, "syncOptions": SYNC_OPTIONS}
        if op.apply_strategy:
            sync_request["syncStrategy"] = {"apply": {}}  # server/application/application.go Rollback
        operation: dict[str, Any] = {"sync": sync_request, "initiatedBy": _initiator(op.initiated_by)}
        if op.initiated_by is None:
            operation["retry"] = RETRY  # auto-sync copies spec.syncPolicy.retry; a rollback has none
        state: dict[str, Any] = {"operation": operation, "phase": op.phase}
        if op.message:
            state["message"] = op.message
        if op.has_result:
            # The controller writes syncResult (with its required `revision`) when the sync starts;
            # multi-source apps leave `revision` empty and fill `revisions`. A retry attempt clears it.
            result: dict[str, Any] = {}
            resources = self._sync_result_resources(op)
            if resources:
                result["resources"] = resources
            result["revision"] = "" if self.spec.multi_source else op.commit
            if self.spec.multi_source:
                result["revisions"] = [self.spec.chart_revision, op.commit]
            result.update(self._source_of_record())
            state["syncResult"] = result
        state["startedAt"] = _time(op.started_at)
        if op.finished_at is not None:
            state["finishedAt"] = _time(op.finished_at)
        if op.retry_count:
            state["retryCount"] = op.retry_count
        return state

    def _sync_result_resources(self, op: Operation) -> list[dict[str, Any]]:
        if op.phase == "Running" and op.failed_resource is None:
            return []
        namespace = self.spec.namespace
        resources: list[dict[str, Any]] = []
        for name, image in zip(self._workloads(), self.spec.images, strict=True):
            failed = op.failed_resource is not None and op.failed_resource[0] == name
            resources.append(
                {
                    "group": "apps",
                    "version": "v1",
                    "kind": "Deployment",
                    "namespace": namespace,
                    "name": name,
                    "status": "SyncFailed" if failed else "Synced",
                    "message": op.failed_resource[1]
                    if failed and op.failed_resource
                    else f"deployment.apps/{name} configured",
                    "hookPhase": "Failed" if failed else "Running",
                    "syncPhase": "Sync",
                    "images": [f"{image}:{op.tag}"],
                }
            )
        return resources

    def _resources(self, resource_health: bool) -> list[dict[str, Any]]:
        resource_status = "Synced" if self.sync_status == "Synced" else "OutOfSync"
        resources: list[dict[str, Any]] = []
        for name in self._workloads():
            service: dict[str, Any] = {
                "version": "v1",
                "kind": "Service",
                "namespace": self.spec.namespace,
                "name": name,
            }
            deployment: dict[str, Any] = {
                "group": "apps",
                "version": "v1",
                "kind": "Deployment",
                "namespace": self.spec.namespace,
                "name": name,
            }
            service["status"] = "Synced"
            deployment["status"] = resource_status
            if resource_health:
                service["health"] = {"status": "Healthy"}
                deployment["health"] = {"status": self.health}
                if self.health_message:
                    deployment["health"]["message"] = self.health_message
            resources += [service, deployment]
        return resources


def _initiator(username: str | None) -> dict[str, Any]:
    return {"username": username} if username else {"automated": True}


def _kitchen(seconds: float) -> str:
    """Go's time.Kitchen ("3:04PM"), as the retry message prints the next attempt's time."""
    return datetime.fromtimestamp(int(seconds), UTC).strftime("%I:%M%p").lstrip("0")


def _time(seconds: float) -> str:
    """RFC 3339 at second precision, as Go's metav1.Time marshals it."""
    return datetime.fromtimestamp(int(seconds), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
