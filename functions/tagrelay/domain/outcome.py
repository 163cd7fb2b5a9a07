"""Deployment outcome: a pure state machine over what Argo CD reports (no I/O).

A deployment is one GitOps commit that tagrelay wrote for one environment. The tracker observes the
environment's Argo CD application once per run and asks :func:`evaluate` (or, for every in-flight
deployment of an environment at once, :func:`evaluate_environment`) what, if anything, changed::

    COMMITTED ──► SYNCING ──► SUCCEEDED | DEGRADED | SYNC_FAILED | TIMED_OUT | SUPERSEDED | ENV_UNAVAILABLE
        └───────────────────► (any of these directly, when one observation already shows it)
    SUCCEEDED ──► DEGRADED     (health turned Degraded within the flap window)

The rules judge what Argo CD did to *our change*, not whether a revision string equals ours: a later
revision that contains our commit counts as ours (:class:`Lineage`), a user's operation on another
revision supersedes ours, conditions are judged by type, message and time, and "Argo CD did not
answer" or "Argo CD refused to answer" is never an outcome. :data:`RULES` lists them in the order
they apply; docs/tracking.md has the same table.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

DEFAULT_TIMEOUT = timedelta(minutes=15)
DEFAULT_FLAP_WINDOW = timedelta(minutes=5)
# Argo CD's clock and ours (the promoter's, which stamps committed_at) may disagree by a little: a
# user's operation started up to this much before our commit still counts as replacing it.
CLOCK_SKEW = timedelta(seconds=5)
# A revision Argo CD reported more than this before our commit cannot contain it; later ones are looked up.
LOOKUP_SKEW = timedelta(seconds=10)
# Argo CD writes its times to the second (metav1.Time), ours have milliseconds: a time Argo CD reports
# as 12:00:00 may be anything up to 12:00:00.999.
ARGO_TIME_PRECISION = timedelta(seconds=1)

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
# A condition whose message says Argo CD could not reach its repo-server or the git remote is about
# Argo CD's plumbing, not about our revision: transient until the deadline. The texts are gRPC's
# status codes (grpc-go: "rpc error: code = <Code> desc = ...") and the controller's and git
# client's own wording (controller/state.go, util/git/client.go).
TRANSIENT_ERROR_MARKERS = (
    "code = Unavailable",
    "code = DeadlineExceeded",
    "code = ResourceExhausted",
    "code = Canceled",
    "code = Aborted",
    "failed to connect to repo server",
    "transport is closing",
    "connection refused",
    "connection reset",
    "context deadline exceeded",
    "i/o timeout",
    "TLS handshake timeout",
    "no such host",
    "failed to list refs",
    "unable to resolve",
)

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
        """An outcome is known. SUCCEEDED may still turn DEGRADED within the flap window."""
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
    # The flap window: a success that does not last is a failure.
    DeploymentState.SUCCEEDED: frozenset({DeploymentState.DEGRADED}),
}


class Blocked(StrEnum):
    """Why tracking cannot see an application: never an outcome, but an alarm (docs/tracking.md)."""

    PERMISSION_DENIED = "permission_denied"
    ARGOCD_UNREACHABLE = "argocd_unreachable"


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
    # operation.initiatedBy: a user's name, or automated (the controller's auto-sync).
    initiated_by: str | None = None
    automated: bool = False

    @property
    def completed(self) -> bool:
        return self.phase not in IN_PROGRESS_PHASES

    @property
    def initiator(self) -> str | None:
        """What the ledger records as ``initiated_by``: the user's name, or "automated"."""
        return self.initiated_by or ("automated" if self.automated else None)


@dataclass(frozen=True)
class HistoryEntry:
    """One ``status.history[]`` entry: a sync that succeeded (Argo CD keeps the last 10 by default)."""

    id: int | None
    revisions: tuple[str, ...]
    deploy_started_at: datetime | None = None
    deployed_at: datetime | None = None
    initiated_by: str | None = None
    automated: bool = False


@dataclass(frozen=True)
class Condition:
    type: str
    message: str = ""
    last_transition_time: datetime | None = None

    @property
    def transient(self) -> bool:
        """About Argo CD's repo-server or the git transport, not about a revision."""
        return any(marker in self.message for marker in TRANSIENT_ERROR_MARKERS)


@dataclass(frozen=True)
class ApplicationObservation:
    """The fields of one Argo CD Application that decide an outcome (absent keys become defaults)."""

    name: str
    project: str | None = None
    sync_status: str = "Unknown"
    # status.sync.revision for a single-source app, status.sync.revisions[] (one per source) otherwise.
    # After a failed comparison (Argo CD v3.2+) these are the target revisions (branch names), not SHAs.
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
    # spec.syncPolicy.automated is set; None when the document has no spec.
    auto_sync: bool | None = None
    # The repository (repoURL) each reported revision belongs to, where Argo CD says (sources align
    # with revisions): tells the GitOps repository's commits from a chart repository's.
    revision_repos: Mapping[str, str] = field(default_factory=dict)

    @property
    def newest_history(self) -> HistoryEntry | None:
        return max(self.history, key=lambda e: (e.id is not None, e.id or 0)) if self.history else None


