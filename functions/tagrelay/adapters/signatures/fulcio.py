"""What a Fulcio certificate says about its signer: SAN, OIDC issuer and the GitHub Actions claims.

Pure: reads a parsed ``x509.Certificate``, no I/O. Fulcio writes each claim twice in GitHub Actions
certificates (Fulcio's docs/oid-info.md): the deprecated extensions .1-.6 hold raw bytes,
the current ones .8-.22 a DER UTF8String. Older certificates only have the former, so every claim is
read from the current extension first and from its deprecated twin otherwise, as cosign does.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from cryptography import x509

FULCIO_ARC = "1.3.6.1.4.1.57264.1."

# claim: (current OID suffix, deprecated OID suffix); None where one of the pair does not exist.
_CLAIMS: dict[str, tuple[int | None, int | None]] = {
    "issuer": (8, 1),
    "trigger": (20, 2),
    "commit": (13, 3),
    "workflow": (None, 4),
    "repository_uri": (12, None),
    "repository": (None, 5),
    "ref": (14, 6),
}


@dataclass(frozen=True)
class CertificateClaims:
    """The identity facts of a Fulcio leaf certificate; None where the certificate does not say."""

    sans: tuple[str, ...]
    issuer: str | None
    repository: str | None  # owner/name
    ref: str | None
    commit: str | None  # full 40-hex SHA the workflow ran for
    trigger: str | None
    workflow: str | None  # the workflow's name (deprecated extension .4 only)


def certificate_claims(certificate: x509.Certificate) -> CertificateClaims | str:
    """The claims of a certificate, or why they cannot be read (a malformed extension)."""
    values: dict[str, str | None] = {}
    for claim, (current, deprecated) in _CLAIMS.items():
        value: str | None = None
        if current is not None:
            raw = _extension(certificate, current)
            if raw is not None:
                decoded = decode_der_utf8_string(raw)
                if decoded is None:
                    return f"extension {FULCIO_ARC}{current} ({claim}) is not a DER UTF8String"
                value = decoded
        if value is None and deprecated is not None:
            raw = _extension(certificate, deprecated)
            if raw is not None:
                try:
                    value = raw.decode()
                except UnicodeDecodeError:
                    return f"extension {FULCIO_ARC}{deprecated} ({claim}) is not UTF-8"
        values[claim] = value
    repository = _repository_from_uri(values["repository_uri"]) or values["repository"]
    return CertificateClaims(
        sans=subject_alternative_names(certificate),
        issuer=values["issuer"],
        repository=repository,
        ref=values["ref"],
        commit=values["commit"],
        trigger=values["trigger"],
        workflow=values["workflow"],
    )


def subject_alternative_names(certificate: x509.Certificate) -> tuple[str, ...]:
    """URI and e-mail SANs: what Fulcio puts there for workflow and user identities."""
    try:
        extension = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return ()
    names = extension.value
    return (
        *names.get_values_for_type(x509.UniformResourceIdentifier),
        *names.get_values_for_type(x509.RFC822Name),
    )


def decode_der_utf8_string(data: bytes) -> str | None:
    """The text of a DER UTF8String (tag 12, definite length, nothing after it), else None."""
    if len(data) < 2 or data[0] != 0x0C:
        return None
    length, offset = data[1], 2
    if length & 0x80:
        count = length & 0x7F
        if count == 0 or count > 4 or len(data) < 2 + count:
            return None
        length = int.from_bytes(data[2 : 2 + count], "big")
        offset = 2 + count
    if len(data) != offset + length:
        return None
    try:
        return data[offset:].decode()
    except UnicodeDecodeError:
        return None


def _extension(certificate: x509.Certificate, suffix: int) -> bytes | None:
    try:
        extension = certificate.extensions.get_extension_for_oid(x509.ObjectIdentifier(f"{FULCIO_ARC}{suffix}"))
    except x509.ExtensionNotFound:
        return None
    value = extension.value
    return value.value if isinstance(value, x509.UnrecognizedExtension) else None


def _repository_from_uri(uri: str | None) -> str | None:
    """``https://github.com/ORG/REPO`` → ``ORG/REPO`` (any server, so GitHub Enterprise too)."""
    if not uri:
        return None
    path = urlsplit(uri).path.strip("/")
    return path or None
