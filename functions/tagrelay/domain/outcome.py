"""Deployment outcome: a pure state machine over what Argo CD reports (no I/O).

A deployment is one GitOps commit that tagrelay wrote for one environment. The tracker observes the
environment's Argo CD application once per run and asks :func:`evaluate` (or, for every in-flight
deployment of an environment at once, :func:`evaluate_environment`) what, if anything, changed::

    COMMITTED ──► SYNCING ──► SUCCEEDED | DEGRADED | SYNC_FAILED | TIMED_OUT | SUPERSEDED | ENV_UNAVAILABLE
        └───────────────────► (any terminal state directly, when one observation already shows it)

The rules follow what Argo CD's notification triggers, Kargo and argo-watcher learned (peers.md §c,
docs/tracking.md): correlate by the commit we wrote, never by "the app is healthy"; trust health only
after Argo CD reconciled *after* the sync operation finished; require our image tags in
``status.summary.images``; and never turn "Argo CD did not answer" into an outcome.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

DEFAULT_TIMEOUT = timedelta(minutes=15)

# Argo CD enums (pkg/apis/application/v1alpha1/types.go, gitops-engine pkg/health, pkg/sync/common).
SYNCED = "Synced"
HEALTHY = "Healthy"
DEGRADED_HEALTH = "Degraded"
PHASE_RUNNING = "Running"
PHASE_TERMINATING = "Terminating"
PHASE_SUCCEEDED = "Succeeded"
FAILED_PHASES = frozenset({"Failed", "Error"})
SUCCEEDED_PHASE = "Succeeded"
IN_PROGRESS_PHASES = frozenset({PHASE_RUNNING, PHASE_TERMINATING})
# Conditions that mean Argo CD cannot render or apply the desired state at all (Kargo treats them as
# unhealthy); warnings such as OrphanedResourceWarning say nothing about our commit.
FAILURE_CONDITIONS = frozenset({"ComparisonError", "InvalidSpecError"})

_COMMIT_SHA = re.compile(r"^(?:[0-9a-f]{40}|[0-9a-f]{64})$")


class DeploymentState(StrEnum):
    COMMITTED = "COMMITTED"
    SYNCING = "SYNCING"
    SUCCEEDED = "SUCCEEDED"
    DEGRADED = "DEGRADED"
    SYNC_FAILED = "SYNC_FAILED"
    TIMED_OUT = "TIMED_OUT"
    SUPERSEDED = "SUPERSEDED"
    ENV_UNAVAILABLE = "ENV_UNAVAILABLE"

    @property
    def is_terminal(self) -> bool:
        return self not in _IN_FLIGHT

    @property
    def is_failure(self) -> bool:
        """Outcomes that should raise an alarm (SUPERSEDED and ENV_UNAVAILABLE are not failures of the change)."""
        return self in _FAILURES


_IN_FLIGHT = frozenset({DeploymentState.COMMITTED, DeploymentState.SYNCING})
_FAILURES = frozenset({DeploymentState.DEGRADED, DeploymentState.SYNC_FAILED, DeploymentState.TIMED_OUT})
TERMINAL_STATES = frozenset(DeploymentState) - _IN_FLIGHT
ALLOWED_TRANSITIONS: Mapping[DeploymentState, frozenset[DeploymentState]] = {
    DeploymentState.COMMITTED: frozenset({DeploymentState.SYNCING}) | TERMINAL_STATES,
    DeploymentState.SYNCING: TERMINAL_STATES,
    **{state: frozenset() for state in TERMINAL_STATES},
}


# --------------------------------------------------------------------------------------------------
# What Argo CD told us: a small typed view of an Application (parse_application builds it).


@dataclass(frozen=True)
class OperationObservation:
    """``status.operationState``: the last sync operation, whichever revision it was for."""

    phase: str
    # syncResult.revision(s) once the operation has a result, else operation.sync.revision(s).
    revisions: tuple[str, ...]
    started_at: datetime | None = None
    finished_at: datetime | None = None
    message: str | None = None
    retry_count: int = 0
    # "<kind>/<name>: <message>" of every syncResult resource whose status is SyncFailed.
    failed_resources: tuple[str, ...] = ()

    @property
    def completed(self) -> bool:
        return self.phase not in IN_PROGRESS_PHASES


@dataclass(frozen=True)
class HistoryEntry:
    """One ``status.history[]`` entry: a sync that succeeded (Argo CD keeps the last 10 by default)."""

    id: int | None
    revisions: tuple[str, ...]
    deploy_started_at: datetime | None = None
    deployed_at: datetime | None = None


@dataclass(frozen=True)
class Condition:
    type: str
    message: str = ""
    last_transition_time: datetime | None = None


@dataclass(frozen=True)
class ApplicationObservation:
    """The fields of one Argo CD Application that decide an outcome (absent keys become defaults)."""

    name: str
    project: str | None = None
    sync_status: str = "Unknown"
    # status.sync.revision for a single-source app, status.sync.revisions[] (one per source) otherwise.
    sync_revisions: tuple[str, ...] = ()
    health_status: str | None = None
    health_message: str | None = None
    health_changed_at: datetime | None = None
    reconciled_at: datetime | None = None
    operation: OperationObservation | None = None
    history: tuple[HistoryEntry, ...] = ()
    images: tuple[str, ...] = ()
    conditions: tuple[Condition, ...] = ()
    labels: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class AppMissing:
    """Argo CD answered 403 (unknown app without ``project``, or no permission) or 404 (with ``project``)."""

    name: str
    status_code: int
    message: str = ""


@dataclass(frozen=True)
class ArgoCDUnreachable:
    """Argo CD did not answer usefully (connection error, timeout, 5xx after retries).

    Passing this to :func:`evaluate` always yields :class:`NoTransition`, whatever the deadline: an
    outage of Argo CD, or of the network to it, is not an outcome of the deployment.
    """

    reason: str


Observation = ApplicationObservation | AppMissing | ArgoCDUnreachable


class MalformedApplication(ValueError):
    """The JSON is not an Argo CD Application at all (not an object, or no metadata.name)."""


# --------------------------------------------------------------------------------------------------
# What we know of the deployment, and what evaluate() decides.


@dataclass(frozen=True)
class TrackedDeployment:
    """An in-flight deployment as the tracker knows it from the ledger.

    ``deployment_id`` is the caller's key, carried through untouched. ``expected_images`` are full
    ``<registry>/<repository>:<tag>`` strings, one per image of the app.
    """

    deployment_id: str
    gitops_commit: str
    expected_images: tuple[str, ...]
    committed_at: datetime
    state: DeploymentState = DeploymentState.COMMITTED
    timeout: timedelta = DEFAULT_TIMEOUT
    sync_started_at: datetime | None = None

    def __post_init__(self) -> None:
        if not _COMMIT_SHA.match(self.gitops_commit):
            raise ValueError(f"gitops_commit must be a full lower-case commit SHA, got {self.gitops_commit!r}")
        if self.committed_at.tzinfo is None:
            raise ValueError("committed_at must be timezone-aware")
        if self.timeout <= timedelta(0):
            raise ValueError("timeout must be positive")

    @property
    def deadline(self) -> datetime:
        return self.committed_at + self.timeout


@dataclass(frozen=True)
class DeploymentTimestamps:
    """When things happened. Argo CD's own times are preferred over the time we noticed them."""

    committed_at: datetime
    sync_started_at: datetime | None = None
    synced_at: datetime | None = None
    healthy_at: datetime | None = None
    # Verbatim from status.history for our revision, when the entry exists.
    deploy_started_at: datetime | None = None
    deployed_at: datetime | None = None
    # When the tracker decided (its own clock).
    decided_at: datetime | None = None

    @property
    def durations(self) -> DeploymentDurations:
        return DeploymentDurations(
            to_sync_start=_between(self.committed_at, self.sync_started_at),
            to_synced=_between(self.committed_at, self.synced_at),
            sync=_between(self.sync_started_at, self.synced_at),
            to_healthy=_between(self.committed_at, self.healthy_at),
        )


