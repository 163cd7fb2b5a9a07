"""Signer policies: who may have signed a candidate signature.

Here: one cosign key pair (ECDSA P-256), from configuration or AWS KMS. The keyless policy (Fulcio
certificate, Rekor, identity and commit binding) is ``keyless.KeylessPolicy``, with the same two methods.
"""

from __future__ import annotations

from collections.abc import Callable

from tagrelay.adapters.signatures.checks import check_ecdsa_p256_signature
from tagrelay.adapters.signatures.keys import VerificationKey
from tagrelay.adapters.signatures.model import Candidate, Check, PolicyResult, ReleaseContext


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

    def check(self, candidate: Candidate, release: ReleaseContext | None = None) -> PolicyResult:
        key = self._key()
        problem = check_ecdsa_p256_signature(key.public_key, candidate.signature, candidate.payload)
        if problem is not None:
            why = f"{problem} (checked with {key.label})"
            return PolicyResult(accepted=False, signer=None, reason=why, checks=(Check("signature", "fail", why),))
        checks = (Check("signature", "pass", f"verifies with {key.label}"),)
        return PolicyResult(accepted=True, signer=key.label, reason="", checks=checks)
