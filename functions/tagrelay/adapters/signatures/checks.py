"""Pure checks of cosign signatures: no I/O, so every rule is unit-testable on its own.

Each ``check_*`` function returns None when the rule holds, else one sentence saying what is wrong.
The rules are cosign's (cosign's specs/SIGNATURE_SPEC.md): the payload must hash to the layer
digest that announced it, the signature must verify over the payload bytes exactly as downloaded
(never a re-serialisation), and the simple-signing claims must say "cosign container image signature"
for exactly the digest being verified.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from tagrelay.domain.tags import is_digest

SIMPLE_SIGNING_MEDIA_TYPE = "application/vnd.dev.cosign.simplesigning.v1+json"
COSIGN_SIGNATURE_TYPE = "cosign container image signature"
SIGNATURE_ANNOTATION = "dev.cosignproject.cosign/signature"
IN_TOTO_PAYLOAD_TYPE = "application/vnd.in-toto+json"
IN_TOTO_STATEMENT_TYPES = frozenset({"https://in-toto.io/Statement/v1", "https://in-toto.io/Statement/v0.1"})
COSIGN_SIGN_PREDICATE = "https://sigstore.dev/cosign/sign/v1"
# A simple-signing payload is ~250 bytes (more with -a annotations); refuse to download anything
# that claims to be much bigger.
MAX_PAYLOAD_BYTES = 64 * 1024


@dataclass(frozen=True)
class SignatureLayer:
    """A well-formed signature layer of a cosign legacy ``.sig`` manifest (nothing downloaded yet)."""

    digest: str
    media_type: str
    size: int
    signature: bytes
    annotations: Mapping[str, str]


def parse_signature_layer(layer: Any, *, max_bytes: int = MAX_PAYLOAD_BYTES) -> SignatureLayer | str:  # noqa: PLR0911 - one guard per field of the layer descriptor
    """A layer descriptor of a ``.sig`` manifest, or why it cannot be a cosign signature."""
    if not isinstance(layer, dict):
        return "the layer descriptor is not a JSON object"
    digest, media_type, size = layer.get("digest"), layer.get("mediaType"), layer.get("size")
    if not isinstance(digest, str) or not is_digest(digest):
        return f"the layer digest {digest!r} is not a sha256 digest"
    if media_type != SIMPLE_SIGNING_MEDIA_TYPE:
        return f"the layer media type {media_type!r} is not a cosign simple-signing payload"
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        return f"the layer size {size!r} is not a byte count"
    if size > max_bytes:
        return f"the payload is {size} bytes, more than the {max_bytes} a signature payload can be"
    annotations = layer.get("annotations")
    if not isinstance(annotations, dict) or not all(isinstance(v, str) for v in annotations.values()):
        return f"the layer has no string annotations (expected {SIGNATURE_ANNOTATION})"
    signature = decode_signature(annotations.get(SIGNATURE_ANNOTATION))
    if isinstance(signature, str):
        return signature
    return SignatureLayer(
        digest=digest, media_type=media_type, size=size, signature=signature, annotations=dict(annotations)
    )


def decode_signature(value: str | None) -> bytes | str:
    """The raw signature from cosign's annotation (standard base64), or why it is unusable."""
    if not value:
        return f"the layer has no {SIGNATURE_ANNOTATION} annotation"
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return f"the {SIGNATURE_ANNOTATION} annotation is not base64"


def check_payload_digest(payload: bytes, declared_digest: str) -> str | None:
    """The downloaded payload must be the blob the manifest names (cosign checks this too)."""
    actual = "sha256:" + hashlib.sha256(payload).hexdigest()
    if actual != declared_digest:
        return f"the payload hashes to {actual}, not to the layer digest {declared_digest}"
    return None


