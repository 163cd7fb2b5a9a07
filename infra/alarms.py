"""Alarms to one SNS topic: undeliverable events, function errors, rejected promotions, failed deployments.

Every alarm fires on the first occurrence in a five-minute period: each of these is something a person
should look at (a rejection means an image that someone expected to ship did not). Missing data (no
events, no deployments) is normal and never alarms.
"""

from __future__ import annotations

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

_OUTCOME_WORDS = {"DEGRADED": "Degraded", "SYNC_FAILED": "SyncFailed", "TIMED_OUT": "TimedOut"}


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
    ) -> None:
        super().__init__(scope, construct_id)
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

        self.alarms: list[cloudwatch.Alarm] = [
            self._alarm(
                "DeadLetterQueueNotEmpty",
                dead_letter_queue.metric_approximate_number_of_messages_visible(
                    period=pipeline_metrics.PERIOD, statistic=cloudwatch.Stats.MAXIMUM
                ),
                "ECR push events could not be delivered to or processed by the promoter. Read the messages in "
                "the dead-letter queue (docs/deploy.md, 'Dead-letter queue') and send them again once fixed.",
            ),
            self._alarm(
                "PromoterErrors",
                promoter.metric_errors(period=pipeline_metrics.PERIOD, statistic=cloudwatch.Stats.SUM),
                "The promoter function failed; Lambda retries, then dead-letters the event. See its log group.",
            ),
            self._alarm(
                "TrackerErrors",
                tracker.metric_errors(period=pipeline_metrics.PERIOD, statistic=cloudwatch.Stats.SUM),
                "The tracker function failed; deployment outcomes are not being recorded. See its log group.",
            ),
            self._alarm(
                "PromotionsRejected",
                pipeline_metrics.decision_count(pipeline_metrics.REJECT),
                "tagrelay refused to promote a release (unsigned or wrongly signed image, unknown commit, "
                "missing image, malformed values file). `tagrelay history` shows the reason.",
            ),
            *(
                self._alarm(
                    f"Deployments{_OUTCOME_WORDS[outcome]}",
                    pipeline_metrics.outcome_count(outcome),
                    f"A deployment ended {outcome} in Argo CD. `tagrelay history` shows which one and why.",
                )
                for outcome in pipeline_metrics.FAILED_OUTCOMES
            ),
        ]

    def _alarm(self, name: str, metric: cloudwatch.IMetric, description: str) -> cloudwatch.Alarm:
        alarm = cloudwatch.Alarm(
            self,
            name,
            alarm_name=f"{self._prefix}-{name}",
            alarm_description=description,
            metric=metric,
            threshold=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            evaluation_periods=1,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        alarm.add_alarm_action(actions.SnsAction(self.topic))
        return alarm
