"""Alarms to one SNS topic: undeliverable events, persistent function errors, rejected promotions, failed
deployments, and deployment tracking that is blocked (Argo CD refuses the tracker's token, or cannot be
reached while deployments pass their timeout).

An alarm pages a person, so each one means something that needs one:

- a **rejection** or a **failed deployment** is an outcome someone expected otherwise: the first one
  alarms;
- a function **error** alone does not: Lambda retries the promoter's events (a GitHub 5xx that the
  retry recovers is not news), and the tracker runs again a minute later. The error alarms fire only when
  every one of ``ERROR_PERIODS`` consecutive periods had errors (a failure that persists); an event
  given up on reaches the dead-letter queue, whose alarm fires on the first message.

Each description says what happened, what to do, and links its section of the runbook (docs/alarms.md,
or ``deploy.runbook_url``). Missing data (no events, no deployments) is normal and never alarms.
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra import pipeline_metrics
from tagrelay.config import Config

# Function errors alarm when they persist this many consecutive periods (pipeline_metrics.PERIOD each).
ERROR_PERIODS = 3
# Where the runbook is when deploy.runbook_url is not set: this repository's copy.
DEFAULT_RUNBOOK = "docs/alarms.md in the tagrelay repository"
MAX_DESCRIPTION = 1024  # CloudWatch's limit on AlarmDescription


def _camel(state: str) -> str:
    """SYNC_FAILED -> SyncFailed: an outcome state's words in an alarm's name."""
    return "".join(word.capitalize() for word in state.split("_"))


def runbook_link(config: Config, alarm: str) -> str:
    """The runbook section of one alarm (docs/alarms.md has a section per alarm, titled by its name)."""
    anchor = alarm.lower()
    if config.deploy.runbook_url:
        return f"{config.deploy.runbook_url}#{anchor}"
    return f"{DEFAULT_RUNBOOK}, section {alarm} (#{anchor})"


class PipelineAlarms(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: Config,
        dead_letter_queue: sqs.IQueue,
        promoter: lambda_.IFunction,
        tracker: lambda_.IFunction,
        reconciler: lambda_.IFunction,
        reconcile_period: Duration,
    ) -> None:
        super().__init__(scope, construct_id)
        self._config = config
        self._prefix = config.deploy.stack_name
        self.topic = sns.Topic(self, "Topic", display_name="tagrelay alarms", enforce_ssl=True)
        # The enforce-SSL topic policy replaces SNS's default one, so allow CloudWatch alarms of this
        # account explicitly.
        self.topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudWatchAlarmsPublish",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["sns:Publish"],
                resources=[self.topic.topic_arn],
                conditions={"StringEquals": {"aws:SourceAccount": self.topic.env.account}},
            )
        )
        if config.deploy.alarm_email:
            self.topic.add_subscription(subscriptions.EmailSubscription(config.deploy.alarm_email))

        minutes = int(pipeline_metrics.PERIOD.to_minutes()) * ERROR_PERIODS
        sweep_minutes = int(reconcile_period.to_minutes())
        self.alarms: list[cloudwatch.Alarm] = [
            self._alarm(
                "DeadLetterQueueNotEmpty",
                dead_letter_queue.metric_approximate_number_of_messages_visible(
                    period=pipeline_metrics.PERIOD, statistic=cloudwatch.Stats.MAXIMUM
                ),
                meaning="ECR push events were given up on: EventBridge could not deliver them to the promoter, "
                "or the promoter failed on them after its retries.",
                action="read the messages in the dead-letter queue (the error is in each), fix the cause, then "
                "send the events again (safe: promotion is level-triggered).",
            ),
            self._alarm(
                "PromoterErrors",
                promoter.metric_errors(period=pipeline_metrics.PERIOD, statistic=cloudwatch.Stats.SUM),
                periods=ERROR_PERIODS,
                meaning=f"The promoter function has been failing for {minutes} minutes (errors in each of "
                f"{ERROR_PERIODS} consecutive periods): GitHub, the registry or Secrets Manager unavailable, "
                "a credential refused, or a bug. Events are retried, and dead-lettered when retries run out.",
                action="read the promoter's log group for the failing system and its error; fix credentials "
                "or wait for the outage to pass; then re-send dead-lettered events.",
            ),
            self._alarm(
                "TrackerErrors",
                tracker.metric_errors(period=pipeline_metrics.PERIOD, statistic=cloudwatch.Stats.SUM),
                periods=ERROR_PERIODS,
                meaning=f"The tracker function has been failing for {minutes} minutes: deployment outcomes "
                "are not being recorded (they are caught up once it works again).",
                action="read the tracker's log group (Argo CD unreachable from its network, its token "
                "refused, DynamoDB throttled, or a bug) and fix the cause.",
            ),
            self._alarm(
                "ReconcilerErrors",
                reconciler.metric_errors(period=reconcile_period, statistic=cloudwatch.Stats.SUM),
                periods=2,
                meaning=f"The reconcile sweep failed two runs in a row ({sweep_minutes} minutes apart): lost "
                "events are not being recovered and hand edits not recorded. Each run does what it can and "
                "fails at the end, so its log says which release or environment could not be handled.",
                action="read the reconciler's log group (GitHub, the registry or DynamoDB failing, a "
                "credential refused) and fix the cause; the next run catches up.",
            ),
            self._alarm(
                "ReleasesStuckWaiting",
                pipeline_metrics.reconciler_count(pipeline_metrics.RELEASES_STUCK_METRIC, reconcile_period),
                meaning="A release has been waiting longer than reconcile.stuck_after_minutes since it was first "
                "seen: an image never pushed with the tag, a branch tag never moved to it, or a signature that "
                "never came (it is rejected once promotion.signature_grace_minutes has passed).",
                action="the reconciler's log names each release and the reason it waits; run `tagrelay explain` "
                "on one of its events, and fix CI (push the missing image or tag, sign it) or leave it: it "
                "leaves the report after reconcile.lookback_hours.",
            ),
            self._alarm(
                "PromotionsRejected",
                pipeline_metrics.decision_count(pipeline_metrics.REJECT),
                meaning="tagrelay refused to promote a release: unsigned or wrongly signed image, unknown "
                "commit or commit not on the branch, missing image, or a malformed values file.",
                action="run `tagrelay history --all` for the release and its reason; fix the build, the "
                "signature or the file, then push again. Treat an unexpected signer as a security incident.",
            ),
            self._alarm(
                "ReleaseTagMoved",
                pipeline_metrics.reason_count(pipeline_metrics.REJECT, pipeline_metrics.TAG_MOVED),
                meaning="A release tag tagrelay promoted now points at another image (tag_moved): a pod started "
                "now may run an image nobody verified.",
                action="treat it as a security incident: `tagrelay history --all` shows the tag and both digests; "
                "find the push in CloudTrail (PutImage, BatchDeleteImage), restore the verified digest or deploy "
                "another release.",
            ),
            self._alarm(
                "DeployedImageArchived",
                pipeline_metrics.reason_count(pipeline_metrics.ALERT, pipeline_metrics.IMAGE_ARCHIVED),
                meaning="An image that an environment runs was archived in ECR (a lifecycle rule, or by hand): a pod "
                "that starts now (a rescheduled node, a scale-up) cannot pull it. Reported by the archive event, "
                "and by the reconcile sweep while it lasts.",
                action="restore it (`aws ecr update-image-storage-class ... --target-storage-class STANDARD`, the "
                "command is in the alert's record: `tagrelay history --env <env>`) or deploy another release, and "
                "keep deployed tags out of the lifecycle rule.",
            ),
            *(
                self._alarm(
                    f"Deployments{_camel(outcome)}",
                    pipeline_metrics.outcome_count(outcome),
                    meaning=f"A deployment ended {outcome} in Argo CD: the new release is not running healthy.",
                    action="run `tagrelay history --env <env>` and `tagrelay status --env <env>`, look at the "
                    "application in Argo CD, and roll back with `tagrelay rollback --env <env>` if needed.",
                )
                for outcome in pipeline_metrics.FAILED_OUTCOMES
            ),
            self._alarm(
                "TrackingPermissionDenied",
                pipeline_metrics.blocked_count(pipeline_metrics.PERMISSION_DENIED_CAUSE),
                meaning="Argo CD answers 403 to the tracker for an application with deployments in flight: its "
                "token lost `applications, get` there (or, without argocd_project, the application may be gone). "
                "Those deployments stay in flight and get no outcome until it is fixed.",
                action="check the RBAC policy of the tracker's Argo CD account (argocd-rbac-cm) and the token in "
                "argocd.token_secret; set each environment's argocd_project so a missing application is a 404.",
            ),
            self._alarm(
                "TrackingBlockedArgoCdUnreachable",
                pipeline_metrics.blocked_count(pipeline_metrics.UNREACHABLE_PAST_TIMEOUT_CAUSE),
                meaning="Deployments have passed their timeout while the tracker cannot reach Argo CD (connection "
                "errors, timeouts or 5xx after retries): their outcome is unknown, and is recorded once Argo CD "
                "answers again.",
                action="check Argo CD's API server and the network path from the tracker (argocd.url, "
                "deploy.tracker_vpc: subnets, security group, routes); the tracker's log group has the error.",
            ),
        ]

    def _alarm(
        self, name: str, metric: cloudwatch.IMetric, *, meaning: str, action: str, periods: int = 1
    ) -> cloudwatch.Alarm:
        description = f"{meaning} What to do: {action} Runbook: {runbook_link(self._config, name)}"
        if len(description) > MAX_DESCRIPTION:
            raise ValueError(f"alarm {name}: the description is longer than CloudWatch's {MAX_DESCRIPTION}")
        alarm = cloudwatch.Alarm(
            self,
            name,
            alarm_name=f"{self._prefix}-{name}",
            alarm_description=description,
            metric=metric,
            threshold=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            evaluation_periods=periods,
            datapoints_to_alarm=periods,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        alarm.add_alarm_action(actions.SnsAction(self.topic))
        return alarm