@dataclass(frozen=True)
class DeploymentDurations:
    to_sync_start: timedelta | None
    to_synced: timedelta | None
    sync: timedelta | None
    to_healthy: timedelta | None


@dataclass(frozen=True)
class Transition:
    """Record this: the deployment moved from ``previous`` to ``state``."""

    deployment_id: str
    previous: DeploymentState
    state: DeploymentState
    reason: str
    timestamps: DeploymentTimestamps
    # For SUPERSEDED: the deployment that replaced this one (None when Argo CD moved to a commit we do not track).
    superseded_by: str | None = None

    def __post_init__(self) -> None:
        if self.state not in ALLOWED_TRANSITIONS[self.previous]:
            raise ValueError(f"illegal transition {self.previous} -> {self.state}")

    @property
    def durations(self) -> DeploymentDurations:
        return self.timestamps.durations


@dataclass(frozen=True)
class NoTransition:
    """Write nothing; look again on the next run. ``reason`` says what we are waiting for."""

    deployment_id: str
    state: DeploymentState
    reason: str


Decision = Transition | NoTransition


# --------------------------------------------------------------------------------------------------
# The rules.


def evaluate(deployment: TrackedDeployment, observation: Observation, now: datetime) -> Decision:
    """Decide the next state of one deployment from one observation of its application.

    Rules, in order (docs/tracking.md has the table):

    1. terminal deployments never change; an unreachable Argo CD never changes anything;
    2. a missing application (403/404) → ENV_UNAVAILABLE;
    3. an operation for our commit that Failed/Errored → SYNC_FAILED;
    4. a ComparisonError/InvalidSpecError condition that can concern our commit → SYNC_FAILED;
    5. our commit synced, health reconciled after the operation finished, Degraded → DEGRADED;
    6. ... Healthy, and every expected image in summary.images → SUCCEEDED;
    7. a later sync replaced our revision before its outcome was known → SUPERSEDED;
    8. the deadline passed (including an operation stuck Running) → TIMED_OUT;
    9. Argo CD is working on our commit → SYNCING; otherwise wait.
    """
    sha = deployment.gitops_commit
    if deployment.state.is_terminal:
        return _wait(deployment, f"already {deployment.state}")
    if isinstance(observation, ArgoCDUnreachable):
        return _wait(deployment, f"Argo CD unreachable, retrying next run: {observation.reason}")
    if isinstance(observation, AppMissing):
        hint = (
            "Argo CD answers 403 both for a missing application and for a token without access;"
            " set the environment's argocd_project to tell them apart"
            if observation.status_code == 403
            else "not found in its project"
        )
        return _move(
            deployment,
            DeploymentState.ENV_UNAVAILABLE,
            f"application {observation.name} unavailable (HTTP {observation.status_code}): {hint}",
            _timestamps(deployment, None, now),
        )

    app = observation
    op = app.operation
    op_is_ours = op is not None and sha in op.revisions
    compared_ours = sha in app.sync_revisions
    ours_in_history = _history_entry(app, sha)
    times = _timestamps(deployment, app, now)

    if op is not None and op_is_ours and op.phase in FAILED_PHASES:
        detail = "; ".join(op.failed_resources)
        message = op.message or f"operation {op.phase}"
        return _move(
            deployment,
            DeploymentState.SYNC_FAILED,
            f"sync of {sha[:7]} {op.phase}: {message}" + (f" ({detail})" if detail else ""),
            times,
        )

    failure = _failure_condition(app, deployment, compared_ours or op_is_ours)
    if failure is not None:
        return _move(
            deployment, DeploymentState.SYNC_FAILED, f"Argo CD reports {failure.type}: {failure.message}", times
        )

    synced = _ours_synced(app, sha)
    fresh = _health_is_fresh(app)
    if synced and fresh and app.health_status == DEGRADED_HEALTH:
        return _move(
            deployment,
            DeploymentState.DEGRADED,
            f"{sha[:7]} synced but health is Degraded" + (f": {app.health_message}" if app.health_message else ""),
            times,
        )
    missing_images = [image for image in deployment.expected_images if not _image_present(image, app.images)]
    if synced and fresh and app.health_status == HEALTHY and not missing_images:
        return _move(
            deployment,
            DeploymentState.SUCCEEDED,
            f"{sha[:7]} synced and Healthy with all {len(deployment.expected_images)} image(s) running",
            _with_healthy_at(times, app),
        )

    if not compared_ours and not op_is_ours and ours_in_history is not None:
        # Argo CD did deploy our commit, then moved on to a revision we do not know (a manual commit,
        # a rollback) before we saw its health: the change is no longer what runs.
        current = ", ".join(app.sync_revisions) or "an unknown revision"
        return _move(
            deployment,
            DeploymentState.SUPERSEDED,
            f"{sha[:7]} was synced, then Argo CD moved to {current} before its health was known",
            times,
        )

    waiting_for = _waiting_for(app, deployment, synced=synced, fresh=fresh, missing_images=missing_images)
    if now >= deployment.deadline:
        return _move(
            deployment,
            DeploymentState.TIMED_OUT,
            f"no outcome {_span(deployment.timeout)} after the commit; still {waiting_for}",
            times,
        )
    if deployment.state is DeploymentState.COMMITTED and (compared_ours or op_is_ours or ours_in_history):
        return _move(deployment, DeploymentState.SYNCING, f"Argo CD picked up {sha[:7]}; {waiting_for}", times)
    return _wait(deployment, waiting_for)


