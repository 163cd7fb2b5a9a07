"""The vocabulary of signature verification, shared by sources, policies and the verifier.

Verification is split in two so that new layouts and new trust models plug in separately:

* a ``SignatureSource`` knows *where* signatures live and yields candidates (cosign's legacy
  ``sha256-<hex>.sig`` tag, and cosign v3 Sigstore bundles stored as OCI 1.1 referrers);
* a ``SignerPolicy`` decides *who* may have signed one candidate (one public key, from PEM or AWS
  KMS; or a keyless Fulcio identity bound to the release's commit).

The verifier accepts a digest as soon as one candidate passes the policy and the claims check.
A keyless policy needs to know which release it is checking (``ReleaseContext``): the commit the tag
names, and the environments whose branch/env fill the identity's placeholders.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from tagrelay.domain.decision import Reason
from tagrelay.domain.facts import (
    EnvironmentContext,
    Examined,
    ReleaseContext,
    SignatureCheck,
    SignatureCheckStatus,
    SignatureStatus,
    SignatureVerdict,
    SignerIdentity,
)
from tagrelay.ports import SignatureVerifier

if TYPE_CHECKING:
    from tagrelay.ports import ImageRegistry

# The verifier's answers are facts of the domain (domain/facts.py); importable from here as well.
__all__ = [
    "Candidate",
    "EnvironmentContext",
    "Examined",
    "PolicyResult",
    "ReleaseContext",
    "SignatureCheck",
    "SignatureCheckStatus",
    "SignatureSource",
    "SignatureStatus",
    "SignatureVerdict",
    "SignatureVerifier",
    "SignedPayload",
    "SignerIdentity",
    "SignerPolicy",
    "Unusable",
]


@dataclass(frozen=True)
class Candidate:
    """One signature to examine, downloaded, with no I/O left to do."""

    origin: str  # where it was found, for the verdict's details ("sha256-….sig layer 1/2 (sha256:…)")
    payload_type: str  # media type of the layer: a simple-signing payload, or a Sigstore bundle
    payload: bytes  # the layer's bytes exactly as downloaded (the signed payload, or the bundle JSON)
    payload_digest: str  # the digest the manifest announced for them
    signature: bytes  # raw signature bytes (ASN.1 DER ECDSA); empty for a bundle, which carries its own
    annotations: Mapping[str, str] = field(default_factory=dict)  # certificate, chain, Rekor bundle, ...


@dataclass(frozen=True)
class Unusable:
    """Something found where a signature should be that cannot be examined at all."""

    origin: str
    problem: str
    code: Reason | None = None  # RESPONSE_TOO_LARGE when a read hit its size cap


@dataclass(frozen=True)
class SignedPayload:
    """What a policy verified a signature over, when it is not ``Candidate.payload`` itself (the
    in-toto statement inside a bundle's DSSE envelope); the verifier checks its claims."""

    payload_type: str
    payload: bytes


@dataclass(frozen=True)
class PolicyResult:
    accepted: bool
    signer: str | None  # who signed, when accepted
    reason: str  # why not, when rejected
    checks: tuple[SignatureCheck, ...] = ()  # the rules applied, in order, up to the first that failed
    identity: SignerIdentity | None = None
    signed: SignedPayload | None = None
    code: Reason | None = None  # a rejection's stable code, when it has one (signature_commit_unbound)
    commit: str | None = None  # the commit the signature is bound to, once accepted


class SignatureSource(Protocol):
    """Where signatures of a digest are stored, and how to read them."""

    def location(self, digest: str) -> str:
        """Where this source looks, for messages ("tag sha256-….sig")."""
        ...

    def find(self, registry: ImageRegistry, repository: str, digest: str) -> Iterator[Candidate | Unusable] | None:
        """None when there is no signature artifact at all; else the candidates, downloaded one at a
        time as the iterator advances (so that stopping at the first good one saves requests)."""
        ...


class SignerPolicy(Protocol):
    """Who may have signed: accepts or rejects one candidate. Claims are checked by the verifier."""

    def describe(self) -> str:
        """The expected signer, for messages (no I/O: a KMS key may not be loaded yet)."""
        ...

    def check(self, candidate: Candidate, release: ReleaseContext | None) -> PolicyResult:
        """``release`` is None when the caller has no release (verifying a bare digest)."""
        ...

    def check_binding(self, payload_type: str, payload: bytes, release: ReleaseContext | None) -> PolicyResult:
        """After the claims: is the signed payload bound to the release's commit? (A keyless policy binds
        through the certificate in ``check`` and accepts here; a key policy reads the annotation.)"""
        ...
