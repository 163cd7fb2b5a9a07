"""The reconcile sweep: on a schedule, re-evaluates releases whose events were lost and records changes
made outside tagrelay (functions/tagrelay/services/reconcile.py).

It evaluates and commits releases exactly as the promoter does, so it has the promoter's access
(infra/promoter.py ``grant_promotion_access``) and nothing else: no EventBridge rule but its schedule,
no dead-letter queue (a failed run is not retried: the next run looks at the same facts again), and
the promoter's network placement (its Argo CD refresh nudge after a commit).
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from infra import pipeline_metrics
from infra.ledger_table import LedgerTable
from infra.pipeline_function import PipelineFunction
from infra.promoter import grant_promotion_access
from infra.tracker import LAMBDA_MAX_TIMEOUT_SECONDS
from tagrelay.config import Config


class Reconciler(Construct):
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
        self.period = cdk.Duration.minutes(config.reconcile.schedule_minutes)
        self.pipeline_function = PipelineFunction(
            self,
            "Lambda",
            config=config,
            code=code,
            service=pipeline_metrics.RECONCILER_SERVICE,
            description="tagrelay reconcile sweep: promotes releases whose events were lost, records changes "
            "made outside tagrelay",
            memory_size=1024,  # the promoter's: the same signature checks and imports
            # A run should end before the next one starts (and within Lambda's 15 minutes).
            timeout=cdk.Duration.seconds(min(self.period.to_seconds(), LAMBDA_MAX_TIMEOUT_SECONDS)),
            ledger_table_name=ledger.table_name,
            vpc_placement=config.deploy.promoter_vpc,
        )
        self.function = self.pipeline_function.function
        # A failed run is not retried: the next one looks at the same facts. (Its timeout is the period, so
        # runs do not overlap; no reserved concurrency, which a new account's limit of 10 would refuse.)
        self.function.configure_async_invoke(retry_attempts=0, max_event_age=self.period)
        self.schedule = events.Rule(
            self,
            "Schedule",
            description="tagrelay: run the reconcile sweep",
            schedule=events.Schedule.rate(self.period),
        )
        self.schedule.add_target(targets.LambdaFunction(self.function, retry_attempts=2, max_event_age=self.period))
        grant_promotion_access(self, self.pipeline_function, config, ledger)
