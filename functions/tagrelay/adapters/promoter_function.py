"""The promoter function as the `tagrelay` operator commands reach it: AWS Lambda's Invoke, with boto3.

Each call signs an sts:GetCallerIdentity request with the caller's AWS credentials as proof of who asks
(adapters/identity.py), invokes the function synchronously (lambda:InvokeFunction, so IAM decides who
may call at all), and returns its answer. Endpoints: the function is ``function`` (default
``<deploy.stack_name>-promoter``) in the AWS region of the environment (or ``deploy.region``);
``endpoint`` sends the invocation elsewhere, e.g. to the local stack's Lambda API (devstack/lambda_api.py).

Failures are ``InvocationFailed``: ``may_have_run`` False when the function was certainly not reached
(no credentials, no such function, not allowed), True when it may have carried the request out (it
failed, or no answer came), so that the caller sends the same request again rather than a new one.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from tagrelay.adapters.aws import ACCESS_DENIED_CODES, NOT_FOUND_CODES, error_code
from tagrelay.config import Config
from tagrelay.domain.operator import OPERATION_KEY, request_binding
from tagrelay.errors import InvocationFailed

if TYPE_CHECKING:
    from mypy_boto3_lambda import LambdaClient

# Longer than the promoter's own timeout (2 minutes, infra/promoter.py): the answer is worth waiting for.
READ_TIMEOUT_SECONDS = 180


class LambdaPromoterFunction:
    def __init__(
        self, config: Config, *, function: str | None = None, endpoint: str | None = None, how_to_point: str = ""
    ) -> None:
        self.config = config
        self.function = function or f"{config.deploy.stack_name}-promoter"
        self.endpoint = endpoint
        # What the command tells its user to pass when the function is not where it looked.
        self.how_to_point = how_to_point

    def call(self, operation: str, fields: Mapping[str, Any]) -> dict[str, Any]:
        import boto3
        from botocore.config import Config as BotoConfig
        from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

        from tagrelay.adapters.identity import default_sts_endpoint, sign_caller_identity

        config = self.config
        session = boto3.Session(region_name=config.deploy.region) if config.deploy.region else boto3.Session()
        region = session.region_name
        if not region:
            raise InvocationFailed("no AWS region", may_have_run=False, usage=True)
        payload = {OPERATION_KEY: operation, **fields}
        try:
            credentials = session.get_credentials()
            if credentials is None:
                raise InvocationFailed(
                    "no AWS credentials: the promoter needs to know who you are (aws sts get-caller-identity)",
                    may_have_run=False,
                )
            identity = sign_caller_identity(
                credentials.get_frozen_credentials(),
                endpoint=config.operators.sts_endpoint or default_sts_endpoint(region),
                region=region,
                binding=request_binding(payload),
            )
        except (BotoCoreError, NoCredentialsError) as exc:
            raise InvocationFailed(f"could not sign the identity proof: {exc}", may_have_run=False) from None
        client: LambdaClient = session.client(
            "lambda",
            endpoint_url=self.endpoint,
            # One attempt: a timed-out invocation may still be running, and repeating it is not the caller's call.
            config=BotoConfig(read_timeout=READ_TIMEOUT_SECONDS, retries={"total_max_attempts": 1}),
        )
        function, where = self.function, self.endpoint or f"AWS Lambda in {region}"
        try:
            response = client.invoke(
                FunctionName=function,
                InvocationType="RequestResponse",
                Payload=json.dumps({**payload, "identity": identity}).encode(),
            )
        except ClientError as exc:
            code = error_code(exc)
            if code in NOT_FOUND_CODES:
                advice = f": {self.how_to_point}" if self.how_to_point else ""
                raise InvocationFailed(f"no function {function!r} at {where}{advice}", may_have_run=False) from None
            if code in ACCESS_DENIED_CODES:
                raise InvocationFailed(
                    f"not allowed to invoke {function!r} ({code}): your role needs lambda:InvokeFunction on it "
                    "(deploy.operators_role_arns)",
                    may_have_run=False,
                ) from None
            raise InvocationFailed(
                f"invoking {function!r} at {where} failed: {code or exc}", may_have_run=True
            ) from None
        except BotoCoreError as exc:
            raise InvocationFailed(f"invoking {function!r} at {where} failed: {exc}", may_have_run=True) from None
        body = response["Payload"].read()
        try:
            answer = json.loads(body) if body else None
        except ValueError:
            answer = None
        if response.get("FunctionError"):
            detail = answer if isinstance(answer, dict) else {}
            raise function_error(detail.get("errorType", response["FunctionError"]), detail.get("errorMessage"))
        if not isinstance(answer, dict) or "ok" not in answer:
            raise InvocationFailed(
                f"{function!r} did not answer like tagrelay's promoter; is it the right function?", may_have_run=False
            )
        return answer


def function_error(error_type: str, message: str | None) -> InvocationFailed:
    """The function raised (Lambda answered with its error type and message): it may have acted."""
    return InvocationFailed(
        f"the promoter failed ({error_type}: {message or 'no message'}; the function's logs say more)",
        may_have_run=True,
    )