def superseded_by_newest(in_flight: Sequence[TrackedDeployment]) -> list[tuple[TrackedDeployment, TrackedDeployment]]:
    """Given the in-flight deployments of ONE environment, the (older, newest) pairs to supersede.

    "Newest" is the latest ``committed_at``; the promoter serializes commits per environment, so
    commit time orders them. Deployments that tie with the newest are left alone (evaluate() settles
    them by their commit), and so is the newest itself.
    """
    live = [d for d in in_flight if not d.state.is_terminal]
    if len(live) < 2:
        return []
    newest = max(live, key=lambda d: d.committed_at)
    return [(old, newest) for old in live if old.committed_at < newest.committed_at]


def supersede(deployment: TrackedDeployment, newer: TrackedDeployment, now: datetime) -> Transition:
    """Mark ``deployment`` superseded by ``newer`` (or timed out, if its deadline passed before ``newer`` existed)."""
    times = _timestamps(deployment, None, now)
    if deployment.deadline <= newer.committed_at:
        return _move(
            deployment,
            DeploymentState.TIMED_OUT,
            f"no outcome before its deadline; {newer.gitops_commit[:7]} was committed later",
            times,
        )
    return _move(
        deployment,
        DeploymentState.SUPERSEDED,
        f"superseded by {newer.gitops_commit[:7]} before its outcome was known",
        times,
        superseded_by=newer.deployment_id,
    )