def check_ecdsa_p256_signature(public_key: ec.EllipticCurvePublicKey, signature: bytes, payload: bytes) -> str | None:
    """An ASN.1 DER ECDSA signature over SHA-256 of the payload bytes, as cosign key pairs and KMS make."""
    try:
        public_key.verify(signature, payload, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        return "the signature does not verify: it was made with another key, or over other bytes"
    except ValueError:
        return "the signature is not a well-formed ECDSA signature"
    return None


def check_simple_signing_claims(payload: bytes, digest: str) -> str | None:  # noqa: PLR0911 - one guard per claim, as cosign's SimpleClaimVerifier checks them
    """cosign's SimpleClaimVerifier: the payload names this digest and is a container image signature."""
    try:
        document = json.loads(payload, object_pairs_hook=_refuse_duplicate_keys)
    except _DuplicateKey as exc:
        return f"the payload is ambiguous: key {exc.args[0]!r} appears twice"
    except (UnicodeDecodeError, json.JSONDecodeError):
        return "the payload is not JSON"
    critical = document.get("critical") if isinstance(document, dict) else None
    if not isinstance(critical, dict):
        return "the payload has no 'critical' object"
    signature_type = critical.get("type")
    if signature_type != COSIGN_SIGNATURE_TYPE:
        return f"the payload type is {signature_type!r}, not {COSIGN_SIGNATURE_TYPE!r}"
    image = critical.get("image")
    signed = image.get("docker-manifest-digest") if isinstance(image, dict) else None
    if not isinstance(signed, str):
        return "the payload has no critical.image.docker-manifest-digest"
    if signed != digest:
        return f"the payload signs {signed}, not {digest}"
    return None


def check_in_toto_claims(payload: bytes, digest: str) -> str | None:  # noqa: PLR0911 - one guard per claim, as cosign's IntotoSubjectClaimVerifier checks them
    """cosign's IntotoSubjectClaimVerifier for v3 image signatures: a statement with cosign's signing
    predicate type whose subject names this digest."""
    try:
        document = json.loads(payload, object_pairs_hook=_refuse_duplicate_keys)
    except _DuplicateKey as exc:
        return f"the statement is ambiguous: key {exc.args[0]!r} appears twice"
    except (UnicodeDecodeError, json.JSONDecodeError):
        return "the statement is not JSON"
    if not isinstance(document, dict):
        return "the statement is not a JSON object"
    statement_type = document.get("_type")
    if statement_type not in IN_TOTO_STATEMENT_TYPES:
        return f"the statement type is {statement_type!r}, not an in-toto statement"
    predicate_type = document.get("predicateType")
    if predicate_type != COSIGN_SIGN_PREDICATE:
        return f"the predicate type is {predicate_type!r}, not cosign's image signature {COSIGN_SIGN_PREDICATE!r}"
    subjects = document.get("subject")
    if not isinstance(subjects, list) or not subjects:
        return "the statement has no subject"
    algorithm, _, hex_digest = digest.partition(":")
    named = [
        f"{algorithm}:{entry['digest'][algorithm]}"
        for entry in subjects
        if isinstance(entry, dict) and isinstance(entry.get("digest"), dict) and algorithm in entry["digest"]
    ]
    if f"{algorithm}:{hex_digest}" not in named:
        return f"the statement's subject is {', '.join(named) or 'no sha256 digest'}, not {digest}"
    return None


# What each signed payload type must claim: the simple-signing payload of the legacy layout, and
# the in-toto statement a cosign v3 bundle's DSSE envelope carries.
CLAIM_CHECKS: Mapping[str, Callable[[bytes, str], str | None]] = {
    SIMPLE_SIGNING_MEDIA_TYPE: check_simple_signing_claims,
    IN_TOTO_PAYLOAD_TYPE: check_in_toto_claims,
}


def check_claims(payload_type: str, payload: bytes, digest: str) -> str | None:
    check = CLAIM_CHECKS.get(payload_type)
    if check is None:
        return f"payloads of type {payload_type!r} are not supported"
    return check(payload, digest)


def key_fingerprint(public_key: ec.EllipticCurvePublicKey) -> str:
    """SHA-256 of the DER SubjectPublicKeyInfo: stable, and safe to log and record."""
    der = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return "sha256:" + hashlib.sha256(der).hexdigest()


def p256_problem(public_key: object) -> str | None:
    """None for an ECDSA P-256 public key, else what kind of key it is instead."""
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        if isinstance(public_key.curve, ec.SECP256R1):
            return None
        return f"it is an EC key on curve {public_key.curve.name}, not P-256 (secp256r1)"
    if isinstance(public_key, rsa.RSAPublicKey):
        return f"it is an RSA {public_key.key_size}-bit key, not ECDSA P-256"
    if isinstance(public_key, ed25519.Ed25519PublicKey):
        return "it is an Ed25519 key, not ECDSA P-256"
    return f"it is a {type(public_key).__name__} key, not ECDSA P-256"


class _DuplicateKey(ValueError):
    pass


def _refuse_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    document: dict[str, Any] = {}
    for key, value in pairs:
        if key in document:
            raise _DuplicateKey(key)
        document[key] = value
    return document
