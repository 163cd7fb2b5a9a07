"""Tracker Lambda: on a schedule (EventBridge), records how each in-flight deployment ended.

Returns the run's summary. Raises only when the run was stopped by a misconfiguration (a 401 from
Argo CD, a missing secret) or a ledger failure, so that the function's error alarm fires; an
unreachable Argo CD is not an error (the next run asks again).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers
from aws_lambda_powertools.utilities.typing import LambdaContext

from tagrelay import runtime
from tagrelay.services.track import emit_tracking_metrics, log_run

logger = Logger(service="tracker")
# The services log through the standard "tagrelay" logger; give it the same JSON format and request id.
copy_config_to_registered_loggers(source_logger=logger, include={"tagrelay"})


@logger.inject_lambda_context(correlation_id_path="id")
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return _traced()(event, context)


def _track(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    run = runtime.tracker().run()
    log_run(run)
    emit_tracking_metrics(run)
    run.raise_if_failed()
    return run.summary()


@cache
def _traced() -> Callable[[dict[str, Any], LambdaContext], dict[str, Any]]:
    # As in the promoter: the X-Ray SDK costs ~0.5 s to import, so the Tracer is made on the first run.
    from aws_lambda_powertools import Tracer

    tracer = Tracer(service="tracker", patch_modules=("boto3", "requests"))
    return tracer.capture_lambda_handler(_track)