@dataclass(frozen=True)
class AppMissing:
    """Argo CD answered 404: no such application in the named project (deleted, or moved elsewhere)."""

    name: str
    status_code: int
    message: str = ""


@dataclass(frozen=True)
class AccessDenied:
    """Argo CD answered 403 "permission denied".

    With ``?project=`` that means the token may not get the application; without it Argo CD also
    answers 403 for a missing application, on purpose (server/application/application.go,
    getAppEnforceRBAC). Either way tracking is blocked, not finished.
    """

    name: str
    project: str | None
    message: str = "permission denied"


@dataclass(frozen=True)
class ArgoCDUnreachable:
    """Argo CD did not answer usefully (connection error, timeout, 5xx after retries).

    Passing this to :func:`evaluate` always yields :class:`NoTransition`, whatever the deadline: an
    outage of Argo CD, or of the network to it, is not an outcome of the deployment.
    """

    reason: str


Observation = ApplicationObservation | AppMissing | AccessDenied | ArgoCDUnreachable


class MalformedApplication(ValueError):
    """The JSON is not an Argo CD Application at all (not an object, or no metadata.name)."""


@dataclass(frozen=True)
class Lineage:
    """Which reported revisions contain which of our commits: ``(revision, our commit) -> bool``.

    The tracker fills it from the ledger (a later tagrelay commit on the same GitOps branch contains
    ours) or from GitHub's compare API, for the revisions :func:`revisions_to_check` names. A pair
    it does not know is ``None``: the rules then wait rather than guess.
    """

    known: Mapping[tuple[str, str], bool] = field(default_factory=dict)

    def contains(self, revision: str, commit: str) -> bool | None:
        if revision == commit:
            return True
        return self.known.get((revision, commit))


NO_LINEAGE = Lineage()


# --------------------------------------------------------------------------------------------------
# What we know of the deployment, and what evaluate() decides.


@dataclass(frozen=True)
class TrackedDeployment:
    """A deployment as the tracker knows it from the ledger.

    ``deployment_id`` is the caller's key, carried through untouched. ``expected_images`` are full
    ``<registry>/<repository>:<tag>`` strings, one per image of the app. ``gitops_repo`` (owner/name)
    tells which reported revisions to look up. A SUCCEEDED deployment is ``watching`` until
    ``watch_until`` (the end of its flap window).
    """

    deployment_id: str
    gitops_commit: str
    expected_images: tuple[str, ...]
    committed_at: datetime
    state: DeploymentState = DeploymentState.COMMITTED
    timeout: timedelta = DEFAULT_TIMEOUT
    sync_started_at: datetime | None = None
    gitops_repo: str | None = None
    flap_window: timedelta = DEFAULT_FLAP_WINDOW
    watch_until: datetime | None = None

    def __post_init__(self) -> None:
        if not _COMMIT_SHA.match(self.gitops_commit):
            raise ValueError(f"gitops_commit must be a full lower-case commit SHA, got {self.gitops_commit!r}")
        if self.committed_at.tzinfo is None:
            raise ValueError("committed_at must be timezone-aware")
        if self.timeout <= timedelta(0):
            raise ValueError("timeout must be positive")
        if self.flap_window < timedelta(0):
            raise ValueError("flap_window must not be negative")

    @property
    def deadline(self) -> datetime:
        return self.committed_at + self.timeout

    @property
    def watching(self) -> bool:
        return self.state is DeploymentState.SUCCEEDED and self.watch_until is not None

    @property
    def live(self) -> bool:
        """No outcome yet."""
        return not self.state.is_terminal


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
    # Who started the Argo CD operation this decision rests on: a user's name, or "automated".
    initiated_by: str | None = None
    # SUCCEEDED only: watch for a flap until then (None: no flap window, the outcome is final).
    watch_until: datetime | None = None
    # SUCCEEDED -> DEGRADED only: when health turned Degraded.
    flapped_at: datetime | None = None

    def __post_init__(self) -> None:
        if self.state not in ALLOWED_TRANSITIONS[self.previous]:
            raise ValueError(f"illegal transition {self.previous} -> {self.state}")

    @property
    def durations(self) -> DeploymentDurations:
        return self.timestamps.durations

    @property
    def final(self) -> bool:
        """The deployment leaves the tracker's in-flight set (a watched SUCCEEDED stays until its window ends)."""
        return self.state.is_terminal and self.watch_until is None


@dataclass(frozen=True)
class NoTransition:
    """Write nothing; look again on the next run. ``reason`` says what we are waiting for.

    ``blocked`` says why tracking cannot see the application at all (an alarm, never an outcome);
    ``overdue``: the deadline has passed meanwhile.
    """

    deployment_id: str
    state: DeploymentState
    reason: str
    blocked: Blocked | None = None
    overdue: bool = False


@dataclass(frozen=True)
class EndWatch:
    """A SUCCEEDED deployment's flap window is over (or a newer deployment exists): stop watching it."""

    deployment_id: str
    reason: str


Decision = Transition | NoTransition | EndWatch


# --------------------------------------------------------------------------------------------------
# The facts one observation gives about one deployment, computed once and shared by the rules.


