"""Public keys for cosign key-pair signatures: a PEM in the configuration, a PEM file, or AWS KMS.

Only a key's fingerprint (SHA-256 of its SubjectPublicKeyInfo) ever reaches logs, messages and
records. KMS keys are fetched lazily with ``kms:GetPublicKey``, once per key per process.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tagrelay.adapters.signatures.checks import key_fingerprint, p256_problem
from tagrelay.errors import MisconfiguredError

if TYPE_CHECKING:
    from mypy_boto3_kms import KMSClient

logger = logging.getLogger(__name__)

SYSTEM = "signature"
KMS_KEY_SPEC = "ECC_NIST_P256"
KMS_SIGNING_ALGORITHM = "ECDSA_SHA_256"


@dataclass(frozen=True)
class VerificationKey:
    """An ECDSA P-256 public key and how to name it (``label``) in verdicts and records."""

    public_key: ec.EllipticCurvePublicKey
    label: str

    @property
    def fingerprint(self) -> str:
        return key_fingerprint(self.public_key)


def key_from_pem(pem: str | bytes, *, source: str) -> VerificationKey:
    """A cosign public key (``cosign.pub``: PEM SubjectPublicKeyInfo). ``source`` names it in errors."""
    data = pem.encode() if isinstance(pem, str) else pem
    try:
        public_key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError):
        # The loader's message may quote the input; say only where it came from.
        raise MisconfiguredError(SYSTEM, f"{source} is not a PEM public key") from None
    return _p256(public_key, source=source)


def key_from_file(path: str | Path) -> VerificationKey:
    """A PEM public key file; a relative path is relative to the working directory (/var/task in Lambda)."""
    source = f"signature.key.public_key_file {path}"
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise MisconfiguredError(SYSTEM, f"cannot read {source} ({exc.strerror})") from None
    return key_from_pem(data, source=source)


def _p256(public_key: object, *, source: str) -> VerificationKey:
    problem = p256_problem(public_key)
    if problem is not None or not isinstance(public_key, ec.EllipticCurvePublicKey):
        raise MisconfiguredError(SYSTEM, f"{source}: {problem}; cosign key-pair signatures are ECDSA P-256")
    return VerificationKey(public_key=public_key, label=f"key {key_fingerprint(public_key)}")


def _default_kms_client(region: str | None) -> KMSClient:
    import boto3
    from botocore.config import Config

    return boto3.client(
        "kms",
        region_name=region,
        config=Config(connect_timeout=3, read_timeout=5, retries={"mode": "standard", "max_attempts": 3}),
    )


class KmsKeys:
    """``kms:GetPublicKey`` once per key per process (public keys do not change; rotation makes a new key)."""

    def __init__(self, client_factory: Callable[[str | None], KMSClient] = _default_kms_client) -> None:
        self._client_factory = client_factory
        self._keys: dict[str, VerificationKey] = {}
        self._lock = threading.Lock()

    def get(self, key_id: str) -> VerificationKey:
        with self._lock:
            key = self._keys.get(key_id)
            if key is None:
                key = self._keys[key_id] = self._fetch(key_id)
            return key

    def _fetch(self, key_id: str) -> VerificationKey:
        from botocore.exceptions import BotoCoreError, ClientError

        from tagrelay.adapters.aws import aws_call_failure

        action = f"kms:GetPublicKey on {key_id}"
        try:
            answer = self._client_factory(_region_of(key_id)).get_public_key(KeyId=key_id)
        except (ClientError, BotoCoreError) as exc:
            raise aws_call_failure("kms", action, exc) from None
        # KeySpec is current; CustomerMasterKeySpec is its deprecated twin (all that moto returns).
        spec = answer.get("KeySpec") or answer.get("CustomerMasterKeySpec")
        usage = answer.get("KeyUsage")
        algorithms = answer.get("SigningAlgorithms") or []
        if spec != KMS_KEY_SPEC or usage != "SIGN_VERIFY" or KMS_SIGNING_ALGORITHM not in algorithms:
            raise MisconfiguredError(
                SYSTEM,
                f"KMS key {key_id} is {spec} for {usage}; cosign signatures need an asymmetric "
                f"{KMS_KEY_SPEC} SIGN_VERIFY key ({KMS_SIGNING_ALGORITHM})",
            )
        try:
            public_key = serialization.load_der_public_key(answer["PublicKey"])
        except (KeyError, ValueError):
            raise MisconfiguredError(SYSTEM, f"{action} returned no usable public key") from None
        key = _p256(public_key, source=f"KMS key {key_id}")
        key = VerificationKey(public_key=key.public_key, label=f"kms:{key_id} ({key.label})")
        logger.info("loaded KMS verification key", extra={"kms_key_id": key_id, "fingerprint": key.fingerprint})
        return key


def _region_of(key_id: str) -> str | None:
    """The region of a key or alias ARN; None (the default region) for ids and alias names."""
    if key_id.startswith("arn:"):
        parts = key_id.split(":")
        if len(parts) > 3 and parts[3]:
            return parts[3]
    return None


# Process-wide, so that a warm Lambda asks KMS once per key.
KMS_KEYS = KmsKeys()
