"""Signature verifiers: a source and a policy combined into a verdict per image digest."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tagrelay.adapters.signatures.checks import check_claims, check_payload_digest
from tagrelay.adapters.signatures.keys import KMS_KEYS, KmsKeys, key_from_file, key_from_pem
from tagrelay.adapters.signatures.model import (
    Candidate,
    PolicyResult,
    SignatureSource,
    SignatureVerdict,
    SignatureVerifier,
    SignerPolicy,
    Unusable,
)
from tagrelay.adapters.signatures.policies import PublicKeyPolicy
from tagrelay.adapters.signatures.sources import LegacyTagSource
from tagrelay.domain.tags import is_digest

if TYPE_CHECKING:
    from tagrelay.adapters.registry import Registry
    from tagrelay.config import App, KeySignature

NOT_REQUIRED_SIGNER = "none (signature: none)"


def examine(candidate: Candidate, digest: str, policy: SignerPolicy) -> PolicyResult:
    """One candidate against one policy: the payload is the announced blob, the policy accepts the
    signer, and the payload claims this digest. Checked in cosign's order, so the reason given is
    the first rule that fails."""
    problem = check_payload_digest(candidate.payload, candidate.payload_digest)
    if problem is not None:
        return PolicyResult(accepted=False, signer=None, reason=problem)
    result = policy.check(candidate)
    if not result.accepted:
        return result
    problem = check_claims(candidate.payload_type, candidate.payload, digest)
    if problem is not None:
        return PolicyResult(accepted=False, signer=None, reason=f"validly signed, but {problem}")
    return result


class CosignVerifier:
    """Verified when any one signature from ``source`` passes ``policy`` and names the digest."""

    def __init__(self, source: SignatureSource, policy: SignerPolicy) -> None:
        self.source = source
        self.policy = policy

    def verify(self, registry: Registry, repository: str, digest: str) -> SignatureVerdict:
        if not is_digest(digest):
            raise ValueError(f"not a sha256 digest: {digest!r}")
        location = self.source.location(digest)
        found = self.source.find(registry, repository, digest)
        if found is None:
            return SignatureVerdict(
                status="missing",
                signer=None,
                reason=(
                    f"{repository}@{digest} has no cosign signature yet ({location} does not exist). "
                    f"Sign it with {self.policy.describe()}; tagrelay checks again when the signature "
                    "is pushed (usually a minute or two after the image)."
                ),
                details=(f"{location}: not found",),
            )
        rejections: list[tuple[str, str]] = []  # (origin, why), in the order examined
        for item in found:
            if isinstance(item, Unusable):
                rejections.append((item.origin, item.problem))
                continue
            result = examine(item, digest, self.policy)
            if result.accepted:
                details = (*_rejection_lines(rejections), f"{item.origin}: verified: signed by {result.signer}")
                return SignatureVerdict(status="verified", signer=result.signer, reason=None, details=details)
            rejections.append((item.origin, result.reason))
        first = rejections[0][1] if rejections else "there are no signatures"
        more = f" (and {len(rejections) - 1} more, see details)" if len(rejections) > 1 else ""
        return SignatureVerdict(
            status="invalid",
            signer=None,
            reason=(
                f"{repository}@{digest}: none of the {len(rejections)} signature(s) under {location} is "
                f"acceptable; {first}{more}. Re-sign the digest with {self.policy.describe()}, or correct "
                "signature.key in the configuration."
            ),
            details=_rejection_lines(rejections),
        )


def _rejection_lines(rejections: list[tuple[str, str]]) -> tuple[str, ...]:
    return tuple(f"{origin}: rejected: {why}" for origin, why in rejections)


class NotRequiredVerifier:
    """``signature: none``: no check and no request; the verdict says so, to be recorded."""

    def verify(self, registry: Registry, repository: str, digest: str) -> SignatureVerdict:
        return SignatureVerdict(
            status="not_required",
            signer=NOT_REQUIRED_SIGNER,
            reason=None,
            details=("signature verification is turned off for this app (signature: none)",),
        )


class UnsupportedPolicyVerifier:
    """A configured policy this version cannot check: fail closed, with a reason, and no request."""

    def __init__(self, policy: str) -> None:
        self.policy = policy

    def verify(self, registry: Registry, repository: str, digest: str) -> SignatureVerdict:
        return SignatureVerdict(
            status="invalid",
            signer=None,
            reason=(
                f"{repository}@{digest} was not checked: {self.policy} signature verification is not "
                "supported by this tagrelay version. Use signature.key, or upgrade tagrelay."
            ),
            details=(f"{self.policy} policy: not supported yet",),
        )


def key_policy(key: KeySignature, *, kms_keys: KmsKeys = KMS_KEYS) -> PublicKeyPolicy:
    """PEM and file keys are read now, so that a bad key fails the cold start rather than an event;
    a KMS key is fetched on the first signature it has to check."""
    if key.public_key_pem is not None:
        return PublicKeyPolicy.of(key_from_pem(key.public_key_pem, source="signature.key.public_key_pem"))
    if key.public_key_file is not None:
        return PublicKeyPolicy.of(key_from_file(key.public_key_file))
    if key.kms_key_id is not None:
        kms_key_id = key.kms_key_id
        return PublicKeyPolicy(lambda: kms_keys.get(kms_key_id), label=f"kms:{kms_key_id}")
    raise ValueError("signature.key gives no key")  # the configuration schema rules this out


def verifier_for(app: App, *, kms_keys: KmsKeys = KMS_KEYS) -> SignatureVerifier:
    """The verifier an app's ``signature`` configuration asks for."""
    policy = app.signature
    if policy == "none":
        return NotRequiredVerifier()
    if policy.key is not None:
        return CosignVerifier(LegacyTagSource(), key_policy(policy.key, kms_keys=kms_keys))
    return UnsupportedPolicyVerifier("keyless")
