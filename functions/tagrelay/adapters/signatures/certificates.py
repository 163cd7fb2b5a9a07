"""Fulcio certificate checks: the chain to a trusted CA at the signing time, and the embedded SCT.

Pure (``cryptography`` only). The chain is validated the way sigstore-python and cosign do: with the
trusted root's Fulcio certificates as anchors, the certificates of the chain annotation as untrusted
intermediates, at the time Rekor integrated the entry (a Fulcio leaf lives ten minutes, so "now" would
reject every signature older than that), and with code signing required instead of client auth.
"""

from __future__ import annotations

import hashlib
import struct
from datetime import UTC, datetime

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.certificate_transparency import LogEntryType
from cryptography.x509.oid import ExtendedKeyUsageOID
from cryptography.x509.verification import (
    Criticality,
    ExtensionPolicy,
    PolicyBuilder,
    Store,
    VerificationError,
)

from tagrelay.adapters.signatures.trust import TrustedRoot


def load_pem_chain(pem: str | None) -> tuple[x509.Certificate, ...] | str:
    """The certificates of a PEM bundle (the chain annotation may be absent: the root then supplies it)."""
    if not pem:
        return ()
    try:
        return tuple(x509.load_pem_x509_certificates(pem.encode()))
    except ValueError:
        return "the chain annotation is not a list of PEM certificates"


def check_validity_at(certificate: x509.Certificate, moment: datetime) -> str | None:
    """A Fulcio leaf must have been valid when Rekor integrated the signature (cosign CheckExpiry)."""
    start, end = certificate.not_valid_before_utc, certificate.not_valid_after_utc
    if not start <= moment <= end:
        return (
            f"the certificate was valid from {start.isoformat()} to {end.isoformat()}, but Rekor integrated "
            f"the signature at {moment.isoformat()}: it was expired (or not yet valid) when it was used"
        )
    return None


def verify_chain(
    leaf: x509.Certificate, intermediates: tuple[x509.Certificate, ...], trust: TrustedRoot, moment: datetime
) -> list[x509.Certificate] | str:
    """The verified chain (leaf first, trust anchor last), or why there is none."""
    if leaf.issuer == leaf.subject and _signed_by(leaf, leaf):
        return f"the certificate is self-signed, not issued by a Fulcio CA of {trust.source}"
    # Fulcio certificates carry code signing, not the client-auth EKU a client verifier expects by
    # default: accept any EKU here, and require code signing explicitly below.
    ca_policy = ExtensionPolicy.webpki_defaults_ca().may_be_present(
        x509.ExtendedKeyUsage, Criticality.NON_CRITICAL, None
    )
    ee_policy = ExtensionPolicy.webpki_defaults_ee().may_be_present(
        x509.ExtendedKeyUsage, Criticality.NON_CRITICAL, None
    )
    verifier = (
        PolicyBuilder()
        .store(Store(list(trust.fulcio_certificates)))
        .time(moment)
        .extension_policies(ca_policy=ca_policy, ee_policy=ee_policy)
        .build_client_verifier()
    )
    try:
        chain = list(verifier.verify(leaf, list(intermediates)).chain)
    except (VerificationError, x509.UnsupportedGeneralNameType) as exc:
        return f"the certificate chain does not lead to a Fulcio CA of {trust.source} ({exc})"
    try:
        usage = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return "the certificate has no extended key usage, so it is not for code signing"
    if ExtendedKeyUsageOID.CODE_SIGNING not in usage:
        return "the certificate's extended key usage does not include code signing"
    anchor = chain[-1]
    authority = trust.authority_of(anchor)
    if authority is not None and not authority.validity.contains(moment):
        return (
            f"the Fulcio CA {authority.uri} issued certificates from {authority.validity.describe()}, "
            f"not at {moment.isoformat()}"
        )
    return chain


def check_embedded_sct(leaf: x509.Certificate, issuer: x509.Certificate, trust: TrustedRoot) -> str | None:  # noqa: PLR0911 - one guard per RFC 6962 requirement on the SCT
    """Exactly one embedded precertificate SCT, signed by a CT log of the trusted root (RFC 6962 §3.2)."""
    try:
        scts = leaf.extensions.get_extension_for_class(x509.PrecertificateSignedCertificateTimestamps).value
    except x509.ExtensionNotFound:
        return "the certificate has no embedded SCT: it was not logged to a certificate transparency log"
    except ValueError:
        return "the certificate's SCT list is malformed"
    if len(scts) != 1:
        return f"the certificate has {len(scts)} embedded SCTs; Fulcio embeds exactly one"
    sct = scts[0]
    log = trust.ctlogs.get(sct.log_id)
    if log is None:
        return f"the SCT was issued by CT log {sct.log_id.hex()}, which {trust.source} does not trust"
    if sct.entry_type != LogEntryType.PRE_CERTIFICATE or not isinstance(sct.signature_hash_algorithm, hashes.SHA256):
        return "the SCT is not a SHA-256 precertificate SCT"
    issuer_key_hash = hashlib.sha256(
        issuer.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    ).digest()
    tbs = leaf.tbs_precertificate_bytes
    timestamp_ms = int(sct.timestamp.replace(tzinfo=UTC).timestamp() * 1000)
    signed = (
        struct.pack("!BBQH", sct.version.value, 0, timestamp_ms, sct.entry_type.value)
        + issuer_key_hash
        + len(tbs).to_bytes(3, "big")
        + tbs
        + struct.pack("!H", len(sct.extension_bytes))
        + sct.extension_bytes
    )
    key = log.public_key
    if not isinstance(key, ec.EllipticCurvePublicKey):
        return f"the CT log {log.url} key is not an ECDSA key"
    try:
        key.verify(sct.signature, signed, ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, ValueError):
        return f"the embedded SCT does not verify with the key of CT log {log.url}"
    return None


def _signed_by(certificate: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        certificate.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True