@dataclass(frozen=True)
class _Facts:
    deployment: TrackedDeployment
    observation: Observation
    now: datetime
    lineage: Lineage
    app: ApplicationObservation | None

    @property
    def sha(self) -> str:
        return self.deployment.gitops_commit

    @property
    def short(self) -> str:
        return self.sha[:7]

    def relation(self, revisions: Iterable[str]) -> bool | None:
        """Do these revisions (one operation's, one history entry's, the comparison's) include our change?

        True when one is our commit or contains it; False when every GitOps revision among them is
        known not to; None when that is not known yet (or none is a commit).
        """
        revisions = tuple(revisions)
        if self.sha in revisions:
            return True
        known = [self.lineage.contains(r, self.sha) for r in _gitops_revisions(revisions, self.app, self.deployment)]
        if any(k is True for k in known):
            return True
        if known and all(k is False for k in known):
            return False
        return None

    def ours(self, revisions: Iterable[str]) -> bool:
        return self.relation(revisions) is True

    @property
    def op(self) -> OperationObservation | None:
        return self.app.operation if self.app is not None else None

    @property
    def op_is_ours(self) -> bool:
        return self.op is not None and self.ours(self.op.revisions)

    @property
    def compared_ours(self) -> bool:
        return self.app is not None and self.ours(self.app.sync_revisions)

    @property
    def history_ours(self) -> HistoryEntry | None:
        """The newest history entry whose revision is ours or contains ours."""
        app = self.app
        entries = [e for e in app.history if self.ours(e.revisions)] if app is not None else []
        return max(entries, key=lambda e: (e.id is not None, e.id or 0)) if entries else None

    @property
    def synced(self) -> bool:
        """Argo CD's last comparison ran against our change and found the cluster in sync with it.

        No operation may still be running. An app can show our revision Synced without an operation
        of its own (a no-op change, a manual apply); a failed operation for ours was decided before.
        """
        app, op = self.app, self.op
        if app is None or app.sync_status != SYNCED or (op is not None and not op.completed):
            return False
        if self.compared_ours:
            return True
        # Environments share the GitOps branch: a later commit for another environment moves the revision
        # Argo CD compares against, but changes nothing in this app, so no operation runs. Our sync is still
        # what runs when the last operation and the newest history entry are ours (even if the lineage of
        # the compared revision is not known).
        newest = app.newest_history
        return (
            op is not None
            and self.op_is_ours
            and op.phase == SUCCEEDED_PHASE
            and newest is not None
            and self.ours(newest.revisions)
        )

    @property
    def fresh(self) -> bool:
        """Health counts only once Argo CD reconciled after the last operation finished (Kargo's rule).

        Before that, ``health`` is what the previous reconcile saw, i.e. usually the old pods.
        """
        app, op = self.app, self.op
        if app is None:
            return False
        if op is None:
            return app.reconciled_at is not None
        if not op.completed or op.finished_at is None or app.reconciled_at is None:
            return False
        return app.reconciled_at > op.finished_at

    @property
    def missing_images(self) -> list[str]:
        images = self.app.images if self.app is not None else ()
        return [image for image in self.deployment.expected_images if not _image_present(image, images)]

    @property
    def any_image_running(self) -> bool:
        return len(self.missing_images) < len(self.deployment.expected_images)

    def conditions(self) -> list[tuple[Condition, str]]:
        """Every failure condition, with what it means for our deployment:
        ``ours`` (fails it), ``transient``, ``older`` (predates our commit) or ``other`` (about another revision)."""
        app = self.app
        if app is None:
            return []
        return [(c, self._judge(c)) for c in app.conditions if c.type in FAILURE_CONDITIONS]

    def _judge(self, condition: Condition) -> str:
        app = self.app
        assert app is not None
        changed = condition.last_transition_time
        if changed is not None and not _not_before(changed, self.deployment.committed_at):
            return "older"  # Argo CD moves lastTransitionTime only when the message changes (SetConditions)
        if condition.transient:
            return "transient"
        if self.compared_ours or self.op_is_ours:
            return "ours"
        # A failed manifest generation reports no commit (v3.2+: the target revision's name, before: nothing):
        # a reconcile after our commit that resolved no other commit was about ours.
        reconciled_since = app.reconciled_at is not None and _not_before(
            app.reconciled_at, self.deployment.committed_at
        )
        resolved = [r for r in app.sync_revisions if _COMMIT_SHA.match(r)]
        if reconciled_since and not _gitops_revisions(resolved, app, self.deployment):
            return "ours"
        return "other"

    def timestamps(self) -> DeploymentTimestamps:
        return _timestamps(self, self.now)


def _facts(deployment: TrackedDeployment, observation: Observation, now: datetime, lineage: Lineage) -> _Facts:
    app = observation if isinstance(observation, ApplicationObservation) else None
    return _Facts(deployment, observation, now, lineage, app)


# --------------------------------------------------------------------------------------------------
# The rules, in the order they apply: the first that decides wins.


@dataclass(frozen=True)
class Rule:
    name: str
    # The state it leads to, or what it does instead ("no change", "no change, blocked", "stop watching").
    outcome: str
    check: Callable[[_Facts], Decision | None]


NO_CHANGE = "no change"
NO_CHANGE_BLOCKED = "no change, blocked"
STOP_WATCHING = "stop watching"


