"""Promoter Lambda: an EventBridge ``ECR Image Action`` event in, recorded decisions out; or an
operator request from the `tagrelay` command (deploy, rollback, pin, unpin) in, its outcome out.

Returns normally for every decision (rejections included) so a retry never repeats one; raises only
for transient or operator-fixable failures, which Lambda retries and then dead-letters.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import cache
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers
from aws_lambda_powertools.utilities.typing import LambdaContext

from tagrelay import runtime
from tagrelay.domain.operator import is_operator_request
from tagrelay.services.observe import emit_decision_metrics, log_decisions
from tagrelay.services.report import report

logger = Logger(service="promoter")
# The services log through the standard "tagrelay" logger; give it the same JSON format and event id.
copy_config_to_registered_loggers(source_logger=logger, include={"tagrelay"})


@logger.inject_lambda_context(correlation_id_path="id")
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return _traced()(event, context)


def _promote(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    # The invocation's own deadline, so that no GitOps commit starts that Lambda would cut short.
    deadline = time.monotonic() + context.get_remaining_time_in_millis() / 1000
    with runtime.promoter().invocation_deadline(deadline):
        if is_operator_request(event):  # `tagrelay deploy/rollback/pin/unpin` (services/operate.py)
            return runtime.operator().handle(event, invocation_id=context.aws_request_id)
        evaluations = runtime.promoter().process(event)
    log_decisions(evaluations)
    emit_decision_metrics(evaluations)
    return report(evaluations)


@cache
def _traced() -> Callable[[dict[str, Any], LambdaContext], dict[str, Any]]:
    # The X-Ray SDK (and the botocore it pulls in) costs ~0.5 s to import: create the Tracer on the first
    # invocation instead of at import, and patch only the clients the promoter uses.
    from aws_lambda_powertools import Tracer

    tracer = Tracer(service="promoter", patch_modules=("boto3", "requests"))
    return tracer.capture_lambda_handler(_promote)
