"""Reconciler Lambda: on a schedule (EventBridge, reconcile.schedule_minutes), the backstop for lost
events and changes made outside tagrelay (services/reconcile.py).

Returns the run's summary. Raises when part of the run could not be done (GitHub or DynamoDB failing,
a misconfiguration), after doing the rest, so that the function's error alarm fires; the next run
tries again.
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
from tagrelay.services.reconcile import emit_reconcile_metrics, log_run

logger = Logger(service="reconciler")
# The services log through the standard "tagrelay" logger; give it the same JSON format and request id.
copy_config_to_registered_loggers(source_logger=logger, include={"tagrelay"})


@logger.inject_lambda_context(correlation_id_path="id")
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return _traced()(event, context)


def _reconcile(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    run_id = event.get("id") if isinstance(event, dict) and isinstance(event.get("id"), str) else None
    # The invocation's own deadline: no commit starts that Lambda would cut short, and the run leaves the
    # releases it has no time for to the next run.
    deadline = time.monotonic() + context.get_remaining_time_in_millis() / 1000
    run = runtime.reconciler().run(run_id or context.aws_request_id, deadline=deadline)
    log_run(run)
    emit_reconcile_metrics(run)
    run.raise_if_failed()
    return run.summary()


@cache
def _traced() -> Callable[[dict[str, Any], LambdaContext], dict[str, Any]]:
    # As in the promoter: the X-Ray SDK costs ~0.5 s to import, so the Tracer is made on the first run.
    from aws_lambda_powertools import Tracer

    tracer = Tracer(service="reconciler", patch_modules=("boto3", "requests"))
    return tracer.capture_lambda_handler(_reconcile)
