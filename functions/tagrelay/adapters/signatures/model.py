"""The vocabulary of signature verification, shared by sources, policies and the verifier.

Verification is split in two so that new layouts and new trust models plug in separately:

* a ``SignatureSource`` knows *where* signatures live and yields candidates (today cosign's legacy
  ``sha256-<hex>.sig`` tag; later OCI 1.1 referrers and cosign v3 bundles);
* a ``SignerPolicy`` decides *who* may have signed one candidate (today one public key, from PEM or
  AWS KMS; later a keyless Fulcio identity).

The verifier accepts a digest as soon as one candidate passes the policy and the claims check.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, Protocol

if TYPE_CHECKING:
    from tagrelay.adapters.registry import Registry

VerdictStatus = Literal["verified", "missing", "invalid", "not_required"]


@dataclass(frozen=True)
class SignatureVerdict:
    """The outcome for one image digest, ready to record on a decision.

    ``missing``: no signature artifact yet (cosign pushes it a minute or two after the image; the
    signature's own push event re-triggers the check). ``invalid``: signatures exist but none is
    acceptable. ``not_required``: the app's configuration says ``signature: none``.
    """

    status: VerdictStatus
    signer: str | None
    reason: str | None
    details: tuple[str, ...] = ()

    @property
    def acceptable(self) -> bool:
        """Whether this digest may be promoted as far as signatures are concerned."""
        return self.status in ("verified", "not_required")


@dataclass(frozen=True)
class Candidate:
    """One signature to examine, downloaded, with no I/O left to do."""

    origin: str  # where it was found, for the verdict's details ("sha256-….sig layer 1/2 (sha256:…)")
    payload_type: str  # media type of the signed payload; selects the claims check
    payload: bytes  # the signed bytes exactly as downloaded
    payload_digest: str  # the digest the manifest announced for them
    signature: bytes  # raw signature bytes (ASN.1 DER ECDSA for cosign key pairs)
    annotations: Mapping[str, str] = field(default_factory=dict)  # certificate, chain, Rekor bundle, ...


@dataclass(frozen=True)
class Unusable:
    """Something found where a signature should be that cannot be examined at all."""

    origin: str
    problem: str


@dataclass(frozen=True)
class PolicyResult:
    accepted: bool
    signer: str | None  # who signed, when accepted
    reason: str  # why not, when rejected


class SignatureSource(Protocol):
    """Where signatures of a digest are stored, and how to read them."""

    def location(self, digest: str) -> str:
        """Where this source looks, for messages ("tag sha256-….sig")."""
        ...

    def find(self, registry: Registry, repository: str, digest: str) -> Iterator[Candidate | Unusable] | None:
        """None when there is no signature artifact at all; else the candidates, downloaded one at a
        time as the iterator advances (so that stopping at the first good one saves requests)."""
        ...


class SignerPolicy(Protocol):
    """Who may have signed: accepts or rejects one candidate. Claims are checked by the verifier."""

    def describe(self) -> str:
        """The expected signer, for messages (no I/O: a KMS key may not be loaded yet)."""
        ...

    def check(self, candidate: Candidate) -> PolicyResult: ...


class SignatureVerifier(Protocol):
    """What the promotion service calls, once per image digest."""

    def verify(self, registry: Registry, repository: str, digest: str) -> SignatureVerdict: ...