def evaluate_environment(
    in_flight: Sequence[TrackedDeployment], observation: Observation, now: datetime
) -> list[Decision]:
    """Evaluate every in-flight deployment of one environment against one observation of its app.

    An older deployment whose own outcome is already visible in the observation keeps it (it did
    reach the cluster); otherwise a newer commit supersedes it. Returns one decision per input, in
    input order.
    """
    replaced_by = {id(old): newest for old, newest in superseded_by_newest(in_flight)}
    decisions: list[Decision] = []
    for deployment in in_flight:
        decision = evaluate(deployment, observation, now)
        newest = replaced_by.get(id(deployment))
        if (
            newest is not None
            and not isinstance(observation, ArgoCDUnreachable)
            and not (isinstance(decision, Transition) and decision.state in _SETTLED_BY_EVIDENCE)
        ):
            decision = supersede(deployment, newest, now)
        decisions.append(decision)
    return decisions


# Outcomes an observation proves about a specific commit; a newer commit does not erase them.
_SETTLED_BY_EVIDENCE = frozenset(
    {DeploymentState.SUCCEEDED, DeploymentState.DEGRADED, DeploymentState.SYNC_FAILED, DeploymentState.ENV_UNAVAILABLE}
)


def timeout_for(env_timeout_minutes: int | None, default_minutes: int = 15) -> timedelta:
    """The tracking timeout of an environment: its own ``timeout_minutes``, else the tracking default."""
    return timedelta(minutes=env_timeout_minutes or default_minutes)


