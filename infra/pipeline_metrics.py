"""The CloudWatch metrics the functions emit (Powertools EMF through their logs), as the stack reads them.

This is the contract between the functions and the alarms/dashboard. Powertools' `single_metric` and
`Metrics` add the dimension ``service`` (from ``POWERTOOLS_SERVICE_NAME``, which the stack sets) to every
metric, so a promoter decision lands in CloudWatch with exactly the dimensions
``{decision: <verdict>, service: promoter}``. An alarm matches a metric only when its dimensions are
exactly those, so the dimension values come from the domain's enums (Verdict, Reason, DeploymentState),
the same values the handlers emit (functions/tagrelay/services/observe.py): a new verdict or outcome
state gets its dashboard line, and a new failure state its alarm, with no change here.
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch

from tagrelay.domain.decision import Reason, Verdict
from tagrelay.domain.outcome import TERMINAL_STATES, DeploymentState

NAMESPACE = "tagrelay"
SERVICE_DIMENSION = "service"
PROMOTER_SERVICE = "promoter"
TRACKER_SERVICE = "tracker"

# Promoter: one count per decided event and environment.
DECISIONS_METRIC = "Decisions"
DECISION_DIMENSION = "decision"
DECISIONS: tuple[Verdict, ...] = tuple(Verdict)
ALERT = Verdict.ALERT
IMAGE_ARCHIVED = Reason.IMAGE_ARCHIVED
REJECT = Verdict.REJECT
# Promoter: one count per Argo CD refresh nudge that failed (the promotion itself went on).
NUDGE_FAILURES_METRIC = "RefreshNudgeFailures"
# The same count per reason (dimensions service, decision, reason): what a specific alarm selects on.
DECISION_REASONS_METRIC = "DecisionReasons"
REASON_DIMENSION = "reason"
# A release tag tagrelay promoted now points at another image: someone re-pushed it (docs/integrity.md).
TAG_MOVED = Reason.TAG_MOVED

# Promoter and tracker: one count per notification delivered, or given up after its attempts (dimensions
# service, channel: github_deployments or a webhook's name). Never an outcome (docs/notifications.md).
NOTIFICATIONS_METRIC = "Notifications"
NOTIFICATION_FAILURES_METRIC = "NotificationFailures"
CHANNEL_DIMENSION = "channel"

# Tracker: one count per deployment that reached a terminal state, plus its DORA timings.
OUTCOMES_METRIC = "DeploymentOutcomes"
OUTCOME_DIMENSION = "outcome"
OUTCOMES: tuple[DeploymentState, ...] = tuple(state for state in DeploymentState if state in TERMINAL_STATES)
FAILED_OUTCOMES: tuple[DeploymentState, ...] = tuple(state for state in DeploymentState if state.is_failure)
LEAD_TIME_METRIC = "LeadTimeSeconds"
TIME_TO_SYNC_METRIC = "TimeToSyncSeconds"
# Tracker: deployments whose tracking is blocked in a run, by cause (services/track.py emits them).
BLOCKED_METRIC = "TrackingBlocked"
CAUSE_DIMENSION = "cause"
PERMISSION_DENIED_CAUSE = "permission_denied"
UNREACHABLE_PAST_TIMEOUT_CAUSE = "unreachable_past_timeout"
BLOCKED_CAUSES = (PERMISSION_DENIED_CAUSE, UNREACHABLE_PAST_TIMEOUT_CAUSE)

# Reconciler (the sweep): per run, the releases still waiting past reconcile.stuck_after_minutes (0
# included), and when not 0 the changes found made outside tagrelay and the environment states healed.
RECONCILER_SERVICE = "reconciler"
RELEASES_STUCK_METRIC = "ReleasesStuckWaiting"
EXTERNAL_CHANGES_METRIC = "ExternalChanges"
STATES_HEALED_METRIC = "EnvironmentStatesHealed"

PERIOD = Duration.minutes(5)


# A metric with a label renders as metric math in an alarm; alarms take these without one.
def decision_count(decision: str, *, label: str | None = None) -> cloudwatch.Metric:
    return cloudwatch.Metric(
        namespace=NAMESPACE,
        metric_name=DECISIONS_METRIC,
        dimensions_map={DECISION_DIMENSION: decision, SERVICE_DIMENSION: PROMOTER_SERVICE},
        statistic=cloudwatch.Stats.SUM,
        period=PERIOD,
        label=label,
    )


def reason_count(decision: str, reason: str, *, label: str | None = None) -> cloudwatch.Metric:
    return cloudwatch.Metric(
        namespace=NAMESPACE,
        metric_name=DECISION_REASONS_METRIC,
        dimensions_map={DECISION_DIMENSION: decision, REASON_DIMENSION: reason, SERVICE_DIMENSION: PROMOTER_SERVICE},
        statistic=cloudwatch.Stats.SUM,
        period=PERIOD,
        label=label,
    )


def outcome_count(outcome: str, *, label: str | None = None) -> cloudwatch.Metric:
    return cloudwatch.Metric(
        namespace=NAMESPACE,
        metric_name=OUTCOMES_METRIC,
        dimensions_map={OUTCOME_DIMENSION: outcome, SERVICE_DIMENSION: TRACKER_SERVICE},
        statistic=cloudwatch.Stats.SUM,
        period=PERIOD,
        label=label,
    )


def blocked_count(cause: str, *, label: str | None = None) -> cloudwatch.Metric:
    """The largest number of deployments blocked by ``cause`` in one run of the period."""
    return cloudwatch.Metric(
        namespace=NAMESPACE,
        metric_name=BLOCKED_METRIC,
        dimensions_map={CAUSE_DIMENSION: cause, SERVICE_DIMENSION: TRACKER_SERVICE},
        statistic=cloudwatch.Stats.MAXIMUM,
        period=PERIOD,
        label=label,
    )


def tracker_timing(metric_name: str, statistic: str) -> cloudwatch.Metric:
    return cloudwatch.Metric(
        namespace=NAMESPACE,
        metric_name=metric_name,
        dimensions_map={SERVICE_DIMENSION: TRACKER_SERVICE},
        statistic=statistic,
        period=Duration.hours(1),
        label=f"{metric_name} {statistic}",
    )


def nudge_failures() -> cloudwatch.Metric:
    return cloudwatch.Metric(
        namespace=NAMESPACE,
        metric_name=NUDGE_FAILURES_METRIC,
        dimensions_map={SERVICE_DIMENSION: PROMOTER_SERVICE},
        statistic=cloudwatch.Stats.SUM,
        period=PERIOD,
        label="Refresh nudges failed",
    )


def reconciler_count(metric_name: str, period: Duration, *, label: str | None = None) -> cloudwatch.Metric:
    """A count the reconcile sweep emits once per run: read over the sweep's own period (a shorter one
    would have empty periods between runs)."""
    return cloudwatch.Metric(
        namespace=NAMESPACE,
        metric_name=metric_name,
        dimensions_map={SERVICE_DIMENSION: RECONCILER_SERVICE},
        statistic=cloudwatch.Stats.MAXIMUM,
        period=period,
        label=label,
    )
