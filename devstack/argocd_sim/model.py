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

A tag marked ``sync_failed`` ends the operation Failed (SyncFailed resource, SyncError condition);
one marked ``comparison_error`` never gets an operation: sync Unknown, no revision, ComparisonError.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from devstack.argocd_sim.config import Mark, SimApp, SimTiming
from devstack.argocd_sim.gitops import branch_head, tag_at

HISTORY_LIMIT = 10  # spec.revisionHistoryLimit default
SYNC_OPTIONS = ["CreateNamespace=true", "PrunePropagationPolicy=foreground", "PruneLast=true"]
RETRY = {"limit": 5, "backoff": {"duration": "5s", "factor": 2, "maxDuration": "3m"}}
MarkLookup = Callable[[str], Mark | None]


class Phase(StrEnum):
    DETECTED = "detected"
    RUNNING = "running"
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


@dataclass
class HistoryItem:
    id: int
    commit: str
    deploy_started_at: float
    deployed_at: float


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
    present: bool = True
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
    rollout: Rollout | None = None
    last_poll: float = 0.0
    resource_version: int = 1

    @classmethod
    def create(cls, spec: SimApp, timing: SimTiming, mark_of: MarkLookup, now: float) -> SimulatedApp:
        """An application that has already synced the branch head and is Healthy (or never synced, if none)."""
        app = cls(spec=spec, timing=timing, mark_of=mark_of, created_at=now - 3600, last_poll=now, reconciled_at=now)
        head = branch_head(spec.repo_path, spec.branch)
        rendered = tag_at(spec.repo_path, head, spec.values_file, spec.key) if head else None
        if head is None or rendered is None or rendered.tag is None:
            app._comparison_error(
                now, head, (rendered.error or "no tag") if rendered else f"unable to resolve '{spec.branch}'"
            )
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
        head = branch_head(self.spec.repo_path, self.spec.branch)  # once per request: HEAD may move between them
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
        self._poll(now, branch_head(self.spec.repo_path, self.spec.branch))

    def next_change_at(self) -> float:
        return self._next_change()[0]

    def has_pending_work(self) -> bool:
        """A rollout in progress, or a HEAD the controller has not acted on yet."""
        if self.rollout is not None:
            return True
        head = branch_head(self.spec.repo_path, self.spec.branch)
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
            case Phase.SYNCED:
                step = (rollout.since + timing.reconcile_delay, self._fresh_reconcile)
            case Phase.ROLLING_OUT:
                wait = timing.progress_deadline if self.mark_of(rollout.tag) == "degraded" else timing.rollout_duration
                step = (rollout.since + wait, self._settle_health)
        # A rollout step due at the same moment as a poll goes first.
        return step if step[0] <= poll[0] else poll

    # ------------------------------------------------------------------------------------ transitions

    def _poll(self, t: float, head: str | None) -> None:
        self.last_poll = self.reconciled_at = t
        self._changed()
        rollout = self.rollout
        if rollout is not None and rollout.phase is Phase.SYNCED:
            self._fresh_reconcile(t, head)  # this poll is the reconcile after the sync
        if rollout is not None and rollout.phase in (Phase.DETECTED, Phase.RUNNING):
            return  # auto-sync is busy; a newer HEAD waits for the operation to end
        target = rollout.commit if rollout is not None else self.deployed_commit
        if head is None:
            self._comparison_error(t, None, f"unable to resolve '{self.spec.branch}' to a commit SHA")
            return
        if head in (target, self.failed_commit):  # auto-sync never retries a revision that failed
            self._reassess_health(t)
            return
        rendered = tag_at(self.spec.repo_path, head, self.spec.values_file, self.spec.key)
        error: str | None
        if rendered.tag is not None and self.mark_of(rendered.tag) == "comparison_error":
            error = f"tag {rendered.tag} is marked as a manifest error"
        else:
            error = rendered.error
        if rendered.tag is None or error is not None:
            self._comparison_error(t, head, error or "no tag")
            return
        self.conditions = [c for c in self.conditions if c.type not in ("ComparisonError", "SyncError")]
        self.broken_commit = None
        running_tag = rollout.tag if rollout is not None else self.deployed_tag
        if rendered.tag == running_tag and self.failed_commit is None:
            # The branch moved with a commit that does not change this app (another environment's values):
            # Argo CD compares the new revision, finds nothing to apply, and runs no operation.
            self.compared_commit = head
            if rollout is None:
                self.sync_status = "Synced"
                self._reassess_health(t)
            self._changed()
            return
        self.sync_status, self.compared_commit = "OutOfSync", head
        self.rollout = Rollout(head, rendered.tag, Phase.DETECTED, t, self.images, self.health)

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
        operation.finished_at = t
        if self.mark_of(rollout.tag) == "sync_failed":
            name = self._workloads()[0]
            error = (
                f'Deployment.apps "{name}" is invalid: spec.template.spec.containers[0].image: '
                f'Invalid value: "{self.spec.images[0]}:{rollout.tag}": tag is marked as a manifest error'
            )
            operation.phase = "Failed"
            operation.message = f"one or more objects failed to apply, reason: {error}"
            operation.failed_resource = (name, error)
            self.conditions.append(
                SimCondition("SyncError", f"Failed sync attempt to {rollout.commit}: {operation.message}", t)
            )
            self.sync_status, self.failed_commit, self.rollout = "OutOfSync", rollout.commit, None
            self._set_health(rollout.health_before, t)  # the old pods are still serving
            return
        operation.phase, operation.message = "Succeeded", "successfully synced (all tasks run)"
        next_id = self.history[-1].id + 1 if self.history else 1
        self.history = [*self.history, HistoryItem(next_id, rollout.commit, operation.started_at, t)][-HISTORY_LIMIT:]
        self.sync_status, self.compared_commit = "Synced", rollout.commit
        self.deployed_commit, self.deployed_tag, self.failed_commit = rollout.commit, rollout.tag, None
        rollout.phase, rollout.since = Phase.SYNCED, t
        self._changed()

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

    def _comparison_error(self, t: float, head: str | None, error: str) -> None:
        # Manifest generation failed: Argo CD reports no revision at all, and sync status Unknown.
        sources = "2" if self.spec.multi_source else "1"
        message = (
            f"Failed to load target state: failed to generate manifest for source {sources} of {sources}: "
            f"rpc error: code = Unknown desc = Manifest generation error (cached): {error}"
        )
        existing = next((c for c in self.conditions if c.type == "ComparisonError"), None)
        if existing is None or existing.message != message:
            self.conditions = [c for c in self.conditions if c.type != "ComparisonError"]
            self.conditions.append(SimCondition("ComparisonError", message, t))
        self.sync_status, self.compared_commit, self.broken_commit = "Unknown", None, head
        self._changed()

    # ------------------------------------------------------------------------------------ helpers

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
                    "automated": {"prune": True, "selfHeal": True},
                    "syncOptions": SYNC_OPTIONS,
                    "retry": RETRY,
                },
                "revisionHistoryLimit": HISTORY_LIMIT,
            },
            "status": status,
        }

    def _revision(self, commit: str) -> dict[str, Any]:
        if self.spec.multi_source:
            return {"revisions": [self.spec.chart_revision, commit]}
        return {"revision": commit}

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
            "initiatedBy": {"automated": True},
        }
        return entry

    def _source_of_record(self) -> dict[str, Any]:
        # Go omitempty never omits a struct: multi-source records carry an empty `source` next to `sources`.
        sources = self._sources()
        return {"source": {"repoURL": ""}, **sources} if self.spec.multi_source else sources

    def _operation_state(self, op: Operation) -> dict[str, Any]:
        sync_request: dict[str, Any] = {**self._revision(op.commit), "prune": True, "syncOptions": SYNC_OPTIONS}
        # The controller writes syncResult (with its required `revision`) when the sync starts;
        # multi-source apps leave `revision` empty and fill `revisions`.
        result: dict[str, Any] = {}
        resources = self._sync_result_resources(op)
        if resources:
            result["resources"] = resources
        result["revision"] = "" if self.spec.multi_source else op.commit
        if self.spec.multi_source:
            result["revisions"] = [self.spec.chart_revision, op.commit]
        result.update(self._source_of_record())
        state: dict[str, Any] = {
            "operation": {"sync": sync_request, "initiatedBy": {"automated": True}, "retry": RETRY},
            "phase": op.phase,
        }
        if op.message:
            state["message"] = op.message
        state["syncResult"] = result
        state["startedAt"] = _time(op.started_at)
        if op.finished_at is not None:
            state["finishedAt"] = _time(op.finished_at)
        return state

    def _sync_result_resources(self, op: Operation) -> list[dict[str, Any]]:
        if op.phase == "Running":
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


def _time(seconds: float) -> str:
    """RFC 3339 at second precision, as Go's metav1.Time marshals it."""
    return datetime.fromtimestamp(int(seconds), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
