"""track(now): one tracker run — read the in-flight deployments, ask Argo CD once per application,
and record each transition the outcome state machine decides (domain/outcome.py, docs/tracking.md).

Budget per run (measured by bench/tracker.py):

- DynamoDB: one Query of the sparse ``in-flight`` index (deployments without an outcome, and
  SUCCEEDED ones watched for a flap), plus one conditional UpdateItem per transition (or end of a
  watch); a deployment whose state did not change costs no write;
- Argo CD: one ``GET /api/v1/applications/{name}`` per application with tracked deployments,
  however many deployments of it are tracked;
- GitHub: at most one compare request per new revision seen that might contain our commit, and
  none when the ledger already tells (a later tagrelay commit on the same GitOps branch contains
  ours); answers are cached for the life of the process.

Failure rules: an unreachable Argo CD (connection error, timeout, 5xx after retries) or a 403 is an
observation the state machine never turns into an outcome: nothing is recorded, the next run asks
again, and the ``TrackingBlocked`` metric counts what is blocked (its alarms say what to do). A 401
or another misconfiguration, and a ledger failure, stop the run; the handler logs what was done and
re-raises, so the Lambda reports an error and the TrackerErrors alarm fires.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from tagrelay.config import App, Config
from tagrelay.domain.outcome import (
    STOP_WATCHING,
    AccessDenied,
    ArgoCDUnreachable,
    Blocked,
    Decision,
    DeploymentState,
    EndWatch,
    Lineage,
    NoTransition,
    Observation,
    TrackedDeployment,
    Transition,
    evaluate_environment,
    expected_images,
    flap_outcome,
    nothing_to_watch,
    revisions_to_check,
    timeout_for,
    to_look_up,
    untrackable,
    untrackable_because,
)
from tagrelay.domain.records import DecisionRecord, parse_timestamp, timestamp
from tagrelay.errors import TagrelayError

if TYPE_CHECKING:
    from tagrelay.domain.deployment_events import DeploymentEvent
    from tagrelay.domain.facts import Comparison
    from tagrelay.ports import ArgoCD, DeploymentLedger, SourceRepository

logger = logging.getLogger(__name__)

METRICS_NAMESPACE = "tagrelay"
SERVICE = "tracker"
# infra/pipeline_metrics.py selects on these exact names and dimensions.
OUTCOMES_METRIC = "DeploymentOutcomes"
LEAD_TIME_METRIC = "LeadTimeSeconds"
TIME_TO_SYNC_METRIC = "TimeToSyncSeconds"
BLOCKED_METRIC = "TrackingBlocked"
CAUSE_DIMENSION = "cause"
# The causes the alarms select on: Argo CD refuses the token (at once), or cannot be reached while
# deployments pass their deadline (a short outage before the deadline is not worth waking anyone).
PERMISSION_DENIED_CAUSE = Blocked.PERMISSION_DENIED.value
UNREACHABLE_PAST_TIMEOUT_CAUSE = "unreachable_past_timeout"
# Decided from the configuration and the ledger alone, before Argo CD is asked (plan_run).
PLAN_RULES: tuple[tuple[str, str], ...] = (
    ("no_argocd_app", DeploymentState.ENV_UNAVAILABLE.value),
    ("nothing_to_watch", STOP_WATCHING),
)
# Two tagrelay commits on one branch recorded further apart than this are in that order on the branch
# (each records its time right after GitHub accepted it); closer ones are compared on GitHub.
LEDGER_ORDER_MARGIN = timedelta(seconds=10)


@dataclass
class TrackerDependencies:
    """The outside world, injected so the tests, the benchmark and the demo can use the local stack."""

    config: Config
    ledger: DeploymentLedger
    # A client for one run. Made only when something is in flight, so an idle run reads no secret;
    # made per run, so a rotated token is picked up (the secret itself is cached for minutes).
    argocd: Callable[[], ArgoCD]
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    # GitHub, for "does this later revision contain our commit?" when the ledger cannot tell. Made on
    # first need (no secret is read before); None: such revisions stay unknown (the rules then wait).
    github: Callable[[], SourceRepository] | None = None
    # Deployment notifications (runtime.build_notifier): told of each state recorded. Never raises.
    publish: Callable[[DeploymentEvent], None] | None = None


# --------------------------------------------------------------------------------------------------
# What one run did.


@dataclass(frozen=True)
class RecordedTransition:
    """A transition the run decided; ``written`` is False when a concurrent writer got there first."""

    record: DecisionRecord
    transition: Transition
    written: bool

    @property
    def lead_time(self) -> timedelta | None:
        return lead_time(self.record, self.transition)


@dataclass
class TrackerRun:
    started_at: datetime
    in_flight: int = 0  # deployments without an outcome
    watching: int = 0  # SUCCEEDED deployments watched for a flap
    applications: list[str] = field(default_factory=list)  # the Argo CD applications asked, in order
    unreachable: dict[str, str] = field(default_factory=dict)  # application -> why
    transitions: list[RecordedTransition] = field(default_factory=list)
    watches_ended: list[tuple[DecisionRecord, EndWatch, bool]] = field(default_factory=list)
    waiting: list[tuple[DecisionRecord, NoTransition]] = field(default_factory=list)
    unreadable: list[tuple[DecisionRecord, str]] = field(default_factory=list)
    argocd_requests: int = 0
    ledger_requests: int = 0
    github_requests: int = 0
    revisions_checked: int = 0  # new (revision, commit) questions answered, by the ledger or GitHub
    error: TagrelayError | None = None
    disabled: str | None = None

    @property
    def blocked(self) -> list[tuple[DecisionRecord, NoTransition]]:
        """Deployments whose application Argo CD refused or did not answer this run."""
        return [(record, waiting) for record, waiting in self.waiting if waiting.blocked is not None]

    def blocked_counts(self) -> dict[str, int]:
        """What the TrackingBlocked metric reports, by cause (alarm causes only)."""
        counts = {PERMISSION_DENIED_CAUSE: 0, UNREACHABLE_PAST_TIMEOUT_CAUSE: 0}
        for _, waiting in self.blocked:
            if waiting.blocked is Blocked.PERMISSION_DENIED:
                counts[PERMISSION_DENIED_CAUSE] += 1
            elif waiting.overdue:
                counts[UNREACHABLE_PAST_TIMEOUT_CAUSE] += 1
        return {cause: count for cause, count in counts.items() if count}

    def raise_if_failed(self) -> None:
        """After logging and metrics: a run stopped by a misconfiguration or a ledger failure is an error."""
        if self.error is not None:
            raise self.error

    def summary(self) -> dict[str, Any]:
        """What the handler returns (and the logs carry): counts and every recorded change."""
        return {
            "in_flight": self.in_flight,
            "watching": self.watching,
            "applications": len(self.applications),
            "argocd_requests": self.argocd_requests,
            "dynamodb_requests": self.ledger_requests,
            "github_requests": self.github_requests,
            "transitions": [
                {
                    "app": t.record.app,
                    "env": t.record.env,
                    "tag": t.record.tag,
                    "decision_id": t.record.decision_id,
                    "from": t.transition.previous.value,
                    "to": t.transition.state.value,
                    "reason": t.transition.reason,
                    "written": t.written,
                }
                for t in self.transitions
            ],
            "watches_ended": [
                {"decision_id": r.decision_id, "reason": end.reason, "written": written}
                for r, end, written in self.watches_ended
            ],
            "waiting": len(self.waiting),
            "blocked": {r.decision_id: w.reason for r, w in self.blocked},
            "unreachable": dict(self.unreachable),
            "unreadable": [{"decision_id": r.decision_id, "problem": problem} for r, problem in self.unreadable],
            **({"disabled": self.disabled} if self.disabled else {}),
            **({"error": str(self.error)} if self.error else {}),
        }


# --------------------------------------------------------------------------------------------------
# Planning a run: pure, from the configuration and the in-flight records.


@dataclass(frozen=True)
class ArgoTarget:
    """One Argo CD application, asked once per run."""

    name: str
    project: str | None


@dataclass
class EnvironmentGroup:
    """The in-flight deployments of one app/env, evaluated together (a newer commit supersedes older ones)."""

    app: str
    env: str
    records: list[DecisionRecord] = field(default_factory=list)
    deployments: list[TrackedDeployment] = field(default_factory=list)


@dataclass
class RunPlan:
    targets: dict[ArgoTarget, list[EnvironmentGroup]] = field(default_factory=dict)
    # Deployments of an environment that has no Argo CD application (any more): decided without asking.
    untracked: list[tuple[DecisionRecord, Transition]] = field(default_factory=list)
    # Records with an outcome that are in the index for no reason any more: taken out without asking.
    stale: list[tuple[DecisionRecord, EndWatch]] = field(default_factory=list)
    unreadable: list[tuple[DecisionRecord, str]] = field(default_factory=list)
    # Every tracked GitOps commit: (repository, branch) -> {commit: committed_at}, so that the ledger can
    # tell that a later tagrelay commit on the same branch contains an earlier one.
    commits: dict[tuple[str, str], dict[str, datetime]] = field(default_factory=dict)


def plan_run(config: Config, records: Iterable[DecisionRecord], now: datetime) -> RunPlan:
    """Group the in-flight records by Argo CD application, then by environment."""
    plan = RunPlan()
    groups: dict[tuple[str, str], EnvironmentGroup] = {}
    for record in records:
        app = config.apps.get(record.app)
        environment = app.environments.get(record.env) if app is not None else None
        problem = untrackable_because(
            record.app,
            record.env,
            configured=environment is not None,
            argocd_app=environment.argocd_app if environment is not None else None,
        )
        if problem is not None:
            untracked = _untracked(record, problem, now)
            if isinstance(untracked, str):
                plan.unreadable.append((record, untracked))
            else:
                plan.untracked.append((record, untracked))
            continue
        # untrackable_because answered None: the app, its environment and its argocd_app are configured.
        assert app is not None and environment is not None and environment.argocd_app is not None
        try:
            deployment = tracked_deployment(
                record,
                app,
                timeout_for(environment.timeout_minutes, config.tracking.timeout_minutes),
                timedelta(minutes=config.tracking.flap_window_minutes),
            )
        except ValueError as error:
            plan.unreadable.append((record, str(error)))
            continue
        stale = nothing_to_watch(deployment)
        if stale is not None:
            plan.stale.append((record, stale))
            continue
        branch = plan.commits.setdefault((app.gitops.repo, app.gitops.branch), {})
        branch[deployment.gitops_commit] = deployment.committed_at
        key = (record.app, record.env)
        group = groups.get(key)
        if group is None:
            group = groups[key] = EnvironmentGroup(record.app, record.env)
            target = ArgoTarget(environment.argocd_app, environment.argocd_project)
            plan.targets.setdefault(target, []).append(group)
        group.records.append(record)
        group.deployments.append(deployment)
    return plan


def tracked_deployment(
    record: DecisionRecord, app: App, timeout: timedelta, flap_window: timedelta = timedelta(0)
) -> TrackedDeployment:
    """The state machine's view of a committed record. Raises ValueError for a record it cannot track."""
    if not record.gitops_commit or not record.tag:
        raise ValueError(f"decision {record.decision_id} has no GitOps commit or tag")
    try:
        state = DeploymentState(record.status or DeploymentState.COMMITTED)
    except ValueError:
        raise ValueError(f"decision {record.decision_id} has an unknown status {record.status!r}") from None
    images = tuple(record.digests) or tuple(app.images)
    return TrackedDeployment(
        deployment_id=record.decision_id,
        gitops_commit=record.gitops_commit,
        expected_images=expected_images(app.registry_host, images, record.tag),
        committed_at=parse_timestamp(record.committed_at or record.created_at),
        state=state,
        timeout=timeout,
        sync_started_at=parse_timestamp(record.sync_started_at) if record.sync_started_at else None,
        gitops_repo=app.gitops.repo,
        flap_window=flap_window,
        watch_until=parse_timestamp(record.watch_until)
        if record.watch_until and state is DeploymentState.SUCCEEDED
        else None,
    )


