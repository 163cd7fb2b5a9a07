"""adapters/aws.py: one classification of boto3 failures for every AWS adapter (retry, or an operator
must act), by the retry rule in tagrelay.errors."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError

from tagrelay.adapters.aws import aws_call_failure, error_code, is_retryable
from tagrelay.errors import MisconfiguredError, TransientError


def client_error(code: str, status: int = 400, message: str = "no") -> ClientError:
    response: Any = {"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": status}}
    return ClientError(response, "Operation")


@pytest.mark.parametrize(
    ("failure", "kind", "words"),
    [
        (client_error("ThrottlingException"), TransientError, "ThrottlingException"),
        (client_error("InternalFailure", 500), TransientError, "retrying"),
        (client_error("AccessDeniedException"), MisconfiguredError, "grant it to the function's role"),
        (
            client_error("ValidationException", message="bad key"),
            MisconfiguredError,
            "refused (ValidationException: bad key)",
        ),
        (NoCredentialsError(), MisconfiguredError, "no AWS credentials"),
        (EndpointConnectionError(endpoint_url="https://kms"), TransientError, "EndpointConnectionError"),
    ],
)
def test_a_failure_is_retried_only_when_a_retry_can_help(failure: Exception, kind: type, words: str) -> None:
    error = aws_call_failure("kms", "kms:GetPublicKey on k", failure)
    assert type(error) is kind and words in str(error) and "kms:GetPublicKey on k" in str(error)


def test_the_code_is_read_from_client_errors_only() -> None:
    assert error_code(client_error("ResourceNotFoundException")) == "ResourceNotFoundException"
    assert error_code(NoCredentialsError()) == "" and error_code(None) == ""
    assert is_retryable(client_error("X", 503)) and not is_retryable(client_error("X", 400))
