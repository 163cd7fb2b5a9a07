"""Signer policies: who may have signed a candidate signature.

Today: one cosign key pair (ECDSA P-256), from configuration or AWS KMS. A keyless policy (Fulcio
certificate chain, SAN and OIDC issuer, Rekor inclusion) will be another class with the same two
methods, reading the certificate from ``Candidate.annotations``.
"""

from __future__ import annotations

from collections.abc import Callable

from tagrelay.adapters.signatures.checks import check_ecdsa_p256_signature
from tagrelay.adapters.signatures.keys import VerificationKey
from tagrelay.adapters.signatures.model import Candidate, PolicyResult


class PublicKeyPolicy:
    """Accepts a signature that verifies with one public key (what ``cosign verify --key`` does).

    ``key`` is called on the first check, so that a KMS key is only fetched when a signature exists.
    Certificates and Rekor bundles in the annotations are ignored, as ``cosign verify --key`` ignores them.
    """

    def __init__(self, key: Callable[[], VerificationKey], *, label: str) -> None:
        self._key = key
        self._label = label

    @classmethod
    def of(cls, key: VerificationKey) -> PublicKeyPolicy:
        return cls(lambda: key, label=key.label)

    def describe(self) -> str:
        return self._label

    def check(self, candidate: Candidate) -> PolicyResult:
        key = self._key()
        problem = check_ecdsa_p256_signature(key.public_key, candidate.signature, candidate.payload)
        if problem is not None:
            return PolicyResult(accepted=False, signer=None, reason=f"{problem} (checked with {key.label})")
        return PolicyResult(accepted=True, signer=key.label, reason="")