def expected_images(registry_host: str, repositories: Iterable[str], tag: str) -> tuple[str, ...]:
    """``<registry>/<repository>:<tag>`` for every image of an app, as Argo CD lists them in summary.images."""
    return tuple(f"{registry_host}/{repository}:{tag}" for repository in repositories)


def _ours_synced(app: ApplicationObservation, sha: str) -> bool:
    """Argo CD's last comparison ran against our commit and found the cluster in sync with it.

    No operation may still be running. An app can show our revision Synced without an operation of
    its own (a no-op change, a manual apply); a failed operation for our commit was decided before.
    """
    op = app.operation
    if app.sync_status != SYNCED or (op is not None and not op.completed):
        return False
    if sha in app.sync_revisions:
        return True
    # Environments share the GitOps branch: a later commit for another environment moves the revision
    # Argo CD compares against, but changes nothing in this app, so no operation runs. Our sync is still
    # what runs when the last operation and the newest history entry are ours.
    newest = max(app.history, key=lambda e: (e.id is not None, e.id or 0)) if app.history else None
    return (
        op is not None
        and sha in op.revisions
        and op.phase == SUCCEEDED_PHASE
        and newest is not None
        and sha in newest.revisions
    )


def _health_is_fresh(app: ApplicationObservation) -> bool:
    """Health counts only once Argo CD reconciled after the last operation finished (Kargo's rule).

    Before that, ``health`` is what the previous reconcile saw, i.e. usually the old pods.
    """
    op = app.operation
    if op is None:
        return app.reconciled_at is not None
    if not op.completed or op.finished_at is None or app.reconciled_at is None:
        return False
    return app.reconciled_at > op.finished_at


def _failure_condition(
    app: ApplicationObservation, deployment: TrackedDeployment, argo_knows_our_commit: bool
) -> Condition | None:
    """A ComparisonError/InvalidSpecError that may be about our commit.

    A failed manifest generation leaves ``sync.revision`` empty, so "it knows our commit" cannot be
    required: a reconcile after our commit that reports no other revision counts too. A condition
    while Argo CD still compares an older revision is about that revision, not ours.
    """
    if not argo_knows_our_commit:
        reconciled_since_commit = app.reconciled_at is not None and app.reconciled_at >= deployment.committed_at
        if not (reconciled_since_commit and not app.sync_revisions):
            return None
    return next((c for c in app.conditions if c.type in FAILURE_CONDITIONS), None)


def _history_entry(app: ApplicationObservation, sha: str) -> HistoryEntry | None:
    entries = [entry for entry in app.history if sha in entry.revisions]
    return max(entries, key=lambda e: (e.id is not None, e.id or 0)) if entries else None


def _image_present(expected: str, images: Sequence[str]) -> bool:
    # Argo CD lists an image as written in the pod spec, which may pin a digest after the tag.
    return any(image == expected or image.startswith(expected + "@") for image in images)