def _untracked(record: DecisionRecord, problem: str, now: datetime) -> Transition | str:
    """The record's untrackable transition (domain/outcome.py), or why the record cannot be read."""
    try:
        previous = DeploymentState(record.status or DeploymentState.COMMITTED)
        committed_at = parse_timestamp(record.committed_at or record.created_at)
        return untrackable(record.decision_id, previous, committed_at, problem, now)
    except ValueError as error:
        return f"decision {record.decision_id}: {error}"


def tracking_attributes(record: DecisionRecord, transition: Transition) -> dict[str, Any]:
    """What the ledger item gets on a transition: state, reason, Argo CD's times, durations (seconds)."""
    times = transition.timestamps
    durations = transition.durations
    final = transition.state.is_terminal
    return {
        "initiated_by": transition.initiated_by,
        "watch_until": _time(transition.watch_until),
        "flapped_at": _time(transition.flapped_at),
        "status_reason": transition.reason,
        "sync_started_at": _time(times.sync_started_at),
        "synced_at": _time(times.synced_at),
        "healthy_at": _time(times.healthy_at),
        "deploy_started_at": _time(times.deploy_started_at),
        "deployed_at": _time(times.deployed_at),
        "tracked_at": _time(times.decided_at),
        "finished_at": _time(times.decided_at) if final else None,
        "superseded_by": transition.superseded_by,
        "time_to_sync_seconds": _seconds(durations.to_synced),
        "sync_seconds": _seconds(durations.sync),
        "time_to_healthy_seconds": _seconds(durations.to_healthy),
        "lead_time_seconds": _seconds(lead_time(record, transition)),
    }


