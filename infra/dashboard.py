"""One CloudWatch dashboard of the pipeline: decisions, deployment outcomes, DORA timings, the functions."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra import pipeline_metrics
from tagrelay.config import Config

WIDTH = 24
HALF = 12


class PipelineDashboard(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: Config,
        promoter: lambda_.IFunction,
        tracker: lambda_.IFunction,
        reconciler: lambda_.IFunction,
        reconcile_period: cdk.Duration,
        dead_letter_queue: sqs.IQueue,
        alarms: list[cloudwatch.Alarm],
    ) -> None:
        super().__init__(scope, construct_id)
        period = pipeline_metrics.PERIOD
        functions = (("promoter", promoter), ("tracker", tracker), ("reconciler", reconciler))
        self.dashboard = cloudwatch.Dashboard(
            self,
            "Dashboard",
            dashboard_name=config.deploy.stack_name,
            default_interval=cdk.Duration.days(1),
            widgets=[
                [cloudwatch.AlarmStatusWidget(title="Alarms", alarms=alarms, width=WIDTH, height=3)],
                [
                    cloudwatch.GraphWidget(
                        title="Promotion decisions",
                        left=[pipeline_metrics.decision_count(d, label=d) for d in pipeline_metrics.DECISIONS],
                        stacked=True,
                        width=HALF,
                    ),
                    cloudwatch.GraphWidget(
                        title="Deployment outcomes",
                        left=[pipeline_metrics.outcome_count(o, label=o) for o in pipeline_metrics.OUTCOMES],
                        stacked=True,
                        width=HALF,
                    ),
                ],
                [
                    cloudwatch.GraphWidget(
                        title="Lead time for changes (commit to healthy), seconds",
                        left=[
                            pipeline_metrics.tracker_timing(pipeline_metrics.LEAD_TIME_METRIC, statistic)
                            for statistic in ("p50", "p90", "Maximum")
                        ],
                        width=HALF,
                    ),
                    cloudwatch.GraphWidget(
                        title="Time to sync (GitOps commit to Argo CD synced), seconds",
                        left=[
                            pipeline_metrics.tracker_timing(pipeline_metrics.TIME_TO_SYNC_METRIC, statistic)
                            for statistic in ("p50", "p90", "Maximum")
                        ],
                        width=HALF,
                    ),
                ],
                [
                    cloudwatch.GraphWidget(
                        title="Reconcile sweep: releases stuck waiting, changes made outside tagrelay, states healed",
                        left=[
                            pipeline_metrics.reconciler_count(name, reconcile_period, label=name)
                            for name in (
                                pipeline_metrics.RELEASES_STUCK_METRIC,
                                pipeline_metrics.EXTERNAL_CHANGES_METRIC,
                                pipeline_metrics.STATES_HEALED_METRIC,
                            )
                        ],
                        width=WIDTH,
                    ),
                ],
                [
                    cloudwatch.GraphWidget(
                        title="Invocations and errors",
                        left=[
                            metric
                            for name, function in functions
                            for metric in (
                                function.metric_invocations(period=period, label=f"{name} invocations"),
                                function.metric_errors(period=period, label=f"{name} errors"),
                            )
                        ],
                        width=8,
                    ),
                    cloudwatch.GraphWidget(
                        title="Duration p90, ms",
                        left=[
                            function.metric_duration(period=period, statistic="p90", label=name)
                            for name, function in functions
                        ],
                        width=8,
                    ),
                    cloudwatch.GraphWidget(
                        title="Dead-letter queue, throttles, failed refresh nudges",
                        left=[
                            dead_letter_queue.metric_approximate_number_of_messages_visible(
                                period=period, statistic=cloudwatch.Stats.MAXIMUM, label="dead letters"
                            ),
                            pipeline_metrics.nudge_failures(),
                            *(
                                function.metric_throttles(period=period, label=f"{name} throttles")
                                for name, function in functions
                            ),
                        ],
                        width=8,
                    ),
                ],
            ],
        )