def _timestamps(
    deployment: TrackedDeployment, app: ApplicationObservation | None, now: datetime
) -> DeploymentTimestamps:
    sync_started_at = deployment.sync_started_at
    synced_at = None
    deploy_started_at = deployed_at = None
    if app is not None:
        sha = deployment.gitops_commit
        op = app.operation
        if op is not None and sha in op.revisions:
            sync_started_at = op.started_at or sync_started_at
            if op.phase == PHASE_SUCCEEDED:
                synced_at = op.finished_at
        entry = _history_entry(app, sha)
        if entry is not None:
            deploy_started_at, deployed_at = entry.deploy_started_at, entry.deployed_at
            sync_started_at = entry.deploy_started_at or sync_started_at
            synced_at = entry.deployed_at or synced_at
    return DeploymentTimestamps(
        committed_at=deployment.committed_at,
        sync_started_at=sync_started_at,
        synced_at=synced_at,
        deploy_started_at=deploy_started_at,
        deployed_at=deployed_at,
        decided_at=now,
    )


def _with_healthy_at(times: DeploymentTimestamps, app: ApplicationObservation) -> DeploymentTimestamps:
    """Healthy since the health last changed, but never before our sync finished.

    An app that stayed Healthy through the sync (a ConfigMap-only change) has a lastTransitionTime
    from before our commit; it became healthy *with our commit* when the sync finished.
    """
    candidates = [t for t in (app.health_changed_at, times.synced_at) if t is not None]
    healthy_at = max(candidates) if candidates else app.reconciled_at
    return replace(times, healthy_at=healthy_at)


def _waiting_for(
    app: ApplicationObservation,
    deployment: TrackedDeployment,
    *,
    synced: bool,
    fresh: bool,
    missing_images: Sequence[str],
) -> str:
    """A sentence for people: what the deployment is waiting for right now."""
    sha = deployment.gitops_commit
    op = app.operation
    if op is not None and sha in op.revisions and not op.completed:
        retries = f", retry {op.retry_count}" if op.retry_count else ""
        return f"waiting for the sync operation ({op.phase}{retries})"
    if sha not in app.sync_revisions and not (op is not None and sha in op.revisions):
        seen = ", ".join(r[:7] for r in app.sync_revisions) or "no revision"
        return f"waiting for Argo CD to pick up {sha[:7]} (it compared {seen})"
    if not synced:
        return f"waiting for sync (sync status {app.sync_status})"
    if not fresh:
        return "waiting for Argo CD to reconcile after the sync finished (health not yet fresh)"
    if app.health_status == HEALTHY and missing_images:
        return f"Healthy, but summary.images lacks {', '.join(missing_images)}"
    return f"waiting for health (now {app.health_status or 'unknown'})"


def _move(
    deployment: TrackedDeployment,
    state: DeploymentState,
    reason: str,
    timestamps: DeploymentTimestamps,
    *,
    superseded_by: str | None = None,
) -> Transition:
    return Transition(
        deployment_id=deployment.deployment_id,
        previous=deployment.state,
        state=state,
        reason=reason,
        timestamps=timestamps,
        superseded_by=superseded_by,
    )


def _wait(deployment: TrackedDeployment, reason: str) -> NoTransition:
    return NoTransition(deployment_id=deployment.deployment_id, state=deployment.state, reason=reason)


def _span(duration: timedelta) -> str:
    seconds = int(duration.total_seconds())
    return f"{seconds // 60} min" if seconds % 60 == 0 else f"{seconds} s"


def _between(start: datetime | None, end: datetime | None) -> timedelta | None:
    # Argo CD's clock and ours may disagree by a little; a negative duration would only confuse.
    if start is None or end is None:
        return None
    return max(end - start, timedelta(0))


# --------------------------------------------------------------------------------------------------
# Parsing Argo CD Application JSON (v3 shape; Go omitempty: absent keys, never nulls, but be lenient).