def lead_time(record: DecisionRecord, transition: Transition) -> timedelta | None:
    """Image push → healthy (SUCCEEDED only): the DORA lead time as far as tagrelay can see it."""
    healthy_at = transition.timestamps.healthy_at
    if transition.state is not DeploymentState.SUCCEEDED or healthy_at is None or not record.pushed_at:
        return None
    return max(healthy_at - parse_timestamp(record.pushed_at), timedelta(0))


def _time(moment: datetime | None) -> str | None:
    return timestamp(moment) if moment is not None else None


def _seconds(duration: timedelta | None) -> Decimal | None:
    # DynamoDB numbers go through Decimal; milliseconds are more than Argo CD's one-second clock gives.
    return Decimal(f"{duration.total_seconds():.3f}") if duration is not None else None


# --------------------------------------------------------------------------------------------------
# The run.


class Tracker:
    def __init__(self, deps: TrackerDependencies) -> None:
        self.deps = deps
        self.config = deps.config
        # (repository, revision, our commit) -> contains: commits never change, so this holds while warm.
        self.lineage_cache: dict[tuple[str, str, str], bool] = {}
        self._github: SourceRepository | None = None

    def run(self, now: datetime | None = None) -> TrackerRun:
        """One scheduled run. Never raises: an error that stops it is in ``TrackerRun.error``."""
        now = now or self.deps.clock()
        result = TrackerRun(started_at=now)
        if self.config.argocd is None:
            result.disabled = "argocd is not configured: deployment outcomes are not tracked"
            return result
        ledger = self.deps.ledger
        ledger_before = ledger.request_count
        client: ArgoCD | None = None
        try:
            records = ledger.in_flight()
            result.in_flight = sum(1 for r in records if r.in_flight)
            result.watching = len(records) - result.in_flight
            plan = plan_run(self.config, records, now)
            result.unreadable = plan.unreadable
            for record, transition in plan.untracked:
                self._record(result, record, transition)
            for record, end in plan.stale:
                self._end_watch(result, record, end)
            if plan.targets:
                client = self.deps.argocd()
                observed = [self._observe(result, client, target, groups) for target, groups in plan.targets.items()]
                self._learn_lineage(result, observed, plan)
                for observation, groups in observed:
                    self._decide(result, observation, groups, now)
        except TagrelayError as error:
            result.error = error
        finally:
            if client is not None:
                result.argocd_requests = client.request_count
                client.close()
            result.ledger_requests = ledger.request_count - ledger_before
        return result

    def _observe(
        self, result: TrackerRun, client: ArgoCD, target: ArgoTarget, groups: list[EnvironmentGroup]
    ) -> tuple[Observation, list[EnvironmentGroup]]:
        observation = client.observe_application(target.name, target.project)  # the one request
        result.applications.append(target.name)
        if isinstance(observation, ArgoCDUnreachable):
            result.unreachable[target.name] = observation.reason
        return observation, groups

    def _decide(
        self, result: TrackerRun, observation: Observation, groups: Sequence[EnvironmentGroup], now: datetime
    ) -> None:
        for group in groups:
            repo = self.config.apps[group.app].gitops.repo
            commits = {d.gitops_commit for d in group.deployments}
            lineage = Lineage(
                {
                    (revision, commit): answer
                    for (cached_repo, revision, commit), answer in self.lineage_cache.items()
                    if cached_repo == repo and commit in commits
                }
            )
            decisions = evaluate_environment(group.deployments, observation, now, lineage)
            for record, evaluated in zip(group.records, decisions, strict=True):
                decision: Decision = evaluated
                if isinstance(evaluated, Transition) and evaluated.flapped_at is not None:
                    decision = flap_outcome(evaluated, current_deployment_id=self._current_deployment_id(record))
                if isinstance(decision, Transition):
                    self._record(result, record, decision)
                elif isinstance(decision, EndWatch):
                    self._end_watch(result, record, decision)
                else:
                    result.waiting.append((record, decision))

    # --- does a revision Argo CD reports contain our commit?

    def _learn_lineage(
        self, result: TrackerRun, observed: Sequence[tuple[Observation, Sequence[EnvironmentGroup]]], plan: RunPlan
    ) -> None:
        """Answer, for the whole run, the questions "does this revision contain that commit?" that the
        rules need and the cache cannot: from the ledger, else one GitHub comparison per revision."""
        for (repo, branch), by_revision in self._lineage_questions(observed).items():
            tracked = plan.commits.get((repo, branch), {})
            for revision, deployments in by_revision.items():
                unknown = []
                for deployment in deployments:
                    answer = self._from_ledger(tracked, revision, deployment)
                    if answer is None:
                        unknown.append(deployment)
                    else:
                        self._learn(result, repo, revision, deployment.gitops_commit, answer)
                if unknown:
                    for deployment, answer in self._from_github(result, repo, revision, unknown):
                        self._learn(result, repo, revision, deployment.gitops_commit, answer)

    def _lineage_questions(
        self, observed: Sequence[tuple[Observation, Sequence[EnvironmentGroup]]]
    ) -> dict[tuple[str, str], dict[str, list[TrackedDeployment]]]:
        """(GitOps repo, branch) -> revision -> the deployments whose commit the rules ask it about."""
        questions: dict[tuple[str, str], dict[str, list[TrackedDeployment]]] = {}
        for observation, groups in observed:
            if isinstance(observation, ArgoCDUnreachable | AccessDenied):
                continue
            for group in groups:
                gitops = self.config.apps[group.app].gitops
                for deployment in to_look_up(group.deployments):
                    for revision in revisions_to_check(deployment, observation):
                        if (gitops.repo, revision, deployment.gitops_commit) not in self.lineage_cache:
                            asking = questions.setdefault((gitops.repo, gitops.branch), {}).setdefault(revision, [])
                            asking.append(deployment)
        return questions

    def _learn(self, result: TrackerRun, repo: str, revision: str, commit: str, answer: bool | None) -> None:
        if answer is not None and (repo, revision, commit) not in self.lineage_cache:
            self.lineage_cache[(repo, revision, commit)] = answer
            result.revisions_checked += 1

    @staticmethod
    def _from_ledger(tracked: dict[str, datetime], revision: str, deployment: TrackedDeployment) -> bool | None:
        """The promoter commits on the branch head, so a tagrelay commit made clearly later on the same
        branch contains ours and one made clearly earlier does not."""
        committed_at = tracked.get(revision)
        if committed_at is None:
            return None
        if committed_at >= deployment.committed_at + LEDGER_ORDER_MARGIN:
            return True
        if committed_at <= deployment.committed_at - LEDGER_ORDER_MARGIN:
            return False
        return None

    def _from_github(
        self, result: TrackerRun, repo: str, revision: str, deployments: Sequence[TrackedDeployment]
    ) -> list[tuple[TrackedDeployment, bool | None]]:
        """One comparison ``oldest...revision`` answers for every deployment that asks about ``revision``:
        the oldest commit is contained if the revision is ahead (or identical), and so is every commit
        GitHub lists between them; a commit clearly later than the oldest and not listed is not. Only
        what that leaves open costs a comparison of its own (a race of two promoters, a rewritten branch)."""
        oldest = min(deployments, key=lambda d: d.committed_at)
        answers: list[tuple[TrackedDeployment, bool | None]] = []
        comparison = self._compare(result, repo, oldest.gitops_commit, revision)
        for deployment in deployments:
            answer = _contained(comparison, oldest, deployment)
            if answer is None and deployment is not oldest and comparison is not _UNKNOWN:
                answer = _contained(
                    self._compare(result, repo, deployment.gitops_commit, revision), deployment, deployment
                )
            answers.append((deployment, answer))
        return answers

    def _compare(self, result: TrackerRun, repo: str, base: str, head: str) -> Comparison | object:
        """GitHub's comparison, None when ``base`` or ``head`` is no commit of ``repo``, _UNKNOWN on an error."""
        if self.deps.github is None:
            return _UNKNOWN
        from tagrelay.errors import CommitNotFound

        if self._github is None:
            self._github = self.deps.github()
        result.github_requests += 1
        try:
            return self._github.comparison(repo, base, head)
        except CommitNotFound:
            return None  # not a commit of the GitOps repository (a chart's, say)
        except TagrelayError as error:
            logger.warning(
                "could not ask GitHub whether a revision contains our commit; asking again next run",
                extra={"gitops_repo": repo, "revision": head, "gitops_commit": base, "why": str(error)},
            )
            return _UNKNOWN

    def _current_deployment_id(self, record: DecisionRecord) -> str | None:
        """Before a SUCCEEDED deployment turns DEGRADED: the environment's current deployment, which may be
        a newer one (one GetItem, only then; a newer one that already finished is not in the in-flight set)."""
        state = self.deps.ledger.environment_state(record.app, record.env)
        return state.current_decision_id if state is not None else None

    # --- writes

    def _record(self, result: TrackerRun, record: DecisionRecord, transition: Transition) -> None:
        written = self.deps.ledger.record_tracking(
            record,
            transition.state.value,
            tracking_attributes(record, transition),
            final=transition.final,
        )
        result.transitions.append(RecordedTransition(record, transition, written))
        if written and self.deps.publish is not None:
            from tagrelay.services.notify import event_from_record

            self.deps.publish(event_from_record(self.config, record, transition.state, transition.reason))

    def _end_watch(self, result: TrackerRun, record: DecisionRecord, end: EndWatch) -> None:
        """The deployment leaves the in-flight index with the outcome it has (one conditional write)."""
        written = self.deps.ledger.record_tracking(
            record,
            record.status or DeploymentState.SUCCEEDED.value,
            {"watch_ended_at": timestamp(result.started_at)},
            final=True,
        )
        result.watches_ended.append((record, end, written))


