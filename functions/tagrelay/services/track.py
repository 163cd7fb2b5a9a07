"""track(now): one tracker run — read the in-flight deployments, ask Argo CD once per application,
and record each transition the outcome state machine decides (domain/outcome.py, docs/tracking.md).

Budget per run (acceptance of issue 4, measured by bench/tracker.py):

- DynamoDB: one Query of the sparse ``in-flight`` index, plus one conditional UpdateItem per
  transition; a deployment whose state did not change costs no write;
- Argo CD: one ``GET /api/v1/applications/{name}`` per application with deployments in flight,
  however many deployments of it are in flight.

Failure rules: an unreachable Argo CD (connection error, timeout, 5xx after retries) is an
observation the state machine ignores, so nothing is recorded and the next run asks again. A 401 or
another misconfiguration, and a ledger failure, stop the run; the handler logs what was done and
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
    ArgoCDUnreachable,
    DeploymentState,
    DeploymentTimestamps,
    NoTransition,
    TrackedDeployment,
    Transition,
    evaluate_environment,
    expected_images,
    timeout_for,
)
from tagrelay.domain.records import DecisionRecord, parse_timestamp, timestamp
from tagrelay.errors import TagrelayError

if TYPE_CHECKING:
    from tagrelay.adapters.argocd import ArgoCDClient
    from tagrelay.adapters.store import Ledger

logger = logging.getLogger(__name__)

METRICS_NAMESPACE = "tagrelay"
SERVICE = "tracker"
# infra/pipeline_metrics.py selects on these exact names and dimensions.
OUTCOMES_METRIC = "DeploymentOutcomes"
LEAD_TIME_METRIC = "LeadTimeSeconds"
TIME_TO_SYNC_METRIC = "TimeToSyncSeconds"


@dataclass
class TrackerDependencies:
    """The outside world, injected so the tests, the benchmark and the demo can use the local stack."""

    config: Config
    ledger: Ledger
    # A client for one run. Made only when something is in flight, so an idle run reads no secret;
    # made per run, so a rotated token is picked up (the secret itself is cached for minutes).
    argocd: Callable[[], ArgoCDClient]
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))


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
    in_flight: int = 0
    applications: list[str] = field(default_factory=list)  # the Argo CD applications asked, in order
    unreachable: dict[str, str] = field(default_factory=dict)  # application -> why
    transitions: list[RecordedTransition] = field(default_factory=list)
    waiting: list[tuple[DecisionRecord, NoTransition]] = field(default_factory=list)
    unreadable: list[tuple[DecisionRecord, str]] = field(default_factory=list)
    argocd_requests: int = 0
    ledger_requests: int = 0
    error: TagrelayError | None = None
    disabled: str | None = None

    def raise_if_failed(self) -> None:
        """After logging and metrics: a run stopped by a misconfiguration or a ledger failure is an error."""
        if self.error is not None:
            raise self.error

    def summary(self) -> dict[str, Any]:
        """What the handler returns (and the logs carry): counts and every recorded change."""
        return {
            "in_flight": self.in_flight,
            "applications": len(self.applications),
            "argocd_requests": self.argocd_requests,
            "dynamodb_requests": self.ledger_requests,
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
            "waiting": len(self.waiting),
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
    unreadable: list[tuple[DecisionRecord, str]] = field(default_factory=list)


def plan_run(config: Config, records: Iterable[DecisionRecord], now: datetime) -> RunPlan:
    """Group the in-flight records by Argo CD application, then by environment."""
    plan = RunPlan()
    groups: dict[tuple[str, str], EnvironmentGroup] = {}
    for record in records:
        app = config.apps.get(record.app)
        environment = app.environments.get(record.env) if app is not None else None
        if app is None or environment is None or not environment.argocd_app:
            problem = (
                f"{record.app}/{record.env} is no longer configured"
                if environment is None
                else f"{record.app}/{record.env} names no argocd_app"
            )
            untracked = _untracked(record, problem, now)
            if isinstance(untracked, str):
                plan.unreadable.append((record, untracked))
            else:
                plan.untracked.append((record, untracked))
            continue
        try:
            deployment = tracked_deployment(
                record, app, timeout_for(environment.timeout_minutes, config.tracking.timeout_minutes)
            )
        except ValueError as error:
            plan.unreadable.append((record, str(error)))
            continue
        key = (record.app, record.env)
        group = groups.get(key)
        if group is None:
            group = groups[key] = EnvironmentGroup(record.app, record.env)
            target = ArgoTarget(environment.argocd_app, environment.argocd_project)
            plan.targets.setdefault(target, []).append(group)
        group.records.append(record)
        group.deployments.append(deployment)
    return plan


def tracked_deployment(record: DecisionRecord, app: App, timeout: timedelta) -> TrackedDeployment:
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
    )


def _untracked(record: DecisionRecord, problem: str, now: datetime) -> Transition | str:
    """ENV_UNAVAILABLE for a deployment no Argo CD application can tell about: not a failure of the
    change, and it leaves the in-flight set instead of being looked at every minute forever."""
    try:
        previous = DeploymentState(record.status or DeploymentState.COMMITTED)
        committed_at = parse_timestamp(record.committed_at or record.created_at)
        return Transition(
            deployment_id=record.decision_id,
            previous=previous,
            state=DeploymentState.ENV_UNAVAILABLE,
            reason=f"{problem}: the outcome cannot be tracked",
            timestamps=DeploymentTimestamps(committed_at=committed_at, decided_at=now),
        )
    except ValueError as error:
        return f"decision {record.decision_id}: {error}"


def tracking_attributes(record: DecisionRecord, transition: Transition) -> dict[str, Any]:
    """What the ledger item gets on a transition: state, reason, Argo CD's times, durations (seconds)."""
    times = transition.timestamps
    durations = transition.durations
    final = transition.state.is_terminal
    return {
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

    def run(self, now: datetime | None = None) -> TrackerRun:
        """One scheduled run. Never raises: an error that stops it is in ``TrackerRun.error``."""
        now = now or self.deps.clock()
        result = TrackerRun(started_at=now)
        if self.config.argocd is None:
            result.disabled = "argocd is not configured: deployment outcomes are not tracked"
            return result
        ledger = self.deps.ledger
        ledger_before = ledger.request_count
        client: ArgoCDClient | None = None
        try:
            records = ledger.in_flight()
            result.in_flight = len(records)
            plan = plan_run(self.config, records, now)
            result.unreadable = plan.unreadable
            for record, transition in plan.untracked:
                self._record(result, record, transition)
            if plan.targets:
                client = self.deps.argocd()
                for target, groups in plan.targets.items():
                    self._track_application(result, client, target, groups, now)
        except TagrelayError as error:
            result.error = error
        finally:
            if client is not None:
                result.argocd_requests = client.request_count
                client.close()
            result.ledger_requests = ledger.request_count - ledger_before
        return result

    def _track_application(
        self,
        result: TrackerRun,
        client: ArgoCDClient,
        target: ArgoTarget,
        groups: Sequence[EnvironmentGroup],
        now: datetime,
    ) -> None:
        observation = client.observe_application(target.name, target.project)  # the one request
        result.applications.append(target.name)
        if isinstance(observation, ArgoCDUnreachable):
            result.unreachable[target.name] = observation.reason
        for group in groups:
            decisions = evaluate_environment(group.deployments, observation, now)
            for record, decision in zip(group.records, decisions, strict=True):
                if isinstance(decision, Transition):
                    self._record(result, record, decision)
                else:
                    result.waiting.append((record, decision))

    def _record(self, result: TrackerRun, record: DecisionRecord, transition: Transition) -> None:
        written = self.deps.ledger.record_tracking(
            record,
            transition.state.value,
            tracking_attributes(record, transition),
            final=transition.state.is_terminal,
        )
        result.transitions.append(RecordedTransition(record, transition, written))


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
    for record, waiting in run.waiting:
        logger.debug(waiting.reason, extra={"app": record.app, "env": record.env, "decision_id": record.decision_id})
    for application, reason in run.unreachable.items():
        logger.warning("Argo CD unreachable; retrying next run", extra={"argocd_app": application, "why": reason})
    for record, problem in run.unreadable:
        logger.error("in-flight record cannot be tracked", extra={"decision_id": record.decision_id, "why": problem})
    summary = {k: v for k, v in run.summary().items() if k not in ("transitions", "unreadable", "unreachable")}
    if run.error is not None:
        logger.error("tracker run stopped", extra=summary)
    else:
        logger.info("tracker run", extra=summary)


def emit_tracking_metrics(run: TrackerRun) -> None:
    """One ``DeploymentOutcomes`` per final state written, and its timings (dimension ``service`` only)."""
    from aws_lambda_powertools.metrics import MetricUnit, single_metric

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