def parse_application(document: Mapping[str, Any]) -> ApplicationObservation:
    """Read the outcome-relevant fields of an Application; missing keys become defaults."""
    if not isinstance(document, Mapping):
        raise MalformedApplication("an Argo CD Application must be a JSON object")
    metadata = _mapping(document.get("metadata"))
    name = metadata.get("name")
    if not isinstance(name, str) or not name:
        raise MalformedApplication("an Argo CD Application must have metadata.name")
    spec = _mapping(document.get("spec"))
    status = _mapping(document.get("status"))
    sync = _mapping(status.get("sync"))
    health = _mapping(status.get("health"))
    summary = _mapping(status.get("summary"))
    return ApplicationObservation(
        name=name,
        project=_str(spec.get("project")),
        sync_status=_str(sync.get("status")) or "Unknown",
        sync_revisions=_revisions(sync),
        health_status=_str(health.get("status")),
        health_message=_str(health.get("message")),
        health_changed_at=_time(health.get("lastTransitionTime")),
        reconciled_at=_time(status.get("reconciledAt")),
        operation=_operation(status.get("operationState")),
        history=tuple(_history(entry) for entry in _list(status.get("history")) if isinstance(entry, Mapping)),
        images=tuple(image for image in _list(summary.get("images")) if isinstance(image, str)),
        conditions=tuple(
            Condition(
                type=_str(c.get("type")) or "",
                message=_str(c.get("message")) or "",
                last_transition_time=_time(c.get("lastTransitionTime")),
            )
            for c in _list(status.get("conditions"))
            if isinstance(c, Mapping)
        ),
        labels={k: v for k, v in _mapping(metadata.get("labels")).items() if isinstance(v, str)},
    )


def parse_application_list(document: Mapping[str, Any]) -> list[ApplicationObservation]:
    """Read ``GET /api/v1/applications``: ``{"metadata": {...}, "items": [...]}`` (items may be absent)."""
    if not isinstance(document, Mapping):
        raise MalformedApplication("an Argo CD application list must be a JSON object")
    return [parse_application(item) for item in _list(document.get("items")) if isinstance(item, Mapping)]


def _operation(value: Any) -> OperationObservation | None:
    state = _mapping(value)
    phase = _str(state.get("phase"))
    if phase is None:
        return None
    result = _mapping(state.get("syncResult"))
    # While an operation runs it may have no syncResult yet; the requested revision is in operation.sync.
    revisions = _revisions(result) or _revisions(_mapping(_mapping(state.get("operation")).get("sync")))
    failed = tuple(
        f"{_str(r.get('kind')) or '?'}/{_str(r.get('name')) or '?'}: {_str(r.get('message')) or 'SyncFailed'}"
        for r in _list(result.get("resources"))
        if isinstance(r, Mapping) and r.get("status") == "SyncFailed"
    )
    retry_count = state.get("retryCount")
    return OperationObservation(
        phase=phase,
        revisions=revisions,
        started_at=_time(state.get("startedAt")),
        finished_at=_time(state.get("finishedAt")),
        message=_str(state.get("message")),
        retry_count=retry_count if isinstance(retry_count, int) else 0,
        failed_resources=failed,
    )


def _history(entry: Mapping[str, Any]) -> HistoryEntry:
    raw_id = entry.get("id")
    return HistoryEntry(
        id=raw_id if isinstance(raw_id, int) else None,
        revisions=_revisions(entry),
        deploy_started_at=_time(entry.get("deployStartedAt")),
        deployed_at=_time(entry.get("deployedAt")),
    )


def _revisions(holder: Mapping[str, Any]) -> tuple[str, ...]:
    """``revisions[]`` (multi-source) plus ``revision`` (single source); either may be absent."""
    found = [r.lower() for r in _list(holder.get("revisions")) if isinstance(r, str) and r]
    single = _str(holder.get("revision"))
    if single:
        found.append(single.lower())
    return tuple(dict.fromkeys(found))


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None