def _flapped(f: _Facts) -> Decision | None:
    d, app = f.deployment, f.app
    if not d.watching or app is None or d.watch_until is None:
        return None
    if app.health_status != DEGRADED_HEALTH or not f.fresh or not f.any_image_running:
        return None
    newest = app.newest_history
    still_ours = newest is not None and f.ours(newest.revisions) and (f.op is None or f.op_is_ours)
    when = app.health_changed_at or f.now
    if not still_ours or when > d.watch_until:
        return None
    return _move(
        f,
        DeploymentState.DEGRADED,
        f"{f.short} was SUCCEEDED, then health turned Degraded within the {_span(d.flap_window)} flap window"
        + (f": {app.health_message}" if app.health_message else ""),
        flapped_at=when,
    )


def _watch_ended(f: _Facts) -> Decision | None:
    d = f.deployment
    if not d.watching or d.watch_until is None or f.now < d.watch_until:
        return None
    if isinstance(f.observation, ArgoCDUnreachable | AccessDenied):
        # A flap within the window may still show once Argo CD answers; but not forever.
        if f.now < d.watch_until + d.timeout:
            return None
        return EndWatch(d.deployment_id, "flap window over, and Argo CD could not be asked since")
    return EndWatch(d.deployment_id, f"no flap within {_span(d.flap_window)} after SUCCEEDED")


def _already_decided(f: _Facts) -> Decision | None:
    d = f.deployment
    if d.watching and d.watch_until is not None:
        return _wait(f, f"SUCCEEDED; watching for a flap until {d.watch_until.isoformat()}")
    return _wait(f, f"already {d.state}") if d.state.is_terminal else None


def _argocd_unreachable(f: _Facts) -> Decision | None:
    if not isinstance(f.observation, ArgoCDUnreachable):
        return None
    return _wait(
        f, f"Argo CD unreachable, retrying next run: {f.observation.reason}", blocked=Blocked.ARGOCD_UNREACHABLE
    )


def _access_denied(f: _Facts) -> Decision | None:
    denied = f.observation
    if not isinstance(denied, AccessDenied):
        return None
    if denied.project:
        why = (
            f"Argo CD denies the tracker's token access to application {denied.name} in project {denied.project}"
            f" (HTTP 403 {denied.message}): grant it `applications, get` on {denied.project}/{denied.name};"
            " tracking is blocked meanwhile"
        )
    else:
        why = (
            f"Argo CD answers 403 ({denied.message}) for application {denied.name}: either the token lost access"
            " or the application does not exist (Argo CD does not say which without a project); set the"
            " environment's argocd_project to tell them apart; tracking is blocked meanwhile"
        )
    return _wait(f, why, blocked=Blocked.PERMISSION_DENIED)


def _env_unavailable(f: _Facts) -> Decision | None:
    missing = f.observation
    if not isinstance(missing, AppMissing):
        return None
    return _move(
        f,
        DeploymentState.ENV_UNAVAILABLE,
        f"application {missing.name} unavailable (HTTP {missing.status_code}): {missing.message or 'not found'};"
        " Argo CD has no such application in its project (deleted, or moved to another project)",
    )


def _sync_failed_operation(f: _Facts) -> Decision | None:
    op = f.op
    if op is None or op.phase not in FAILED_PHASES or not f.op_is_ours:
        return None
    detail = "; ".join(op.failed_resources)
    message = op.message or f"operation {op.phase}"
    revision = _describe_revision(f, op.revisions)
    return _move(
        f,
        DeploymentState.SYNC_FAILED,
        f"sync of {revision} {op.phase}: {message}" + (f" ({detail})" if detail else ""),
        initiated_by=op.initiator,
    )


def _sync_failed_condition(f: _Facts) -> Decision | None:
    failing = next((c for c, verdict in f.conditions() if verdict == "ours"), None)
    if failing is None:
        return None
    return _move(
        f,
        DeploymentState.SYNC_FAILED,
        f"Argo CD reports {failing.type} for {f.short}: {failing.message}",
        initiated_by=f.op.initiator if f.op is not None and f.op_is_ours else None,
    )


def _degraded(f: _Facts) -> Decision | None:
    app = f.app
    if app is None or not (f.synced and f.fresh and app.health_status == DEGRADED_HEALTH):
        return None
    return _move(
        f,
        DeploymentState.DEGRADED,
        f"{f.short} synced but health is Degraded" + (f": {app.health_message}" if app.health_message else ""),
        initiated_by=f.op.initiator if f.op is not None else None,
    )


def _succeeded(f: _Facts) -> Decision | None:
    app, d = f.app, f.deployment
    if app is None or not (f.synced and f.fresh and app.health_status == HEALTHY) or f.missing_images:
        return None
    times = _with_healthy_at(f.timestamps(), app)
    healthy_at = times.healthy_at or f.now
    watch_until = healthy_at + d.flap_window if d.flap_window > timedelta(0) else None
    via = "" if f.sha in app.sync_revisions or f.sha in (f.op.revisions if f.op else ()) else _via(f)
    return Transition(
        deployment_id=d.deployment_id,
        previous=d.state,
        state=DeploymentState.SUCCEEDED,
        reason=f"{f.short} synced{via} and Healthy with all {len(d.expected_images)} image(s) running",
        timestamps=times,
        initiated_by=f.op.initiator if f.op is not None else None,
        watch_until=watch_until if watch_until is not None and watch_until > f.now else None,
    )


