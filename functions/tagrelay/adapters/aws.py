"""How a boto3 failure is classified, in one place for every AWS adapter (ECR, KMS, DynamoDB, Secrets
Manager, Lambda): its error code, and which codes mean "retry" (throttling, a server error) or "an
operator must fix something" (access denied, a missing resource), by the retry rule in tagrelay.errors.

Codes: the AWS SDKs' common errors (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/errors-overview.html,
https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Programming.Errors.html).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tagrelay.errors import MisconfiguredError, TagrelayError, TransientError

if TYPE_CHECKING:
    from botocore.exceptions import ClientError

THROTTLING_CODES = frozenset({"ThrottlingException", "Throttling", "TooManyRequestsException", "RequestLimitExceeded"})
ACCESS_DENIED_CODES = frozenset({"AccessDeniedException", "AccessDenied", "UnrecognizedClientException"})
NOT_FOUND_CODES = frozenset({"ResourceNotFoundException", "RepositoryNotFoundException"})


def error_code(exc: BaseException | None) -> str:
    """The AWS error code of a botocore ClientError ("" for anything else)."""
    from botocore.exceptions import ClientError

    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", ""))
    return ""


def is_retryable(exc: ClientError) -> bool:
    """Throttled, or a server error: the same request may succeed later."""
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
    return error_code(exc) in THROTTLING_CODES or status >= 500


def aws_call_failure(system: str, action: str, exc: Exception) -> TagrelayError:
    """A boto3 failure of ``action`` as tagrelay's error: retryable ones are TransientError; missing
    credentials, a denied or refused call are MisconfiguredError (a retry would fail the same way)."""
    from botocore.exceptions import ClientError, NoCredentialsError, NoRegionError

    if isinstance(exc, (NoCredentialsError, NoRegionError)):
        return MisconfiguredError(
            system, f"{action}: no AWS {'credentials' if isinstance(exc, NoCredentialsError) else 'region'} available"
        )
    if isinstance(exc, ClientError):
        code = error_code(exc)
        if is_retryable(exc):
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
            return TransientError(system, f"{action} failed ({code or status}); retrying the event")
        if code in ACCESS_DENIED_CODES:
            return MisconfiguredError(system, f"{action} was denied ({code}); grant it to the function's role")
        return MisconfiguredError(
            system, f"{action} was refused ({code}: {exc.response.get('Error', {}).get('Message', '')})"
        )
    return TransientError(system, f"{action} failed ({type(exc).__name__})")
