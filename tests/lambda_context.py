"""The context object AWS Lambda passes to a handler (only what Powertools reads from it)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field


@dataclass
class FakeLambdaContext:
    function_name: str
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = ""
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


def lambda_context(function_name: str) -> FakeLambdaContext:
    arn = f"arn:aws:lambda:us-east-1:123456789012:function:tagrelay-{function_name}"
    return FakeLambdaContext(function_name=f"tagrelay-{function_name}", invoked_function_arn=arn)