def _replaced_by_later_commit(f: _Facts) -> Decision | None:
    """Argo CD runs a later revision that contains ours, but not our images: a later commit changed the tag."""
    app = f.app
    if app is None or not (f.synced and f.fresh and app.health_status == HEALTHY) or not app.images:
        return None
    if f.sha in app.sync_revisions or f.any_image_running:
        return None
    return _move(
        f,
        DeploymentState.SUPERSEDED,
        f"Argo CD synced{_via(f)}, but runs {', '.join(app.images)}: a later commit changed the tag",
    )


def _superseded_by_operation(f: _Facts) -> Decision | None:
    """A user's operation on a revision without our change, started after our commit: a rollback, or
    a sync to an explicit older revision. Whatever it ends in, ours is not what runs."""
    op = f.op
    if op is None or op.automated or not op.initiated_by or op.started_at is None:
        return None
    if op.started_at < f.deployment.committed_at - CLOCK_SKEW or f.relation(op.revisions) is not False:
        return None
    revision = ", ".join(r[:7] for r in _gitops_revisions(op.revisions, f.app, f.deployment)) or "another revision"
    return _move(
        f,
        DeploymentState.SUPERSEDED,
        f"{op.initiated_by} ran an Argo CD sync of {revision} (a rollback or a sync to another revision;"
        f" operation {op.phase}, started {op.started_at.isoformat()}) instead of {f.short}",
        initiated_by=op.initiator,
    )


def _superseded_by_revision(f: _Facts) -> Decision | None:
    """Argo CD did deploy our change, then moved on to a revision without it before its health was known."""
    app = f.app
    if app is None or f.history_ours is None:
        return None
    if f.relation(app.sync_revisions) is not False or (f.op is not None and f.relation(f.op.revisions) is not False):
        return None
    current = ", ".join(r[:7] for r in app.sync_revisions) or "an unknown revision"
    return _move(
        f,
        DeploymentState.SUPERSEDED,
        f"{f.short} was synced, then Argo CD moved to {current} before its health was known",
    )


def _timed_out(f: _Facts) -> Decision | None:
    d = f.deployment
    if f.now < d.deadline:
        return None
    return _move(
        f, DeploymentState.TIMED_OUT, f"no outcome {_span(d.timeout)} after the commit; still {_waiting_for(f)}"
    )


def _syncing(f: _Facts) -> Decision | None:
    if f.deployment.state is not DeploymentState.COMMITTED:
        return None
    if not (f.compared_ours or f.op_is_ours or f.history_ours is not None):
        return None
    return _move(f, DeploymentState.SYNCING, f"Argo CD picked up {f.short}; {_waiting_for(f)}")


def _waiting(f: _Facts) -> Decision | None:
    return _wait(f, _waiting_for(f))


RULES: tuple[Rule, ...] = (
    Rule("flapped", DeploymentState.DEGRADED, _flapped),
    Rule("watch_ended", STOP_WATCHING, _watch_ended),
    Rule("already_decided", NO_CHANGE, _already_decided),
    Rule("argocd_unreachable", NO_CHANGE_BLOCKED, _argocd_unreachable),
    Rule("access_denied", NO_CHANGE_BLOCKED, _access_denied),
    Rule("env_unavailable", DeploymentState.ENV_UNAVAILABLE, _env_unavailable),
    Rule("sync_failed_operation", DeploymentState.SYNC_FAILED, _sync_failed_operation),
    Rule("sync_failed_condition", DeploymentState.SYNC_FAILED, _sync_failed_condition),
    Rule("degraded", DeploymentState.DEGRADED, _degraded),
    Rule("succeeded", DeploymentState.SUCCEEDED, _succeeded),
    Rule("replaced_by_later_commit", DeploymentState.SUPERSEDED, _replaced_by_later_commit),
    Rule("superseded_by_operation", DeploymentState.SUPERSEDED, _superseded_by_operation),
    Rule("superseded_by_revision", DeploymentState.SUPERSEDED, _superseded_by_revision),
    Rule("timed_out", DeploymentState.TIMED_OUT, _timed_out),
    Rule("syncing", DeploymentState.SYNCING, _syncing),
    Rule("waiting", NO_CHANGE, _waiting),
)


# Rules over all the tracked deployments of one environment, applied by evaluate_environment after RULES.
SUPERSEDED_OR_TIMED_OUT = f"{DeploymentState.SUPERSEDED} (or {DeploymentState.TIMED_OUT})"
ENVIRONMENT_RULES: tuple[tuple[str, str], ...] = (
    ("newer_deployment_ends_watch", STOP_WATCHING),
    ("superseded_by_newest", SUPERSEDED_OR_TIMED_OUT),
)


def evaluate(
    deployment: TrackedDeployment, observation: Observation, now: datetime, lineage: Lineage = NO_LINEAGE
) -> Decision:
    """Decide the next state of one deployment from one observation of its application: the first of
    :data:`RULES` that decides wins (docs/tracking.md has the same table)."""
    facts = _facts(deployment, observation, now, lineage)
    for rule in RULES:
        decision = rule.check(facts)
        if decision is not None:
            return decision
    raise AssertionError("the last rule always decides")  # pragma: no cover


