"""Signature verifiers: a source and a policy combined into a verdict per image digest."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from tagrelay.adapters.signatures.checks import check_claims, check_payload_digest
from tagrelay.adapters.signatures.identity import IdentityRule
from tagrelay.adapters.signatures.keyless import KeylessPolicy
from tagrelay.adapters.signatures.keys import KMS_KEYS, KmsKeys, key_from_file, key_from_pem
from tagrelay.adapters.signatures.model import (
    Candidate,
    Examined,
    PolicyResult,
    ReleaseContext,
    SignatureCheck,
    SignatureSource,
    SignatureVerdict,
    SignatureVerifier,
    SignerPolicy,
    Unusable,
)
from tagrelay.adapters.signatures.policies import PublicKeyPolicy
from tagrelay.adapters.signatures.sources import AnySource, LegacyTagSource, ReferrersSource
from tagrelay.adapters.signatures.trust import trusted_root_for
from tagrelay.domain.decision import Reason
from tagrelay.domain.tags import is_digest

if TYPE_CHECKING:
    from tagrelay.config import App, KeylessSignature, KeySignature, LimitsConfig
    from tagrelay.ports import ImageRegistry

NOT_REQUIRED_SIGNER = "none (signature: none)"


def examine(
    candidate: Candidate, digest: str, policy: SignerPolicy, release: ReleaseContext | None = None
) -> PolicyResult:
    """One candidate against one policy: the payload is the announced blob, the policy accepts the
    signer, and the signed payload claims this digest. Checked in cosign's order, so the reason given
    is the first rule that fails; ``checks`` lists every rule applied up to it."""
    problem = check_payload_digest(candidate.payload, candidate.payload_digest)
    if problem is not None:
        return PolicyResult(
            accepted=False, signer=None, reason=problem, checks=(SignatureCheck("download", "fail", problem),)
        )
    downloaded = SignatureCheck("download", "pass", f"the layer hashes to its digest {candidate.payload_digest}")
    result = policy.check(candidate, release)
    checks = (downloaded, *result.checks)
    if not result.accepted:
        return replace(result, checks=checks)
    signed_type = result.signed.payload_type if result.signed else candidate.payload_type
    signed = result.signed.payload if result.signed else candidate.payload
    problem = check_claims(signed_type, signed, digest)
    if problem is not None:
        why = f"validly signed, but {problem}"
        return PolicyResult(
            accepted=False, signer=None, reason=why, checks=(*checks, SignatureCheck("claims", "fail", problem))
        )
    checks = (*checks, SignatureCheck("claims", "pass", f"the signed payload names {digest}"))
    binding = policy.check_binding(signed_type, signed, release)
    checks = (*checks, *binding.checks)
    if not binding.accepted:
        return replace(binding, reason=f"validly signed, but {binding.reason}", checks=checks)
    commit = result.identity.commit if result.identity else binding.commit
    return replace(result, checks=checks, commit=commit)


class CosignVerifier:
    """Verified when any one signature from ``source`` passes ``policy`` and names the digest."""

    def __init__(self, source: SignatureSource, policy: SignerPolicy, *, config_field: str = "signature.key") -> None:
        self.source = source
        self.policy = policy
        self.config_field = config_field

    def verify(
        self, registry: ImageRegistry, repository: str, digest: str, *, release: ReleaseContext | None = None
    ) -> SignatureVerdict:
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
        examined: list[Examined] = []
        codes: set[Reason | None] = set()
        for item in found:
            if isinstance(item, Unusable):
                rejections.append((item.origin, item.problem))
                codes.add(item.code)
                examined.append(
                    Examined(item.origin, False, item.problem, (SignatureCheck("layout", "fail", item.problem),))
                )
                continue
            result = examine(item, digest, self.policy, release)
            examined.append(Examined(item.origin, result.accepted, result.reason, result.checks))
            if result.accepted:
                details = (*_rejection_lines(rejections), f"{item.origin}: verified: signed by {result.signer}")
                return SignatureVerdict(
                    status="verified",
                    signer=result.signer,
                    reason=None,
                    details=details,
                    identity=result.identity,
                    examined=tuple(examined),
                    commit=result.commit,
                )
            rejections.append((item.origin, result.reason))
            codes.add(result.code)
        first = rejections[0][1] if rejections else "there are no signatures"
        more = f" (and {len(rejections) - 1} more, see details)" if len(rejections) > 1 else ""
        return SignatureVerdict(
            status="invalid",
            signer=None,
            reason=(
                f"{repository}@{digest}: none of the {len(rejections)} signature(s) under {location} is "
                f"acceptable; {first}{more}. Re-sign the digest with {self.policy.describe()}, or correct "
                f"{self.config_field} in the configuration."
            ),
            details=_rejection_lines(rejections),
            examined=tuple(examined),
            code=_verdict_code(codes),
        )


def _verdict_code(codes: set[Reason | None]) -> Reason | None:
    # A signature by the right key that only lacks the commit is one fixable thing: say so. An answer
    # over its size cap is another (response_too_large), unless something else was wrong too.
    if Reason.SIGNATURE_COMMIT_UNBOUND in codes:
        return Reason.SIGNATURE_COMMIT_UNBOUND
    if codes == {Reason.RESPONSE_TOO_LARGE}:
        return Reason.RESPONSE_TOO_LARGE
    return None


def _rejection_lines(rejections: list[tuple[str, str]]) -> tuple[str, ...]:
    return tuple(f"{origin}: rejected: {why}" for origin, why in rejections)


class NotRequiredVerifier:
    """``signature: none``: no check and no request; the verdict says so, to be recorded."""

    def verify(
        self, registry: ImageRegistry, repository: str, digest: str, *, release: ReleaseContext | None = None
    ) -> SignatureVerdict:
        return SignatureVerdict(
            status="not_required",
            signer=NOT_REQUIRED_SIGNER,
            reason=None,
            details=("signature verification is turned off for this app (signature: none)",),
        )


def key_policy(key: KeySignature, *, kms_keys: KmsKeys = KMS_KEYS) -> PublicKeyPolicy:
    """PEM and file keys are read now, so that a bad key fails the cold start rather than an event;
    a KMS key is fetched on the first signature it has to check."""
    annotation = key.commit_annotation
    if key.public_key_pem is not None:
        pem_key = key_from_pem(key.public_key_pem, source="signature.key.public_key_pem")
        return PublicKeyPolicy.of(pem_key, commit_annotation=annotation)
    if key.public_key_file is not None:
        return PublicKeyPolicy.of(key_from_file(key.public_key_file), commit_annotation=annotation)
    if key.kms_key_id is not None:
        kms_key_id = key.kms_key_id
        return PublicKeyPolicy(
            lambda: kms_keys.get(kms_key_id), label=f"kms:{kms_key_id}", commit_annotation=annotation
        )
    raise ValueError("signature.key gives no key")  # the configuration schema rules this out


def keyless_policy(keyless: KeylessSignature) -> KeylessPolicy:
    """The trusted root is read now (cached per file), so that a bad file fails the cold start."""
    rule = IdentityRule(
        issuer=keyless.issuer,
        identity=keyless.identity,
        identity_regexp=keyless.identity_regexp,
        repository=keyless.repository,
        ref=keyless.ref,
        trigger=keyless.trigger,
        workflow=keyless.workflow,
    )
    return KeylessPolicy(rule, trusted_root_for(keyless.trusted_root), verify_sct=keyless.verify_sct)


def verifier_for(app: App, *, kms_keys: KmsKeys = KMS_KEYS, limits: LimitsConfig | None = None) -> SignatureVerifier:
    """The verifier an app's ``signature`` configuration asks for, within ``limits`` (the defaults if None)."""
    from tagrelay.config import LimitsConfig

    limits = limits or LimitsConfig()
    policy = app.signature
    if policy == "none":
        return NotRequiredVerifier()
    legacy = LegacyTagSource(
        max_layers=limits.signature_layers_max, max_payload_bytes=limits.signature_payload_max_bytes
    )
    if policy.key is not None:
        return CosignVerifier(legacy, key_policy(policy.key, kms_keys=kms_keys))
    if policy.keyless is not None:
        # The legacy tag first: it is what cosign v1/v2 write (the seed), and a verified legacy
        # signature then costs no referrers request. cosign v3 bundles are found next.
        referrers = ReferrersSource(max_bundles=limits.referrers_max, max_bundle_bytes=limits.bundle_max_bytes)
        source = AnySource([legacy, referrers])
        return CosignVerifier(source, keyless_policy(policy.keyless), config_field="signature.keyless")
    raise ValueError("signature gives no policy")  # the configuration schema rules this out
