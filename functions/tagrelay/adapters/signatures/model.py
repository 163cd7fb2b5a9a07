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

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, Protocol

if TYPE_CHECKING:
    from tagrelay.adapters.registry import Registry
    from tagrelay.config import App

VerdictStatus = Literal["verified", "missing", "invalid", "not_required"]
CheckStatus = Literal["pass", "fail", "skip"]


@dataclass(frozen=True)
class EnvironmentContext:
    """An environment a release is about to be promoted to: fills ``{env}`` and ``{branch}``."""

    name: str
    branch: str


@dataclass(frozen=True)
class ReleaseContext:
    """What a signature must be bound to: the release tag's short SHA, and its target environments.

    ``sha`` None means the digest was named without a release tag (``tagrelay verify IMAGE@sha256:…``):
    a keyless signature then fails closed, because its commit cannot be bound to anything.
    """

    sha: str | None
    environments: tuple[EnvironmentContext, ...] = ()

    @classmethod
    def for_release(cls, app: App, sha: str | None, envs: Iterable[str]) -> ReleaseContext:
        """The context of a release of ``app`` bound for ``envs`` (names of the app's environments)."""
        return cls(
            sha=sha,
            environments=tuple(EnvironmentContext(name=env, branch=app.environments[env].branch) for env in envs),
        )


@dataclass(frozen=True)
class Check:
    """One rule applied to one signature, for ``tagrelay verify`` and the verdict's details."""

    name: str
    status: CheckStatus
    detail: str


@dataclass(frozen=True)
class SignerIdentity:
    """Who signed, as a Fulcio certificate says it: what the ledger records for a keyless signature."""

    subject: str
    issuer: str
    repository: str | None = None
    ref: str | None = None
    commit: str | None = None
    trigger: str | None = None
    workflow: str | None = None

    def describe(self) -> str:
        """``keyless <SAN> (issuer …, repository …, ref …, commit …)``: one line, safe to log and record."""
        facts = [f"issuer {self.issuer}"]
        facts += [f"{name} {value}" for name, value in (("repository", self.repository), ("ref", self.ref)) if value]
        facts.append(f"commit {self.commit}" if self.commit else "commit unknown")
        return f"keyless {self.subject} ({', '.join(facts)})"


@dataclass(frozen=True)
class Examined:
    """One candidate signature and what became of it, check by check."""

    origin: str
    accepted: bool
    reason: str
    checks: tuple[Check, ...] = ()


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
    identity: SignerIdentity | None = None  # the accepted keyless identity (None for keys)
    examined: tuple[Examined, ...] = ()  # every candidate looked at, in order, with its checks
    # The commit the accepted signature is bound to (certificate, or the key signature's annotation);
    # the promoter checks it against the commit the tag resolves to.
    commit: str | None = None
    # Why an invalid verdict is invalid, when it is one fixable thing: "signature_commit_unbound".
    code: str | None = None

    @property
    def acceptable(self) -> bool:
        """Whether this digest may be promoted as far as signatures are concerned."""
        return self.status in ("verified", "not_required")


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
    code: str | None = None  # "response_too_large" when a read hit its size cap


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
    checks: tuple[Check, ...] = ()  # the rules applied, in order, up to the first that failed
    identity: SignerIdentity | None = None
    signed: SignedPayload | None = None
    code: str | None = None  # a rejection's stable code, when it has one (signature_commit_unbound)
    commit: str | None = None  # the commit the signature is bound to, once accepted


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

    def check(self, candidate: Candidate, release: ReleaseContext | None) -> PolicyResult:
        """``release`` is None when the caller has no release (verifying a bare digest)."""
        ...

    def check_binding(self, payload_type: str, payload: bytes, release: ReleaseContext | None) -> PolicyResult:
        """After the claims: is the signed payload bound to the release's commit? (A keyless policy binds
        through the certificate in ``check`` and accepts here; a key policy reads the annotation.)"""
        ...


class SignatureVerifier(Protocol):
    """What the promotion service calls, once per image digest."""

    def verify(
        self, registry: Registry, repository: str, digest: str, *, release: ReleaseContext | None = None
    ) -> SignatureVerdict: ...