def revisions_to_check(deployment: TrackedDeployment, observation: Observation) -> tuple[str, ...]:
    """The GitOps revisions Argo CD reports that might contain our commit: what :class:`Lineage` needs.

    Only commits of the GitOps repository (by the sources' repoURL, where Argo CD says), other than
    ours, and reported by something that happened after our commit (a revision seen before it
    existed cannot contain it): the comparison if Argo CD reconciled since, the operation if it
    started since, the newest history entry if it was deployed since.
    """
    if not isinstance(observation, ApplicationObservation):
        return ()
    app, floor = observation, deployment.committed_at - LOOKUP_SKEW
    found: list[str] = []
    if app.reconciled_at is not None and app.reconciled_at >= floor:
        found += app.sync_revisions
    op = app.operation
    if op is not None and op.started_at is not None and op.started_at >= floor:
        found += op.revisions
    newest = app.newest_history
    if newest is not None and (newest.deployed_at or newest.deploy_started_at or floor) >= floor:
        found += newest.revisions
    candidates = _gitops_revisions(found, app, deployment)
    return tuple(dict.fromkeys(r for r in candidates if r != deployment.gitops_commit))


def superseded_by_newest(in_flight: Sequence[TrackedDeployment]) -> list[tuple[TrackedDeployment, TrackedDeployment]]:
    """Given the tracked deployments of ONE environment, the (older, newest) pairs to supersede.

    "Newest" is the latest ``committed_at`` among those without an outcome and those watched after
    SUCCEEDED; the promoter serializes commits per environment, so commit time orders them. Only
    deployments without an outcome are superseded. Deployments that tie with the newest are left alone
    (evaluate() settles them by their commit), and so is the newest itself.
    """
    tracked = [d for d in in_flight if d.live or d.watching]
    live = [d for d in tracked if d.live]
    if not live or len(tracked) < 2:
        return []
    newest = max(tracked, key=lambda d: d.committed_at)
    return [(old, newest) for old in live if old.committed_at < newest.committed_at]


def supersede(deployment: TrackedDeployment, newer: TrackedDeployment, now: datetime) -> Transition:
    """Mark ``deployment`` superseded by ``newer`` (or timed out, if its deadline passed before ``newer`` existed)."""
    times = DeploymentTimestamps(
        committed_at=deployment.committed_at, sync_started_at=deployment.sync_started_at, decided_at=now
    )
    if deployment.deadline <= newer.committed_at:
        state = DeploymentState.TIMED_OUT
        reason = f"no outcome before its deadline; {newer.gitops_commit[:7]} was committed later"
        return Transition(deployment.deployment_id, deployment.state, state, reason, times)
    return Transition(
        deployment.deployment_id,
        deployment.state,
        DeploymentState.SUPERSEDED,
        f"superseded by {newer.gitops_commit[:7]} before its outcome was known",
        times,
        superseded_by=newer.deployment_id,
    )


def nothing_to_watch(deployment: TrackedDeployment) -> EndWatch | None:
    """A deployment already decided and not watched for a flap leaves the in-flight set (None: track it)."""
    if deployment.state.is_terminal and not deployment.watching:
        return EndWatch(deployment.deployment_id, f"already {deployment.state}; nothing to watch")
    return None


def flap_outcome(transition: Transition, *, current_deployment_id: str | None) -> Transition | EndWatch:
    """A SUCCEEDED deployment that turned DEGRADED (``flapped_at``) after a newer one became the
    environment's current deployment is not what the environment runs any more: its watch ends instead
    of a flap being recorded against it (``current_deployment_id``: the environment state's)."""
    if transition.flapped_at is None or current_deployment_id in (None, transition.deployment_id):
        return transition
    return EndWatch(transition.deployment_id, "a newer deployment exists")


def untrackable_because(app: str, env: str, *, configured: bool, argocd_app: str | None) -> str | None:
    """Why no Argo CD application can tell about a deployment of ``app``/``env`` (None: one can)."""
    if not configured:
        return f"{app}/{env} is no longer configured"
    if not argocd_app:
        return f"{app}/{env} names no argocd_app"
    return None


def untrackable(
    deployment_id: str, previous: DeploymentState, committed_at: datetime, problem: str, now: datetime
) -> Transition:
    """ENV_UNAVAILABLE for a deployment no Argo CD application can tell about (``problem``: why): not a
    failure of the change, and it leaves the in-flight set instead of being looked at every minute forever."""
    return Transition(
        deployment_id=deployment_id,
        previous=previous,
        state=DeploymentState.ENV_UNAVAILABLE,
        reason=f"{problem}: the outcome cannot be tracked",
        timestamps=DeploymentTimestamps(committed_at=committed_at, decided_at=now),
    )


def to_look_up(in_flight: Sequence[TrackedDeployment]) -> list[TrackedDeployment]:
    """The deployments of ONE environment whose lineage questions are worth asking: the newest live one
    (older live ones are superseded by it anyway) and those watched for a flap."""
    live = [d for d in in_flight if d.live]
    newest = [max(live, key=lambda d: d.committed_at)] if live else []
    return newest + [d for d in in_flight if d.watching]


