"""Signatures made by an independent Sigstore implementation: sigstore-js with @sigstore/mock.

tagrelay's own test Sigstore (sigstore_testing.py) and its verifier could share a misreading of the
formats; a signature made by sigstore-js, with certificates, SCTs, SETs and Rekor bodies made by the
Sigstore project's own mock services, cannot. ``sign_with_sigstore_js`` runs
``devstack/interop/sigstore_js_sign.cjs`` with node (packages from package-lock.json, installed by
``npm ci`` in scripts/bootstrap) and returns what cosign's legacy layout stores, plus a trusted root
for the mock services. The mocks intercept HTTP inside the node process: no network is used.
"""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from devstack.sigstore_testing import (
    BUNDLE_ANNOTATION,
    CERTIFICATE_ANNOTATION,
    CHAIN_ANNOTATION,
    TRUSTED_ROOT_MEDIA_TYPE,
    GitHubIdentity,
)

REPO_ROOT = Path(__file__).resolve().parent.parent
SCRIPT = Path(__file__).resolve().parent / "interop" / "sigstore_js_sign.cjs"


class SigstoreJsUnavailable(RuntimeError):
    """node or the npm packages are missing (run scripts/bootstrap, which runs npm ci)."""


@dataclass(frozen=True)
class SigstoreJsSignature:
    payload: bytes
    bundle: dict[str, Any]  # sigstore-js's message-signature bundle, as it wrote it
    root_der: bytes
    ctlog_key_der: bytes
    rekor_key_der: bytes

    @property
    def signature(self) -> bytes:
        return base64.b64decode(self.bundle["messageSignature"]["signature"])

    @property
    def certificate(self) -> x509.Certificate:
        material = self.bundle["verificationMaterial"]
        raw = (
            material["certificate"]
            if "certificate" in material
            else material["x509CertificateChain"]["certificates"][0]
        )
        return x509.load_der_x509_certificate(base64.b64decode(raw["rawBytes"]))

    def cosign_annotations(self) -> dict[str, str]:
        """The bundle's content as cosign's legacy layout annotations (cosign's specs/SIGNATURE_SPEC.md and pkg/cosign/bundle/rekor.go)."""
        entry = self.bundle["verificationMaterial"]["tlogEntries"][0]
        rekor_bundle = {
            "SignedEntryTimestamp": entry["inclusionPromise"]["signedEntryTimestamp"],
            "Payload": {
                "body": entry["canonicalizedBody"],
                "integratedTime": int(entry["integratedTime"]),
                "logIndex": int(entry["logIndex"]),
                "logID": base64.b64decode(entry["logId"]["keyId"]).hex(),
            },
        }
        root = x509.load_der_x509_certificate(self.root_der)
        return {
            CERTIFICATE_ANNOTATION: self.certificate.public_bytes(serialization.Encoding.PEM).decode(),
            CHAIN_ANNOTATION: root.public_bytes(serialization.Encoding.PEM).decode(),
            BUNDLE_ANNOTATION: json.dumps(rekor_bundle, separators=(",", ":")),
        }

    def trusted_root(self) -> dict[str, Any]:
        """A trusted_root.json for the mock Fulcio, CT log and Rekor of this run."""
        start = (datetime.now(UTC) - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")

        def log(url: str, der: bytes) -> dict[str, Any]:
            return {
                "baseUrl": url,
                "hashAlgorithm": "SHA2_256",
                "publicKey": {
                    "rawBytes": base64.b64encode(der).decode(),
                    "keyDetails": "PKIX_ECDSA_P256_SHA_256",
                    "validFor": {"start": start},
                },
                "logId": {"keyId": base64.b64encode(hashlib.sha256(der).digest()).decode()},
            }

        return {
            "mediaType": TRUSTED_ROOT_MEDIA_TYPE,
            "tlogs": [log("https://rekor.sigstore-js.test", self.rekor_key_der)],
            "certificateAuthorities": [
                {
                    "subject": {"organization": "sigstore.mock", "commonName": "sigstore"},
                    "uri": "https://fulcio.sigstore-js.test",
                    "certChain": {"certificates": [{"rawBytes": base64.b64encode(self.root_der).decode()}]},
                    "validFor": {"start": start},
                }
            ],
            "ctlogs": [log("https://ctfe.sigstore-js.test", self.ctlog_key_der)],
            "timestampAuthorities": [],
        }


def github_claims(identity: GitHubIdentity) -> dict[str, str]:
    """The GitHub Actions OIDC token claims Fulcio turns into ``identity``'s certificate."""
    return {
        "iss": identity.issuer,
        "sub": identity.subject,  # the mock puts `sub` in the SAN; real Fulcio uses job_workflow_ref
        "sha": identity.sha,
        "repository": identity.repository,
        "ref": identity.ref,
        "event_name": identity.trigger,
        "workflow": identity.workflow_name,
        "job_workflow_ref": f"{identity.repository}/{identity.workflow_path}@{identity.ref}",
    }


def sign_with_sigstore_js(payload: bytes, identity: GitHubIdentity, *, timeout: float = 60) -> SigstoreJsSignature:
    node = shutil.which("node")
    if node is None or not (REPO_ROOT / "node_modules" / "@sigstore" / "mock").is_dir():
        raise SigstoreJsUnavailable("node and the npm packages are needed: run scripts/bootstrap (npm ci)")
    request = {"claims": github_claims(identity), "payload": base64.b64encode(payload).decode()}
    done = subprocess.run(
        [node, str(SCRIPT)],
        input=json.dumps(request).encode(),
        capture_output=True,
        cwd=REPO_ROOT,
        timeout=timeout,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"sigstore-js failed: {done.stderr.decode(errors='replace')[-2000:]}")
    answer = json.loads(done.stdout)
    return SigstoreJsSignature(
        payload=payload,
        bundle=answer["bundle"],
        root_der=base64.b64decode(answer["root"]),
        ctlog_key_der=base64.b64decode(answer["ctlog"]),
        rekor_key_der=base64.b64decode(answer["rekor"]),
    )
