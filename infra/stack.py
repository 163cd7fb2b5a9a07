"""The tagrelay stack: ledger, promoter, tracker, alarms and dashboard, from one configuration file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aws_cdk as cdk
from constructs import Construct

from infra import access
from infra.alarms import PipelineAlarms
from infra.bundling import bundle_inputs, lambda_code
from infra.dashboard import PipelineDashboard
from infra.ledger_table import LedgerTable
from infra.pipeline_function import PYTHON_VERSION
from infra.promoter import Promoter
from infra.reconciler import Reconciler
from infra.tracker import Tracker
from tagrelay.config import Config


class TagrelayStack(cdk.Stack):
    def __init__(
        self, scope: Construct, construct_id: str, *, config: Config, config_file: Path, **kwargs: Any
    ) -> None:
        super().__init__(
            scope,
            construct_id,
            description="tagrelay: promotes signed, SHA-tagged ECR images into a GitOps repository and "
            "records how each deployment went",
            **kwargs,
        )
        code = lambda_code(bundle_inputs(config, config_file, PYTHON_VERSION))
        self.ledger = LedgerTable(self, "Ledger", table_name=config.ledger.table)
        self.promoter = Promoter(self, "Promoter", config=config, code=code, ledger=self.ledger)
        self.tracker = Tracker(self, "Tracker", config=config, code=code, ledger=self.ledger)
        self.reconciler = Reconciler(self, "Reconciler", config=config, code=code, ledger=self.ledger)
        self.alarms = PipelineAlarms(
            self,
            "Alarms",
            config=config,
            dead_letter_queue=self.promoter.dead_letter_queue,
            promoter=self.promoter.function,
            tracker=self.tracker.function,
            reconciler=self.reconciler.function,
            reconcile_period=self.reconciler.period,
        )
        self.dashboard = PipelineDashboard(
            self,
            "Dashboard",
            config=config,
            promoter=self.promoter.function,
            tracker=self.tracker.function,
            reconciler=self.reconciler.function,
            reconcile_period=self.reconciler.period,
            dead_letter_queue=self.promoter.dead_letter_queue,
            alarms=self.alarms.alarms,
        )
        self._outputs()
        self._warn_about_unreachable_repositories(config)

    def _outputs(self) -> None:
        outputs = {
            "PromoterFunctionName": (self.promoter.function.function_name, "invoked by `tagrelay deploy`"),
            "TrackerFunctionName": (self.tracker.function.function_name, "runs on the tracking schedule"),
            "ReconcilerFunctionName": (self.reconciler.function.function_name, "runs the reconcile sweep"),
            "LedgerTableName": (self.ledger.table_name, "the deployment ledger"),
            "DeadLetterQueueUrl": (self.promoter.dead_letter_queue.queue_url, "events that could not be promoted"),
            "AlarmTopicArn": (self.alarms.topic.topic_arn, "subscribe on-call tools here"),
        }
        for name, (value, description) in outputs.items():
            cdk.CfnOutput(self, name, value=value, description=description)

    def _warn_about_unreachable_repositories(self, config: Config) -> None:
        """ECR sends push events to the repository's own account and region only."""
        for repository in access.image_repositories(config):
            for what, theirs, ours in (
                ("account", repository.account, self.account),
                ("region", repository.region, self.region),
            ):
                if not cdk.Token.is_unresolved(ours) and theirs != ours:
                    cdk.Annotations.of(self).add_warning_v2(
                        f"tagrelay:repository-{what}",
                        f"{repository.name} (apps.{repository.app}) is in {what} {theirs} but the stack deploys to "
                        f"{ours}: its push events will not reach this stack's event bus without forwarding",
                    )