def evaluate_environment(
    in_flight: Sequence[TrackedDeployment], observation: Observation, now: datetime, lineage: Lineage = NO_LINEAGE
) -> list[Decision]:
    """Evaluate every tracked deployment of one environment against one observation of its app.

    An older deployment whose own outcome is already visible in the observation keeps it (it did
    reach the cluster); otherwise a newer commit supersedes it. A watched SUCCEEDED deployment stops
    being watched once a newer deployment exists. Returns one decision per input, in input order.
    """
    replaced_by = {id(old): newest for old, newest in superseded_by_newest(in_flight)}
    decisions: list[Decision] = []
    for deployment in in_flight:
        newer = [d for d in in_flight if d.committed_at > deployment.committed_at]
        if deployment.watching and newer:
            decisions.append(
                EndWatch(deployment.deployment_id, f"a newer deployment ({newer[0].gitops_commit[:7]}) exists")
            )
            continue
        decision = evaluate(deployment, observation, now, lineage)
        newest = replaced_by.get(id(deployment))
        if (
            newest is not None
            and not isinstance(observation, ArgoCDUnreachable | AccessDenied)
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


def same_repository(url: str, full_name: str) -> bool:
    """Does an Argo CD ``repoURL`` (https, ssh or scp-like) name the GitHub repository ``owner/name``?"""
    path = re.sub(r"^[a-z+]+://[^/]+/|^[^@/]+@[^:/]+:", "", url.strip().lower())
    path = path.removesuffix("/").removesuffix(".git")
    return path.split("/")[-2:] == full_name.lower().split("/")


# --------------------------------------------------------------------------------------------------
# Helpers of the rules.


def _not_before(argo_time: datetime, ours: datetime) -> bool:
    """Can an Argo CD time (truncated to the second) be at or after one of ours?"""
    return argo_time + ARGO_TIME_PRECISION > ours


def _gitops_revisions(
    revisions: Iterable[str], app: ApplicationObservation | None, deployment: TrackedDeployment
) -> list[str]:
    """The commits among ``revisions`` that belong to the GitOps repository (or whose repository Argo CD
    does not say); branch names and other repositories' commits (a chart's) are left out."""
    repo = deployment.gitops_repo
    repos = app.revision_repos if app is not None else {}
    return [
        r
        for r in revisions
        if _COMMIT_SHA.match(r) and (repo is None or r not in repos or same_repository(repos[r], repo))
    ]


def _via(f: _Facts) -> str:
    """ " (via abc1234, which contains ours)" for the later revision that brought our change."""
    app = f.app
    revisions = [*(app.sync_revisions if app else ()), *(f.op.revisions if f.op else ())]
    later = [r for r in _gitops_revisions(revisions, app, f.deployment) if r != f.sha and f.lineage.contains(r, f.sha)]
    return f" via {later[0][:7]}, which contains {f.short}" if later else ""


def _describe_revision(f: _Facts, revisions: Sequence[str]) -> str:
    if f.sha in revisions:
        return f.short
    later = [r for r in _gitops_revisions(revisions, f.app, f.deployment) if f.lineage.contains(r, f.sha)]
    return f"{later[0][:7]} (which contains {f.short})" if later else f.short


def _image_present(expected: str, images: Sequence[str]) -> bool:
    # Argo CD lists an image as written in the pod spec, which may pin a digest after the tag.
    return any(image == expected or image.startswith(expected + "@") for image in images)


def _timestamps(f: _Facts, now: datetime) -> DeploymentTimestamps:
    d, app = f.deployment, f.app
    sync_started_at = d.sync_started_at
    synced_at = None
    deploy_started_at = deployed_at = None
    if app is not None:
        op = app.operation
        if op is not None and f.op_is_ours:
            sync_started_at = op.started_at or sync_started_at
            if op.phase == PHASE_SUCCEEDED:
                synced_at = op.finished_at
        entry = f.history_ours
        if entry is not None:
            deploy_started_at, deployed_at = entry.deploy_started_at, entry.deployed_at
            sync_started_at = entry.deploy_started_at or sync_started_at
            synced_at = entry.deployed_at or synced_at
    return DeploymentTimestamps(
        committed_at=d.committed_at,
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


def _waiting_for(f: _Facts) -> str:  # noqa: PLR0911 - one sentence per thing a deployment can wait for
    """A sentence for people: what the deployment is waiting for right now."""
    app, op, d = f.app, f.op, f.deployment
    assert app is not None
    sha = f.short
    unknown = [r for r in revisions_to_check(d, app) if f.lineage.contains(r, f.sha) is None]
    checking = f"checking whether {', '.join(r[:7] for r in unknown)} contains {sha}" if unknown else ""
    notes = (f"; {checking}" if checking else "") + _condition_notes(f)
    if op is not None and f.op_is_ours and not op.completed:
        retries = f", retry {op.retry_count}" if op.retry_count else ""
        said = f": {_clip(op.message)}" if op.retry_count and op.message else ""
        return f"waiting for the sync operation ({op.phase}{retries}{said}){notes}"
    if not f.compared_ours and not f.op_is_ours:
        if checking:
            return checking + _condition_notes(f)
        seen = ", ".join(r[:7] for r in app.sync_revisions) or "no revision"
        return f"waiting for Argo CD to pick up {sha} (it compared {seen}){notes}"
    if not f.synced:
        if app.auto_sync is False and not f.op_is_ours:
            return f"waiting for someone to sync {sha}: auto-sync is off (sync status {app.sync_status}){notes}"
        return f"waiting for sync (sync status {app.sync_status}){notes}"
    if not f.fresh:
        return f"waiting for Argo CD to reconcile after the sync finished (health not yet fresh){notes}"
    missing = f.missing_images
    if app.health_status == HEALTHY and missing:
        return f"Healthy, but summary.images lacks {', '.join(missing)}{notes}"
    return f"waiting for health (now {app.health_status or 'unknown'}){notes}"


def _condition_notes(f: _Facts) -> str:
    """Failure conditions that did not fail the deployment, and why: shown while waiting and in a timeout."""
    notes = []
    for condition, verdict in f.conditions():
        why = {
            "transient": "a repo-server or transport error, treated as transient until the deadline",
            "older": "since before our commit",
            "other": "about another revision",
        }.get(verdict)
        if why:
            notes.append(f"; Argo CD reports {condition.type} ({why}): {_clip(condition.message)}")
    return "".join(notes)


def _clip(text: str | None, limit: int = 300) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _move(
    f: _Facts,
    state: DeploymentState,
    reason: str,
    *,
    superseded_by: str | None = None,
    initiated_by: str | None = None,
    flapped_at: datetime | None = None,
) -> Transition:
    d = f.deployment
    return Transition(
        deployment_id=d.deployment_id,
        previous=d.state,
        state=state,
        reason=reason,
        timestamps=f.timestamps(),
        superseded_by=superseded_by,
        initiated_by=initiated_by,
        flapped_at=flapped_at,
    )


def _wait(f: _Facts, reason: str, *, blocked: Blocked | None = None) -> NoTransition:
    d = f.deployment
    return NoTransition(
        deployment_id=d.deployment_id,
        state=d.state,
        reason=reason,
        blocked=blocked,
        overdue=d.live and f.now >= d.deadline,
    )


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
    sync_policy = _mapping(spec.get("syncPolicy"))
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
        auto_sync=("automated" in sync_policy) if "spec" in document else None,
        revision_repos=_revision_repos(spec, status),
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
    initiated = _mapping(_mapping(state.get("operation")).get("initiatedBy"))
    return OperationObservation(
        phase=phase,
        revisions=revisions,
        started_at=_time(state.get("startedAt")),
        finished_at=_time(state.get("finishedAt")),
        message=_str(state.get("message")),
        retry_count=retry_count if isinstance(retry_count, int) else 0,
        failed_resources=failed,
        initiated_by=_str(initiated.get("username")),
        automated=initiated.get("automated") is True,
    )


def _history(entry: Mapping[str, Any]) -> HistoryEntry:
    raw_id = entry.get("id")
    initiated = _mapping(entry.get("initiatedBy"))
    return HistoryEntry(
        id=raw_id if isinstance(raw_id, int) else None,
        revisions=_revisions(entry),
        deploy_started_at=_time(entry.get("deployStartedAt")),
        deployed_at=_time(entry.get("deployedAt")),
        initiated_by=_str(initiated.get("username")),
        automated=initiated.get("automated") is True,
    )


def _revision_repos(spec: Mapping[str, Any], status: Mapping[str, Any]) -> dict[str, str]:
    """revision -> repoURL wherever Argo CD pairs them: ``revision`` with ``source``, ``revisions[i]`` with
    ``sources[i]`` (the comparison, the operation and its result, history); the spec's sources last."""
    state = _mapping(status.get("operationState"))
    sync = _mapping(status.get("sync"))
    holders: list[tuple[Mapping[str, Any], Mapping[str, Any]]] = [
        (sync, _mapping(sync.get("comparedTo"))),
        (_mapping(state.get("syncResult")), _mapping(state.get("syncResult"))),
        (
            _mapping(_mapping(state.get("operation")).get("sync")),
            _mapping(_mapping(state.get("operation")).get("sync")),
        ),
        *((_mapping(entry), _mapping(entry)) for entry in _list(status.get("history"))),
    ]
    repos: dict[str, str] = {}
    for revisions_holder, sources_holder in [*holders, *((h, spec) for h, _ in holders)]:
        for revision, source in _paired(revisions_holder, sources_holder):
            repos.setdefault(revision, source)
    return repos


def _paired(revisions_holder: Mapping[str, Any], sources_holder: Mapping[str, Any]) -> list[tuple[str, str]]:
    revisions = _list(revisions_holder.get("revisions"))
    sources = _list(sources_holder.get("sources"))
    pairs = list(zip(revisions, sources, strict=False)) if revisions and len(revisions) == len(sources) else []
    single = revisions_holder.get("revision")
    source = _mapping(sources_holder.get("source"))
    if single and source.get("repoURL"):
        pairs.append((single, source))
    return [
        (revision.lower(), str(_mapping(src).get("repoURL")))
        for revision, src in pairs
        if isinstance(revision, str) and _COMMIT_SHA.match(revision.lower()) and _str(_mapping(src).get("repoURL"))
    ]


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