_UNKNOWN = object()  # GitHub could not be asked: nothing is known


def _contained(comparison: Comparison | object, base: TrackedDeployment, deployment: TrackedDeployment) -> bool | None:
    """Does the compared revision contain ``deployment``'s commit, given ``base...revision``?"""
    from tagrelay.domain.facts import Comparison

    if comparison is None:
        return False
    if not isinstance(comparison, Comparison):
        return None
    commit = deployment.gitops_commit
    if deployment is base:
        return comparison.status in ("ahead", "identical")
    if comparison.status in ("ahead", "identical") and commit in comparison.commits:
        return True
    # Not listed: not between base and the revision. Clearly later than base, so not before it either.
    clearly_later = deployment.committed_at >= base.committed_at + LEDGER_ORDER_MARGIN
    listed_in_full = comparison.status == "behind" or comparison.complete
    return False if clearly_later and listed_in_full and comparison.status != "diverged" else None


# --------------------------------------------------------------------------------------------------
# Logs and metrics of a run (Powertools Logger fields and CloudWatch EMF, like services/observe.py).


def log_run(run: TrackerRun) -> None:
    if run.disabled:
        logger.warning(run.disabled)
        return
    for recorded in run.transitions:
        record, transition = recorded.record, recorded.transition
        fields = {
            "app": record.app,
            "env": record.env,
            "tag": record.tag,
            "decision_id": record.decision_id,
            "gitops_commit": record.gitops_commit,
            "from": transition.previous.value,
            "to": transition.state.value,
            "written": recorded.written,
        }
        if not recorded.written:
            logger.info("another writer changed the deployment first; left as it is", extra=fields)
            continue
        level = logging.WARNING if transition.state.is_failure else logging.INFO
        logger.log(level, transition.reason, extra=fields)
    for record, end, written in run.watches_ended:
        logger.info(
            f"stopped watching for a flap: {end.reason}",
            extra={"app": record.app, "env": record.env, "decision_id": record.decision_id, "written": written},
        )
    for record, waiting in run.waiting:
        fields = {"app": record.app, "env": record.env, "tag": record.tag, "decision_id": record.decision_id}
        if waiting.blocked is Blocked.PERMISSION_DENIED:
            logger.error(f"tracking blocked: {waiting.reason}", extra={**fields, "cause": waiting.blocked.value})
        elif waiting.blocked is not None and waiting.overdue:
            logger.error(
                "tracking blocked past the deployment's timeout: Argo CD is unreachable; check the network path"
                " from the tracker to argocd.url and Argo CD's API server",
                extra={**fields, "cause": UNREACHABLE_PAST_TIMEOUT_CAUSE, "why": waiting.reason},
            )
        else:
            logger.debug(waiting.reason, extra=fields)
    for application, reason in run.unreachable.items():
        logger.warning("Argo CD unreachable; retrying next run", extra={"argocd_app": application, "why": reason})
    for record, problem in run.unreadable:
        logger.error("in-flight record cannot be tracked", extra={"decision_id": record.decision_id, "why": problem})
    summary = {
        k: v
        for k, v in run.summary().items()
        if k not in ("transitions", "unreadable", "unreachable", "blocked", "watches_ended")
    }
    if run.error is not None:
        logger.error("tracker run stopped", extra=summary)
    else:
        logger.info("tracker run", extra=summary)


