"""The context object AWS Lambda passes to a handler (only what Powertools reads from it).

The local stack invokes handlers in-process (tests, demo, benchmarks); this stands in for the runtime's
context object, not for any client.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, cast

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext


@dataclass
class FakeLambdaContext:
    function_name: str
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = ""
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    remaining_ms: int = 60_000
    created: float = field(default_factory=time.monotonic)

    def get_remaining_time_in_millis(self) -> int:
        # Counts down like the runtime's: what was left when the invocation started, less the time since.
        return max(0, self.remaining_ms - int((time.monotonic() - self.created) * 1000))


def lambda_context(function_name: str, *, remaining_ms: int = 60_000) -> LambdaContext:
    arn = f"arn:aws:lambda:us-east-1:123456789012:function:tagrelay-{function_name}"
    # Duck-typed: it has every attribute the Powertools decorators read from the real context.
    context = FakeLambdaContext(
        function_name=f"tagrelay-{function_name}", invoked_function_arn=arn, remaining_ms=remaining_ms
    )
    return cast("LambdaContext", context)
