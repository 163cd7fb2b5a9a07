"""Secrets Manager through Powertools Parameters, cached per process.

A secret's value is returned to the caller only; it is never logged, put in an exception, or stored.
"""

from __future__ import annotations

from tagrelay.errors import MisconfiguredError, TransientError

# Re-read a secret at most every five minutes, so a rotated token is picked up without a redeploy.
SECRET_MAX_AGE_SECONDS = 300


def read_secret(name_or_arn: str) -> str:
    from aws_lambda_powertools.utilities import parameters
    from botocore.exceptions import BotoCoreError, ClientError

    from tagrelay.adapters.aws import ACCESS_DENIED_CODES, NOT_FOUND_CODES, error_code

    try:
        value = parameters.get_secret(name_or_arn, max_age=SECRET_MAX_AGE_SECONDS)
    except parameters.exceptions.GetParameterError as exc:
        cause = exc.__cause__
        code = error_code(cause)
        if code in NOT_FOUND_CODES | ACCESS_DENIED_CODES or code == "DecryptionFailure":
            raise MisconfiguredError(
                "secretsmanager", f"cannot read secret {name_or_arn} ({code}); create it or grant access"
            ) from None
        if isinstance(cause, (ClientError, BotoCoreError)):
            raise TransientError("secretsmanager", f"reading secret {name_or_arn} failed") from None
        raise MisconfiguredError("secretsmanager", f"cannot read secret {name_or_arn}") from None
    if isinstance(value, bytes):
        value = value.decode("utf-8")
    if not isinstance(value, str) or not value.strip():
        raise MisconfiguredError("secretsmanager", f"secret {name_or_arn} is empty or not a string")
    return value
