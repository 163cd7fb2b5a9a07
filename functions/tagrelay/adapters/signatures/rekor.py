"""Rekor evidence of a legacy keyless signature: the ``dev.sigstore.cosign/bundle`` annotation.

Pure checks (cosign's pkg/cosign/bundle/rekor.go; Rekor's API): the signed entry timestamp (SET) must verify with a
Rekor key of the trusted root, which makes the entry's integrated time trustworthy; and the logged
entry must be *this* signature: same signature bytes, same certificate, same payload hash (cosign's
``VerifyBundle``/``compareSigs``/``comparePublicKey``/``bundleHash``, against CVE-2022-36056-style
swaps of a valid entry for another signature).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from tagrelay.adapters.signatures.trust import LogKey, TrustedRoot

BUNDLE_ANNOTATION = "dev.sigstore.cosign/bundle"
# Entry kinds cosign writes for an image signature: hashedrekord today, rekord in older entries.
_SUPPORTED_KINDS = {("hashedrekord", "0.0.1"), ("rekord", "0.0.1")}


@dataclass(frozen=True)
class RekorBundle:
    """cosign's RekorBundle, parsed; ``body`` is the decoded entry, ``raw_body`` its base64 as signed."""

    signed_entry_timestamp: bytes
    raw_body: str
    body: dict[str, Any]
    integrated_time: int
    log_index: int
    log_id: str  # hex

    @property
    def integrated_at(self) -> datetime:
        return datetime.fromtimestamp(self.integrated_time, tz=UTC)


def parse_rekor_bundle(annotation: str | None) -> RekorBundle | str:
    """The annotation's content, or why it is unusable."""
    if not annotation:
        return f"there is no Rekor bundle ({BUNDLE_ANNOTATION} annotation), so no signed entry timestamp"
    try:
        document = json.loads(annotation)
        payload = document["Payload"]
        raw_body = payload["body"]
        integrated_time, log_index, log_id = payload["integratedTime"], payload["logIndex"], payload["logID"]
        set_bytes = base64.b64decode(document["SignedEntryTimestamp"], validate=True)
        body = json.loads(base64.b64decode(raw_body, validate=True))
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, binascii.Error, ValueError):
        return f"the {BUNDLE_ANNOTATION} annotation is not a well-formed Rekor bundle"
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in (integrated_time, log_index)):
        return "the Rekor bundle's integratedTime and logIndex must be integers"
    if not isinstance(log_id, str) or not isinstance(raw_body, str) or not isinstance(body, dict):
        return "the Rekor bundle's logID and body must be strings, the body an entry"
    return RekorBundle(
        signed_entry_timestamp=set_bytes,
        raw_body=raw_body,
        body=body,
        integrated_time=integrated_time,
        log_index=log_index,
        log_id=log_id.lower(),
    )


def check_signed_entry_timestamp(bundle: RekorBundle, trust: TrustedRoot) -> str | None:
    """The SET is a Rekor signature over the canonical JSON of the entry's payload (cosign VerifySET)."""
    try:
        log = trust.tlogs.get(bytes.fromhex(bundle.log_id))
    except ValueError:
        return f"the Rekor bundle's logID {bundle.log_id!r} is not hex"
    if log is None:
        return f"the entry was logged by Rekor log {bundle.log_id}, which {trust.source} does not trust"
    if not log.validity.contains(bundle.integrated_at):
        return f"the Rekor key of {log.url} was not valid at the integrated time {bundle.integrated_at.isoformat()}"
    # RFC 8785 canonical form: for these four keys (strings and integers) sorted compact JSON is exact.
    signed = json.dumps(
        {
            "body": bundle.raw_body,
            "integratedTime": bundle.integrated_time,
            "logID": bundle.log_id,
            "logIndex": bundle.log_index,
        },
        sort_keys=True,
        separators=(",", ":"),
    ).encode()
    if not _log_signature_valid(log, bundle.signed_entry_timestamp, signed):
        return f"the signed entry timestamp does not verify with the key of {log.url}: the Rekor bundle was altered"
    return None


def check_entry_matches(  # noqa: PLR0911 - one guard per field the logged entry must match
    bundle: RekorBundle, *, signature: bytes, certificate: x509.Certificate, payload: bytes
) -> str | None:
    """The logged entry records this signature, this certificate and this payload's hash."""
    kind, version = bundle.body.get("kind"), bundle.body.get("apiVersion")
    if (kind, version) not in _SUPPORTED_KINDS:
        return f"the Rekor entry is a {kind} {version} entry, not a hashedrekord 0.0.1 image signature"
    spec: Any = bundle.body.get("spec")
    try:
        logged_signature = base64.b64decode(spec["signature"]["content"], validate=True)
        logged_key = base64.b64decode(spec["signature"]["publicKey"]["content"], validate=True)
        digest = spec["data"]["hash"]
        algorithm, value = digest["algorithm"], digest["value"]
    except (KeyError, TypeError, binascii.Error, ValueError):
        return "the Rekor entry's body lacks the signature, public key or hash"
    if logged_signature != signature:
        return "the Rekor entry records another signature: this signature was never logged"
    try:
        logged_certificate = x509.load_pem_x509_certificate(logged_key)
    except ValueError:
        return "the Rekor entry's public key is not a PEM certificate"
    if logged_certificate.public_bytes(serialization.Encoding.DER) != certificate.public_bytes(
        serialization.Encoding.DER
    ):
        return "the Rekor entry records another certificate than the signature's"
    actual = hashlib.sha256(payload).hexdigest()
    if algorithm != "sha256" or value != actual:
        return f"the Rekor entry records payload hash {algorithm}:{value}, not the payload's sha256:{actual}"
    return None


def _log_signature_valid(log: LogKey, signature: bytes, data: bytes) -> bool:
    key = log.public_key
    try:
        if isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signature, data, ec.ECDSA(hashes.SHA256()))
        elif isinstance(key, ed25519.Ed25519PublicKey):
            key.verify(signature, data)
        else:
            return False
    except (InvalidSignature, ValueError):
        return False
    return True
