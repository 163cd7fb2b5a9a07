"""cosign v3 signatures: a Sigstore bundle (DSSE envelope of an in-toto statement), checked with
sigstore-python's ``Verifier.verify_dsse`` (sigstore-python 4.x, sigstore/verify/verifier.py).

sigstore-python checks the certificate chain to a Fulcio CA at the log's integrated time, the embedded
SCT, the Rekor inclusion proof, checkpoint and SET, the DSSE signature and the log entry's consistency
with the envelope. The identity policy it calls back is tagrelay's own (identity.py), so bundles and
legacy signatures answer to the same rules; the statement's claims (predicate type, subject digest)
are then checked by the verifier like any payload (checks.py).

sigstore is imported here only, on the first bundle: importing it costs most of a second, which a
promoter whose apps use keys, or images signed in the legacy layout, should not pay at cold start.
"""

from __future__ import annotations

import functools
import json
from typing import TYPE_CHECKING, Any

from tagrelay.adapters.signatures.fulcio import certificate_claims
from tagrelay.adapters.signatures.identity import IdentityRule, check_commit, check_identity, signer_identity
from tagrelay.adapters.signatures.model import (
    Candidate,
    PolicyResult,
    ReleaseContext,
    SignatureCheck,
    SignedPayload,
    SignerIdentity,
)
from tagrelay.adapters.signatures.trust import TrustedRoot

if TYPE_CHECKING:
    from cryptography import x509
    from sigstore.verify import Verifier

BUNDLE_MEDIA_TYPES = frozenset(
    {
        "application/vnd.dev.sigstore.bundle.v0.3+json",
        "application/vnd.dev.sigstore.bundle+json;version=0.3",
    }
)
IN_TOTO_PAYLOAD_TYPE = "application/vnd.in-toto+json"
# What sigstore-python establishes before it hands back the payload (verifier.py, steps 0-8).
_SIGSTORE_CHECKS = (
    "certificate chain to a Fulcio CA at the integrated time, code signing; embedded SCT; Rekor inclusion "
    "proof, signed checkpoint and SET; DSSE signature; log entry consistent with the envelope"
)


class _IdentityPolicy:
    """A sigstore ``VerificationPolicy``: tagrelay's identity rules, remembering what it checked."""

    def __init__(self, rule: IdentityRule, release: ReleaseContext | None) -> None:
        self.rule = rule
        self.release = release
        self.checks: list[SignatureCheck] = []
        self.identity: SignerIdentity | None = None

    @property
    def failed(self) -> SignatureCheck | None:
        return next((check for check in self.checks if check.status == "fail"), None)

    def verify(self, cert: x509.Certificate) -> None:
        from sigstore.errors import VerificationError

        claims = certificate_claims(cert)
        if isinstance(claims, str):
            self.checks.append(SignatureCheck("identity", "fail", claims))
            raise VerificationError(claims)
        self.identity = signer_identity(claims)
        environments = self.release.environments if self.release is not None else ()
        self.checks.extend(check_identity(claims, self.rule, environments))
        if self.failed is None:
            self.checks.append(check_commit(claims, self.release))
        failed = self.failed
        if failed is not None:
            raise VerificationError(failed.detail)


def check_bundle(  # noqa: PLR0911 - one guard per step of the bundle verification, in sigstore's order
    candidate: Candidate, rule: IdentityRule, trust: TrustedRoot, release: ReleaseContext | None
) -> PolicyResult:
    """Verify one bundle; accepted with the in-toto statement as the payload whose claims count."""
    from sigstore.errors import Error as SigstoreError
    from sigstore.models import Bundle

    checks: list[SignatureCheck] = []

    def reject(name: str, why: str) -> PolicyResult:
        checks.append(SignatureCheck(name, "fail", why))
        return PolicyResult(accepted=False, signer=None, reason=why, checks=tuple(checks))

    document = _bundle_document(candidate.payload)
    if isinstance(document, str):
        return reject("bundle", document)
    try:
        bundle = Bundle.from_json(json.dumps(document))
    except SigstoreError as exc:
        return reject("bundle", f"not a usable Sigstore bundle: {_first_line(exc)}")
    checks.append(SignatureCheck("bundle", "pass", f"{document.get('mediaType')}, DSSE envelope, one Rekor entry"))
    policy = _IdentityPolicy(rule, release)
    try:
        payload_type, payload = _verifier(str(trust.path)).verify_dsse(bundle, policy)
    except SigstoreError as exc:
        failed = policy.failed
        if failed is not None:
            checks.extend(policy.checks)
            return PolicyResult(accepted=False, signer=None, reason=failed.detail, checks=tuple(checks))
        return reject("sigstore", f"sigstore-python refused the bundle: {_first_line(exc)}")
    except Exception as exc:  # a hostile bundle must be a rejection, never a crash of the promoter
        return reject("sigstore", f"sigstore-python could not verify the bundle ({type(exc).__name__}: {exc})")
    checks.append(SignatureCheck("sigstore", "pass", _SIGSTORE_CHECKS))
    checks.extend(policy.checks)
    if payload_type != IN_TOTO_PAYLOAD_TYPE:
        return reject("statement", f"the DSSE payload type is {payload_type!r}, not {IN_TOTO_PAYLOAD_TYPE!r}")
    identity = policy.identity
    return PolicyResult(
        accepted=True,
        signer=identity.describe() if identity else None,
        reason="",
        checks=tuple(checks),
        identity=identity,
        signed=SignedPayload(payload_type=payload_type, payload=payload),
    )


def _bundle_document(data: bytes) -> dict[str, Any] | str:
    """The bundle JSON with protobuf's omitted defaults restored.

    Protobuf JSON may leave out fields at their default value; sigstore-python's models require
    ``inclusionProof.logIndex`` and ``hashes``, which are 0 and [] for the first entry of a log (as
    sigstore-js writes them for a one-entry log). Restoring them changes nothing that is signed.
    """
    try:
        document = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return "the bundle is not JSON"
    if not isinstance(document, dict):
        return "the bundle is not a JSON object"
    if document.get("mediaType") not in BUNDLE_MEDIA_TYPES:
        return f"the bundle's media type {document.get('mediaType')!r} is not a Sigstore bundle v0.3"
    if not isinstance(document.get("dsseEnvelope"), dict):
        return "the bundle has no DSSE envelope (cosign v3 signs images with an in-toto statement)"
    material = document.get("verificationMaterial")
    entries = material.get("tlogEntries") if isinstance(material, dict) else None
    for entry in entries if isinstance(entries, list) else []:
        proof = entry.get("inclusionProof") if isinstance(entry, dict) else None
        if isinstance(proof, dict):
            proof.setdefault("logIndex", "0")
            proof.setdefault("hashes", [])
    return document


@functools.cache
def _verifier(trusted_root_path: str) -> Verifier:
    """One sigstore-python Verifier per trusted root file and process (building it reads the file)."""
    from sigstore.models import TrustedRoot as SigstoreTrustedRoot
    from sigstore.verify import Verifier

    return Verifier(trusted_root=SigstoreTrustedRoot.from_file(trusted_root_path))


def _first_line(exc: Exception) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]
