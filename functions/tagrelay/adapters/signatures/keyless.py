"""The keyless signer policy: a Fulcio certificate for the configured identity, logged in Rekor.

``KeylessPolicy`` checks both layouts a keyless ``cosign sign`` produces:

* cosign's legacy layout (v1/v2, cosign's specs/SIGNATURE_SPEC.md), with ``cryptography``: the certificate and
  chain from the layer annotations, the signature over the payload, the Rekor SET and the entry's
  consistency with this signature, the certificate's validity at the integrated time, the chain to a
  Fulcio CA of the trusted root with code signing, the embedded SCT (unless ``verify_sct: false``);
* cosign v3 bundles (bundles.py), with sigstore-python.

Then, for both, the identity policy and the commit binding (identity.py). Checks run in that order
and stop at the first failure, whose sentence becomes the rejection's reason.
"""

from __future__ import annotations

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from tagrelay.adapters.signatures import certificates, rekor
from tagrelay.adapters.signatures.checks import check_ecdsa_p256_signature, p256_problem
from tagrelay.adapters.signatures.fulcio import certificate_claims
from tagrelay.adapters.signatures.identity import IdentityRule, check_commit, check_identity, signer_identity
from tagrelay.adapters.signatures.model import Candidate, PolicyResult, ReleaseContext, SignatureCheck
from tagrelay.adapters.signatures.trust import TrustedRoot

CERTIFICATE_ANNOTATION = "dev.sigstore.cosign/certificate"
CHAIN_ANNOTATION = "dev.sigstore.cosign/chain"


class KeylessPolicy:
    """Accepts a signature whose Fulcio certificate names the configured identity and the release's commit."""

    def __init__(self, rule: IdentityRule, trust: TrustedRoot, *, verify_sct: bool = True) -> None:
        self.rule = rule
        self.trust = trust
        self.verify_sct = verify_sct

    def describe(self) -> str:
        return self.rule.describe()

    def check(self, candidate: Candidate, release: ReleaseContext | None) -> PolicyResult:
        from tagrelay.adapters.signatures.bundles import BUNDLE_MEDIA_TYPES

        if candidate.payload_type in BUNDLE_MEDIA_TYPES:
            from tagrelay.adapters.signatures.bundles import check_bundle

            return check_bundle(candidate, self.rule, self.trust, release)
        return self._check_legacy(candidate, release)

    def check_binding(self, payload_type: str, payload: bytes, release: ReleaseContext | None) -> PolicyResult:
        # The certificate's commit extension was bound in check(); nothing to read from the payload.
        return PolicyResult(accepted=True, signer=None, reason="")

    def _check_legacy(self, candidate: Candidate, release: ReleaseContext | None) -> PolicyResult:  # noqa: PLR0911, PLR0912 - the five steps of cosign's keyless verification in order, each a guard; split, the order would be lost
        checks: list[SignatureCheck] = []

        def passed(name: str, detail: str) -> None:
            checks.append(SignatureCheck(name, "pass", detail))

        def reject(name: str, why: str) -> PolicyResult:
            checks.append(SignatureCheck(name, "fail", why))
            return PolicyResult(accepted=False, signer=None, reason=why, checks=tuple(checks))

        # 1. The certificate and chain the signer attached.
        pem = candidate.annotations.get(CERTIFICATE_ANNOTATION)
        if not pem:
            return reject(
                "certificate",
                f"the signature has no certificate ({CERTIFICATE_ANNOTATION}): it is not a keyless signature",
            )
        try:
            leaf = x509.load_pem_x509_certificate(pem.encode())
        except ValueError:
            return reject("certificate", f"the {CERTIFICATE_ANNOTATION} annotation is not a PEM certificate")
        chain = certificates.load_pem_chain(candidate.annotations.get(CHAIN_ANNOTATION))
        if isinstance(chain, str):
            return reject("certificate", chain)
        public_key = leaf.public_key()
        problem = p256_problem(public_key)
        if problem is not None or not isinstance(public_key, ec.EllipticCurvePublicKey):
            return reject("certificate", f"the certificate's key cannot have made a cosign signature: {problem}")
        passed("certificate", f"serial {leaf.serial_number:x}, {len(chain)} chain certificate(s) attached")

        # 2. The signature over the payload bytes, with the certificate's key.
        problem = check_ecdsa_p256_signature(public_key, candidate.signature, candidate.payload)
        if problem is not None:
            return reject("signature", f"{problem} (checked with the certificate's key)")
        passed("signature", "verifies over the payload with the certificate's key")

        # 3. Rekor: the SET makes the integrated time trustworthy; the entry must be this signature.
        bundle = rekor.parse_rekor_bundle(candidate.annotations.get(rekor.BUNDLE_ANNOTATION))
        if isinstance(bundle, str):
            return reject("transparency log", bundle)
        problem = rekor.check_signed_entry_timestamp(bundle, self.trust)
        if problem is not None:
            return reject("transparency log", problem)
        moment = bundle.integrated_at
        passed("transparency log", f"SET verifies: entry {bundle.log_index}, integrated at {moment.isoformat()}")
        problem = rekor.check_entry_matches(
            bundle, signature=candidate.signature, certificate=leaf, payload=candidate.payload
        )
        if problem is not None:
            return reject("log entry", problem)
        passed("log entry", "records this signature, this certificate and the payload's hash")

        # 4. The certificate at the integrated time: valid, chained to a trusted Fulcio CA, logged in CT.
        problem = certificates.check_validity_at(leaf, moment)
        if problem is not None:
            return reject("validity", problem)
        passed("validity", f"valid at the integrated time (until {leaf.not_valid_after_utc.isoformat()})")
        verified = certificates.verify_chain(leaf, chain, self.trust, moment)
        if isinstance(verified, str):
            return reject("chain", verified)
        passed("chain", f"to {verified[-1].subject.rfc4514_string()} of {self.trust.source}, code signing")
        if self.verify_sct:
            problem = certificates.check_embedded_sct(leaf, verified[1], self.trust)
            if problem is not None:
                return reject("sct", problem)
            passed("sct", "embedded SCT verifies with a CT log of the trusted root")
        else:
            checks.append(SignatureCheck("sct", "skip", "not checked (signature.keyless.verify_sct: false)"))

        # 5. Who signed, and for which commit.
        claims = certificate_claims(leaf)
        if isinstance(claims, str):
            return reject("identity", claims)
        environments = release.environments if release is not None else ()
        checks.extend(check_identity(claims, self.rule, environments))
        if checks[-1].status != "fail":
            checks.append(check_commit(claims, release))
        if checks[-1].status == "fail":
            return PolicyResult(accepted=False, signer=None, reason=checks[-1].detail, checks=tuple(checks))
        identity = signer_identity(claims)
        return PolicyResult(
            accepted=True, signer=identity.describe(), reason="", checks=tuple(checks), identity=identity
        )