def emit_tracking_metrics(run: TrackerRun) -> None:
    """One ``DeploymentOutcomes`` per final state written, and its timings (dimension ``service`` only);
    ``TrackingBlocked`` per cause with the number of deployments blocked this run."""
    from aws_lambda_powertools.metrics import MetricUnit, single_metric

    for cause, count in run.blocked_counts().items():
        with single_metric(
            name=BLOCKED_METRIC, unit=MetricUnit.Count, value=count, namespace=METRICS_NAMESPACE
        ) as metric:
            metric.add_dimension(name="service", value=SERVICE)
            metric.add_dimension(name=CAUSE_DIMENSION, value=cause)

    for recorded in run.transitions:
        transition = recorded.transition
        if not recorded.written or not transition.state.is_terminal:
            continue
        with single_metric(name=OUTCOMES_METRIC, unit=MetricUnit.Count, value=1, namespace=METRICS_NAMESPACE) as metric:
            metric.add_dimension(name="service", value=SERVICE)
            metric.add_dimension(name="outcome", value=transition.state.value)
        timings = ((LEAD_TIME_METRIC, recorded.lead_time), (TIME_TO_SYNC_METRIC, transition.durations.to_synced))
        for name, duration in timings:
            if duration is None:
                continue
            with single_metric(
                name=name, unit=MetricUnit.Seconds, value=duration.total_seconds(), namespace=METRICS_NAMESPACE
            ) as metric:
                metric.add_dimension(name="service", value=SERVICE)
