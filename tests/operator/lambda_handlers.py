"""Handlers for the local Lambda API's own tests (tests/operator/test_lambda_api.py); run by its workers."""

from __future__ import annotations

import os
import time
from typing import Any


def echo(event: Any, context: Any) -> dict[str, Any]:
    print(f"echo handler saw {event!r}")  # the function's log (X-Amz-Log-Type: Tail)
    return {
        "event": event,
        "function": context.function_name,
        "arn": context.invoked_function_arn,
        "request_id": context.aws_request_id,
        "pid": os.getpid(),
        "variable": os.environ.get("LAMBDA_TEST_VARIABLE"),
    }


def fail(event: Any, context: Any) -> None:
    raise ValueError("the handler failed on purpose")


def hang(event: Any, context: Any) -> None:
    time.sleep(3600)


def crash(event: Any, context: Any) -> None:
    os._exit(3)
