"""The tracker: on a schedule, asks Argo CD about every in-flight deployment and records the outcome.

Optionally placed in a VPC (deploy.tracker_vpc) when Argo CD is only reachable from inside one; the
subnets then need a route to Secrets Manager and DynamoDB (NAT gateway or VPC endpoints).
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from infra import access, pipeline_metrics
from infra.ledger_table import LedgerTable
from infra.pipeline_function import PipelineFunction
from tagrelay.config import Config

LAMBDA_MAX_TIMEOUT_SECONDS = 900


class Tracker(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: Config,
        code: lambda_.Code,
        ledger: LedgerTable,
    ) -> None:
        super().__init__(scope, construct_id)
        period = cdk.Duration.minutes(config.tracking.schedule_minutes)
        self.pipeline_function = PipelineFunction(
            self,
            "Lambda",
            config=config,
            code=code,
            service=pipeline_metrics.TRACKER_SERVICE,
            description="tagrelay tracker: records how each in-flight deployment ends, from Argo CD",
            memory_size=512,
            # A run should finish before the next one starts.
            timeout=cdk.Duration.seconds(min(period.to_seconds(), LAMBDA_MAX_TIMEOUT_SECONDS)),
            ledger_table_name=ledger.table_name,
            vpc_placement=config.deploy.tracker_vpc,
        )
        self.function = self.pipeline_function.function
        # A run is useful only until the next one starts (schedule_minutes >= 1, so period >= Lambda's and
        # EventBridge's 60-second minimum event age). A failed run is not retried: the next run looks at
        # the same in-flight set. A failed delivery (throttled Invoke) is retried within the period.
        self.function.configure_async_invoke(retry_attempts=0, max_event_age=period)
        self.schedule = events.Rule(
            self,
            "Schedule",
            description="tagrelay: run the deployment tracker",
            schedule=events.Schedule.rate(period),
        )
        self.schedule.add_target(targets.LambdaFunction(self.function, retry_attempts=2, max_event_age=period))

        role = self.pipeline_function.role
        secrets = access.tracker_secrets(config)
        if secrets:
            role.add_to_principal_policy(access.secret_read_statement(self, "ReadArgoCdToken", secrets))
        ledger.grant_ledger_access(role)
