"""Sigstore trusted roots: which Fulcio CAs, Rekor logs and CT logs a keyless signature may come from.

A trusted root is a ``trusted_root.json`` file (``application/vnd.dev.sigstore.trustedroot+json``).
The public-good one is pinned in this package (``trust/public-good/``), so verification never needs
the network; ``tagrelay trust-root refresh`` updates the pinned copy through Sigstore's TUF repository
(trust_refresh.py). A private Sigstore, or the tests' own, is configured with
``signature.keyless.trusted_root``.

This module reads the file with ``cryptography`` only: the legacy-layout checks need nothing more, and
importing sigstore-python would cost the promoter's cold start most of a second. Bundles hand the same
file to sigstore-python (bundles.py). Loaded roots are cached per path for the life of the process.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes

from tagrelay.errors import MisconfiguredError

SYSTEM = "signature"
TRUSTED_ROOT_MEDIA_TYPE = "application/vnd.dev.sigstore.trustedroot+json;version=0.1"
TRUST_DIR = Path(__file__).parent / "trust"
PUBLIC_GOOD_TRUSTED_ROOT = TRUST_DIR / "public-good" / "trusted_root.json"
PUBLIC_GOOD_TUF_URL = "https://tuf-repo-cdn.sigstore.dev"


@dataclass(frozen=True)
class Validity:
    """A ``validFor`` time range; an open end means "still valid"."""

    start: datetime | None
    end: datetime | None

    def contains(self, moment: datetime) -> bool:
        return (self.start is None or self.start <= moment) and (self.end is None or moment <= self.end)

    def describe(self) -> str:
        start = self.start.isoformat() if self.start else "the beginning"
        return f"{start} to {self.end.isoformat() if self.end else 'now'}"


@dataclass(frozen=True)
class LogKey:
    """A transparency log's (Rekor's or a CT log's) public key."""

    url: str
    key_id: bytes  # SHA-256 of the DER SubjectPublicKeyInfo: Rekor's logID, a CT log's LogID
    public_key: PublicKeyTypes
    validity: Validity


@dataclass(frozen=True)
class CertificateAuthority:
    """A Fulcio CA: its certificates (intermediates, then the root) and when it issued certificates."""

    uri: str
    certificates: tuple[x509.Certificate, ...]
    validity: Validity


@dataclass(frozen=True)
class TrustedRoot:
    source: str  # where it came from, for messages ("the pinned public-good root", a path)
    path: Path
    certificate_authorities: tuple[CertificateAuthority, ...]
    tlogs: Mapping[bytes, LogKey]
    ctlogs: Mapping[bytes, LogKey]

    @property
    def fulcio_certificates(self) -> tuple[x509.Certificate, ...]:
        return tuple(cert for authority in self.certificate_authorities for cert in authority.certificates)

    def authority_of(self, certificate: x509.Certificate) -> CertificateAuthority | None:
        return next((ca for ca in self.certificate_authorities if certificate in ca.certificates), None)


def trusted_root_for(path: str | None) -> TrustedRoot:
    """The configured trusted root, or the pinned public-good one when ``path`` is None."""
    if path is None:
        return load_trusted_root(str(PUBLIC_GOOD_TRUSTED_ROOT), source="the pinned public-good Sigstore root")
    return load_trusted_root(path, source=f"signature.keyless.trusted_root {path}")


@functools.cache
def load_trusted_root(path: str, *, source: str) -> TrustedRoot:
    """Read and check a trusted_root.json; a relative path is relative to the working directory."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise MisconfiguredError(SYSTEM, f"cannot read {source} ({exc.strerror})") from None
    return parse_trusted_root(data, source=source, path=Path(path))


def parse_trusted_root(data: bytes, *, source: str, path: Path) -> TrustedRoot:
    """A trusted root from its JSON; raises MisconfiguredError naming what is wrong."""
    try:
        document = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise MisconfiguredError(SYSTEM, f"{source} is not JSON") from None
    if not isinstance(document, dict) or document.get("mediaType") != TRUSTED_ROOT_MEDIA_TYPE:
        raise MisconfiguredError(SYSTEM, f"{source} is not a Sigstore trusted root ({TRUSTED_ROOT_MEDIA_TYPE})")
    try:
        authorities = tuple(_authority(item) for item in document.get("certificateAuthorities") or [])
        tlogs = {log.key_id: log for log in (_log(item) for item in document.get("tlogs") or [])}
        ctlogs = {log.key_id: log for log in (_log(item) for item in document.get("ctlogs") or [])}
    except (KeyError, TypeError, ValueError, binascii.Error) as exc:
        raise MisconfiguredError(SYSTEM, f"{source} is malformed ({type(exc).__name__}: {exc})") from None
    if not authorities or not tlogs:
        raise MisconfiguredError(SYSTEM, f"{source} names no Fulcio certificate authority or no Rekor log")
    return TrustedRoot(source=source, path=path, certificate_authorities=authorities, tlogs=tlogs, ctlogs=ctlogs)


def _authority(item: Any) -> CertificateAuthority:
    certificates = tuple(
        x509.load_der_x509_certificate(base64.b64decode(entry["rawBytes"], validate=True))
        for entry in item["certChain"]["certificates"]
    )
    if not certificates:
        raise ValueError("a certificate authority without certificates")
    return CertificateAuthority(uri=str(item.get("uri", "")), certificates=certificates, validity=_validity(item))


def _log(item: Any) -> LogKey:
    key = item["publicKey"]
    der = base64.b64decode(key["rawBytes"], validate=True)
    public_key = serialization.load_der_public_key(der)
    # Keyed by the hash of the key, which is what Rekor v1 entries and CT logs name (RFC 6962 §3.2),
    # whatever the declared logId says (Rekor v2 logs declare a checkpoint key id instead).
    key_id = hashlib.sha256(der).digest()
    return LogKey(url=str(item.get("baseUrl", "")), key_id=key_id, public_key=public_key, validity=_validity(key))


def _validity(item: Mapping[str, Any]) -> Validity:
    valid_for = item.get("validFor") or {}
    return Validity(start=_time(valid_for.get("start")), end=_time(valid_for.get("end")))


def _time(value: str | None) -> datetime | None:
    if value is None:
        return None
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
