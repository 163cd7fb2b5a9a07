"""A private Sigstore for tests and the demo: Fulcio CA, Rekor log and CT log, with real encodings.

Production Sigstore cannot sign test images, so this module plays its parts with keys it generates:
a Fulcio root and intermediate CA issuing short-lived leaf certificates with the
GitHub Actions extensions (Fulcio's docs/oid-info.md: raw values for .1-.6, DER UTF8String
for .8-.22), an RFC 6962 precertificate SCT embedded by a CT log key, and a Rekor log that returns
what real Rekor v1 returns: the canonicalised entry body, a signed entry timestamp (SET), and an
RFC 6962 inclusion proof with a signed-note checkpoint. ``trusted_root()`` describes it all as a
Sigstore trusted_root.json, which tagrelay (and sigstore-python) load like the public-good one.

What it produces:

* ``sign_image_keyless``: cosign's legacy layout (``sha256-<hex>.sig``) with the certificate, chain and
  Rekor bundle annotations, as ``cosign sign`` v1/v2 writes it in GitHub Actions;
* ``sign_image_bundle``: a cosign v3 Sigstore bundle (v0.3, DSSE envelope of an in-toto statement)
  pushed as an OCI 1.1 referrer, plus the referrers tag-schema index when the registry has no
  referrers API;
* ``keyless_signature_config``: the ``signature:`` block of a tagrelay configuration accepting them.

Negative tests use the keyword arguments (another CA, no SCT, an expired certificate, a log entry of
another signature, a statement for another digest, ...) to produce each case tagrelay must reject.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from devstack import images

FULCIO_OID = "1.3.6.1.4.1.57264.1."
SCT_LIST_OID = x509.ObjectIdentifier("1.3.6.1.4.1.11129.2.4.2")
GITHUB_ISSUER = "https://token.actions.githubusercontent.com"
TRUSTED_ROOT_MEDIA_TYPE = "application/vnd.dev.sigstore.trustedroot+json;version=0.1"
BUNDLE_MEDIA_TYPE = "application/vnd.dev.sigstore.bundle.v0.3+json"
IN_TOTO_PAYLOAD_TYPE = "application/vnd.in-toto+json"
IN_TOTO_STATEMENT_V1 = "https://in-toto.io/Statement/v1"
COSIGN_SIGN_PREDICATE = "https://sigstore.dev/cosign/sign/v1"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_EMPTY_CONFIG = "application/vnd.oci.empty.v1+json"
CERTIFICATE_ANNOTATION = "dev.sigstore.cosign/certificate"
CHAIN_ANNOTATION = "dev.sigstore.cosign/chain"
BUNDLE_ANNOTATION = "dev.sigstore.cosign/bundle"


# --- identities -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GitHubIdentity:
    """What Fulcio writes into a certificate for a GitHub Actions OIDC token (fulcio principal.go)."""

    repository: str = "mosaic-stories/mosaic-life"
    workflow_path: str = ".github/workflows/build-push.yml"
    ref: str = "refs/heads/main"
    sha: str = "1e07581" + "0" * 33
    trigger: str = "push"
    workflow_name: str = "Build and Push"
    issuer: str = GITHUB_ISSUER
    server_url: str = "https://github.com"
    san: str | None = None  # default: server_url/repository/workflow_path@ref (the job_workflow_ref)
    legacy_extensions: bool = True  # .1-.6, raw bytes (deprecated, still issued)
    extensions_v2: bool = True  # .8-.22, DER UTF8String

    @property
    def subject(self) -> str:
        return self.san or f"{self.server_url}/{self.repository}/{self.workflow_path}@{self.ref}"

    def for_commit(self, sha: str, *, branch: str | None = None) -> GitHubIdentity:
        """The same workflow, run for another commit (and branch)."""
        return replace(self, sha=sha, ref=f"refs/heads/{branch}" if branch else self.ref)

    def extensions(self) -> list[tuple[str, bytes]]:
        owner = self.repository.split("/", 1)[0]
        values: list[tuple[str, bytes]] = []
        if self.legacy_extensions:
            for number, value in (
                (1, self.issuer),
                (2, self.trigger),
                (3, self.sha),
                (4, self.workflow_name),
                (5, self.repository),
                (6, self.ref),
            ):
                values.append((f"{FULCIO_OID}{number}", value.encode()))
        if self.extensions_v2:
            workflow_ref = f"{self.server_url}/{self.repository}/{self.workflow_path}@{self.ref}"
            for number, value in (
                (8, self.issuer),
                (9, workflow_ref),
                (10, self.sha),
                (11, "github-hosted"),
                (12, f"{self.server_url}/{self.repository}"),
                (13, self.sha),
                (14, self.ref),
                (15, "123456789"),
                (16, f"{self.server_url}/{owner}"),
                (17, "987654321"),
                (18, workflow_ref),
                (19, self.sha),
                (20, self.trigger),
                (21, f"{self.server_url}/{self.repository}/actions/runs/42/attempts/1"),
                (22, "private"),
            ):
                values.append((f"{FULCIO_OID}{number}", der_utf8_string(value)))
        return values


# --- the private Sigstore instance ------------------------------------------------------------------


@dataclass(frozen=True)
class RekorEntry:
    """One entry of the test Rekor log, with everything Rekor v1 hands back for it."""

    kind: str
    version: str
    body: bytes  # canonicalised entry JSON
    integrated_time: int
    log_index: int
    log_id: bytes  # SHA-256 of the log key's DER SubjectPublicKeyInfo
    signed_entry_timestamp: bytes
    root_hash: bytes
    tree_size: int
    hashes: tuple[bytes, ...]
    checkpoint: str

    def cosign_bundle_annotation(self) -> str:
        """The ``dev.sigstore.cosign/bundle`` annotation (cosign's RekorBundle, pkg/cosign/bundle/rekor.go)."""
        return json.dumps(
            {
                "SignedEntryTimestamp": base64.b64encode(self.signed_entry_timestamp).decode(),
                "Payload": {
                    "body": base64.b64encode(self.body).decode(),
                    "integratedTime": self.integrated_time,
                    "logIndex": self.log_index,
                    "logID": self.log_id.hex(),
                },
            },
            separators=(",", ":"),
        )

    def bundle_tlog_entry(self) -> dict[str, Any]:
        """The bundle's ``verificationMaterial.tlogEntries[]`` item (protobuf JSON: int64s as strings)."""
        return {
            "logIndex": str(self.log_index),
            "logId": {"keyId": base64.b64encode(self.log_id).decode()},
            "kindVersion": {"kind": self.kind, "version": self.version},
            "integratedTime": str(self.integrated_time),
            "inclusionPromise": {"signedEntryTimestamp": base64.b64encode(self.signed_entry_timestamp).decode()},
            "inclusionProof": {
                "logIndex": str(self.log_index),
                "rootHash": base64.b64encode(self.root_hash).decode(),
                "treeSize": str(self.tree_size),
                "hashes": [base64.b64encode(h).decode() for h in self.hashes],
                "checkpoint": {"envelope": self.checkpoint},
            },
            "canonicalizedBody": base64.b64encode(self.body).decode(),
        }


@dataclass
class TestSigstore:
    """Fulcio (root + intermediate CA), a CT log key and a Rekor log, all generated in memory."""

    __test__ = False  # not a pytest test class, despite the name

    name: str
    root_key: ec.EllipticCurvePrivateKey
    root: x509.Certificate
    intermediate_key: ec.EllipticCurvePrivateKey
    intermediate: x509.Certificate
    rekor_key: ec.EllipticCurvePrivateKey
    ct_key: ec.EllipticCurvePrivateKey
    valid_from: datetime
    _leaves: list[bytes] = field(default_factory=list)  # Merkle leaf hashes of the log, in order

    @classmethod
    def generate(cls, name: str = "tagrelay-test", *, valid_from: datetime | None = None) -> TestSigstore:
        start = (valid_from or datetime.now(UTC) - timedelta(days=1)).replace(microsecond=0)
        root_key = ec.generate_private_key(ec.SECP384R1())
        root_name = x509.Name(
            [x509.NameAttribute(NameOID.ORGANIZATION_NAME, name), x509.NameAttribute(NameOID.COMMON_NAME, name)]
        )
        root = (
            x509.CertificateBuilder()
            .subject_name(root_name)
            .issuer_name(root_name)
            .public_key(root_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(start + timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=1), critical=True)
            .add_extension(_ca_key_usage(), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(root_key.public_key()), critical=False)
            .sign(root_key, hashes.SHA384())
        )
        intermediate_key = ec.generate_private_key(ec.SECP384R1())
        intermediate = (
            x509.CertificateBuilder()
            .subject_name(
                x509.Name(
                    [
                        x509.NameAttribute(NameOID.ORGANIZATION_NAME, name),
                        x509.NameAttribute(NameOID.COMMON_NAME, f"{name}-intermediate"),
                    ]
                )
            )
            .issuer_name(root_name)
            .public_key(intermediate_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(start + timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(_ca_key_usage(), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(intermediate_key.public_key()), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(root_key.public_key()), critical=False)
            .sign(root_key, hashes.SHA384())
        )
        instance = cls(
            name=name,
            root_key=root_key,
            root=root,
            intermediate_key=intermediate_key,
            intermediate=intermediate,
            rekor_key=ec.generate_private_key(ec.SECP256R1()),
            ct_key=ec.generate_private_key(ec.SECP256R1()),
            valid_from=start,
        )
        # A log that already holds a few entries, so that inclusion proofs have real sibling hashes.
        instance._leaves.extend(_leaf_hash(os.urandom(32)) for _ in range(5))
        return instance

    # --- the trusted root ---

    @property
    def rekor_log_id(self) -> bytes:
        return _key_id(self.rekor_key.public_key())

    @property
    def ct_log_id(self) -> bytes:
        return _key_id(self.ct_key.public_key())

    def trusted_root(self) -> dict[str, Any]:
        """This instance as a Sigstore trusted_root.json document."""
        start = _rfc3339(self.valid_from)
        return {
            "mediaType": TRUSTED_ROOT_MEDIA_TYPE,
            "tlogs": [_log_instance(f"https://rekor.{self.name}.test", self.rekor_key, start)],
            "certificateAuthorities": [
                {
                    "subject": {"organization": self.name, "commonName": self.name},
                    "uri": f"https://fulcio.{self.name}.test",
                    "certChain": {
                        "certificates": [
                            {"rawBytes": base64.b64encode(_der(certificate)).decode()}
                            for certificate in (self.intermediate, self.root)
                        ]
                    },
                    "validFor": {"start": start},
                }
            ],
            "ctlogs": [_log_instance(f"https://ctfe.{self.name}.test", self.ct_key, start)],
            "timestampAuthorities": [],
        }

    def write_trusted_root(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.trusted_root(), indent=2) + "\n")
        return path

    # --- Fulcio ---

    def issue(
        self,
        public_key: ec.EllipticCurvePublicKey,
        identity: GitHubIdentity,
        *,
        not_before: datetime | None = None,
        lifetime: timedelta = timedelta(minutes=10),
        sct: bool = True,
        ct_key: ec.EllipticCurvePrivateKey | None = None,
        self_signed_key: ec.EllipticCurvePrivateKey | None = None,
    ) -> x509.Certificate:
        """A Fulcio-style leaf for ``public_key``: empty subject, SAN URI, code signing, GitHub claims.

        ``sct``: embed a precertificate SCT signed by the CT log (``ct_key`` signs it instead, to make
        an SCT the trusted root does not know). ``self_signed_key``: sign the leaf with this key and
        name it as its own issuer, instead of issuing it from the intermediate.
        """
        start = (not_before or datetime.now(UTC) - timedelta(seconds=30)).replace(microsecond=0)
        issuer_name = self.intermediate.subject
        signing_key: ec.EllipticCurvePrivateKey = self.intermediate_key
        authority_key = self.intermediate_key.public_key()
        if self_signed_key is not None:
            issuer_name = x509.Name([])
            signing_key = self_signed_key
            authority_key = self_signed_key.public_key()
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([]))
            .issuer_name(issuer_name)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(start + lifetime)
            .add_extension(_leaf_key_usage(), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(authority_key), critical=False)
            .add_extension(
                x509.SubjectAlternativeName([x509.UniformResourceIdentifier(identity.subject)]), critical=True
            )
        )
        for oid, value in identity.extensions():
            builder = builder.add_extension(
                x509.UnrecognizedExtension(x509.ObjectIdentifier(oid), value), critical=False
            )
        if not sct:
            return builder.sign(signing_key, hashes.SHA384())
        # RFC 6962 §3.1: the CT log signs the precertificate's TBS (the final TBS without the SCT
        # list), bound to the issuer's key hash; the SCT list is then added as the last extension.
        precertificate = builder.sign(signing_key, hashes.SHA384())
        issuer_key_hash = _key_id(authority_key)
        entry = _sct(ct_key or self.ct_key, precertificate.tbs_certificate_bytes, issuer_key_hash)
        certificate = builder.add_extension(
            x509.UnrecognizedExtension(SCT_LIST_OID, _der_octet_string(_tls_vector(_tls_vector(entry, 2), 2))),
            critical=False,
        ).sign(signing_key, hashes.SHA384())
        if certificate.tbs_precertificate_bytes != precertificate.tbs_certificate_bytes:
            raise AssertionError("the SCT was computed over another TBS than the certificate's precertificate")
        return certificate

    # --- Rekor ---

    def log_hashedrekord(
        self, payload: bytes, signature: bytes, certificate: x509.Certificate, *, integrated_time: int | None = None
    ) -> RekorEntry:
        """A hashedrekord v0.0.1 entry, as Rekor stores it for a cosign image signature."""
        body = {
            "apiVersion": "0.0.1",
            "kind": "hashedrekord",
            "spec": {
                "data": {"hash": {"algorithm": "sha256", "value": hashlib.sha256(payload).hexdigest()}},
                "signature": {
                    "content": base64.b64encode(signature).decode(),
                    "publicKey": {"content": base64.b64encode(_pem(certificate)).decode()},
                },
            },
        }
        return self._append("hashedrekord", body, integrated_time)

    def log_dsse(
        self, envelope: Mapping[str, Any], certificate: x509.Certificate, *, integrated_time: int | None = None
    ) -> RekorEntry:
        """A dsse v0.0.1 entry, as Rekor stores it (hashes and signatures, not the envelope itself)."""
        payload = base64.b64decode(envelope["payload"])
        envelope_bytes = json.dumps(envelope, separators=(",", ":")).encode()
        body = {
            "apiVersion": "0.0.1",
            "kind": "dsse",
            "spec": {
                "envelopeHash": {"algorithm": "sha256", "value": hashlib.sha256(envelope_bytes).hexdigest()},
                "payloadHash": {"algorithm": "sha256", "value": hashlib.sha256(payload).hexdigest()},
                "signatures": [
                    {"signature": entry["sig"], "verifier": base64.b64encode(_pem(certificate)).decode()}
                    for entry in envelope["signatures"]
                ],
            },
        }
        return self._append("dsse", body, integrated_time)

    def _append(self, kind: str, body_document: dict[str, Any], integrated_time: int | None) -> RekorEntry:
        body = canonical_json(body_document)
        when = integrated_time if integrated_time is not None else int(datetime.now(UTC).timestamp())
        index = len(self._leaves)
        self._leaves.append(_leaf_hash(body))
        log_id = self.rekor_log_id
        promise = canonical_json(
            {
                "body": base64.b64encode(body).decode(),
                "integratedTime": when,
                "logID": log_id.hex(),
                "logIndex": index,
            }
        )
        size = len(self._leaves)
        root_hash = _tree_hash(self._leaves)
        return RekorEntry(
            kind=kind,
            version="0.0.1",
            body=body,
            integrated_time=when,
            log_index=index,
            log_id=log_id,
            signed_entry_timestamp=self.rekor_key.sign(promise, ec.ECDSA(hashes.SHA256())),
            root_hash=root_hash,
            tree_size=size,
            hashes=tuple(_inclusion_path(index, self._leaves)),
            checkpoint=self._checkpoint(size, root_hash, when),
        )

    def _checkpoint(self, size: int, root_hash: bytes, when: int) -> str:
        """A signed note (transparency-dev checkpoint format) as Rekor v1 signs its tree heads."""
        origin = f"rekor.{self.name}.test"
        note = f"{origin} - 1234567890\n{size}\n{base64.b64encode(root_hash).decode()}\nTimestamp: {when * 10**9}\n"
        signature = self.rekor_key.sign(note.encode(), ec.ECDSA(hashes.SHA256()))
        return f"{note}\n\u2014 {origin} {base64.b64encode(self.rekor_log_id[:4] + signature).decode()}\n"


# --- signers ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LegacySignature:
    """What cosign's legacy layout stores for one keyless signature."""

    signature: bytes
    certificate: x509.Certificate
    chain: tuple[x509.Certificate, ...]
    entry: RekorEntry | None

    def annotations(self) -> dict[str, str]:
        annotations = {
            CERTIFICATE_ANNOTATION: _pem(self.certificate).decode(),
            CHAIN_ANNOTATION: "".join(_pem(certificate).decode() for certificate in self.chain),
        }
        if self.entry is not None:
            annotations[BUNDLE_ANNOTATION] = self.entry.cosign_bundle_annotation()
        return annotations


@dataclass
class KeylessSigner:
    """``cosign sign`` in GitHub Actions: an ephemeral key, a Fulcio certificate, a Rekor entry.

    ``sigstore`` logs the signature; ``ca`` issues the certificate (another instance: a certificate the
    trusted root does not know).
    """

    sigstore: TestSigstore
    identity: GitHubIdentity = field(default_factory=GitHubIdentity)
    ca: TestSigstore | None = None

    def sign_legacy(
        self,
        payload: bytes,
        *,
        signed_bytes: bytes | None = None,
        integrated_time: int | None = None,
        not_before: datetime | None = None,
        sct: bool = True,
        self_signed: bool = False,
        log: bool = True,
        logged_signature: bytes | None = None,
    ) -> LegacySignature:
        """Sign ``payload`` (or ``signed_bytes``); ``logged_signature`` puts another signature into Rekor."""
        key = ec.generate_private_key(ec.SECP256R1())
        ca = self.ca or self.sigstore
        certificate = ca.issue(
            key.public_key(),
            self.identity,
            not_before=not_before,
            sct=sct,
            self_signed_key=key if self_signed else None,
        )
        signature = key.sign(payload if signed_bytes is None else signed_bytes, ec.ECDSA(hashes.SHA256()))
        entry = None
        if log:
            logged = logged_signature if logged_signature is not None else signature
            entry = self.sigstore.log_hashedrekord(payload, logged, certificate, integrated_time=integrated_time)
        chain = (certificate,) if self_signed else (ca.intermediate, ca.root)
        return LegacySignature(signature=signature, certificate=certificate, chain=chain, entry=entry)

    def sign_bundle(
        self, statement: bytes, *, integrated_time: int | None = None, payload_type: str = IN_TOTO_PAYLOAD_TYPE
    ) -> bytes:
        """A Sigstore bundle v0.3 with a DSSE envelope over ``statement``, as cosign v3 makes it."""
        key = ec.generate_private_key(ec.SECP256R1())
        ca = self.ca or self.sigstore
        certificate = ca.issue(key.public_key(), self.identity)
        signature = key.sign(dsse_pae(payload_type, statement), ec.ECDSA(hashes.SHA256()))
        envelope = {
            "payload": base64.b64encode(statement).decode(),
            "payloadType": payload_type,
            "signatures": [{"sig": base64.b64encode(signature).decode()}],
        }
        entry = self.sigstore.log_dsse(envelope, certificate, integrated_time=integrated_time)
        bundle = {
            "mediaType": BUNDLE_MEDIA_TYPE,
            "verificationMaterial": {
                "certificate": {"rawBytes": base64.b64encode(_der(certificate)).decode()},
                "tlogEntries": [entry.bundle_tlog_entry()],
            },
            "dsseEnvelope": envelope,
        }
        return json.dumps(bundle, indent=2).encode()


def in_toto_statement(
    digest: str, *, predicate_type: str = COSIGN_SIGN_PREDICATE, statement_type: str = IN_TOTO_STATEMENT_V1
) -> bytes:
    """What cosign v3 signs for an image: an in-toto statement naming the manifest digest."""
    algorithm, _, hex_digest = digest.partition(":")
    return json.dumps(
        {
            "_type": statement_type,
            "subject": [{"digest": {algorithm: hex_digest}}],
            "predicateType": predicate_type,
            "predicate": {},
        },
        separators=(",", ":"),
    ).encode()


def dsse_pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE pre-authentication encoding: what the envelope's signature signs."""
    kind = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(payload), payload)


# --- pushing to a registry --------------------------------------------------------------------------


class _FixedSignature:
    """Hands ``images.sign_image`` a signature made beforehand (keyless annotations depend on it)."""

    def __init__(self, signature: bytes) -> None:
        self._signature = signature

    @property
    def public_key_pem(self) -> str:
        raise NotImplementedError("a keyless signature has a certificate, not a configured key")

    def sign(self, payload: bytes) -> bytes:
        return self._signature


def sign_image_keyless(
    registry: images.Registry,
    repository: str,
    digest: str,
    signer: KeylessSigner,
    *,
    payload: bytes | None = None,
    alter: Callable[[dict[str, str]], dict[str, str]] | None = None,
    **sign_options: Any,
) -> str:
    """``cosign sign`` (v1/v2, keyless) of ``repository@digest``: the legacy ``.sig`` layout with the
    certificate, chain and Rekor bundle annotations; returns the .sig manifest digest.

    ``payload`` replaces the simple-signing payload; ``alter`` rewrites the annotations before the push;
    ``sign_options`` go to ``KeylessSigner.sign_legacy`` (signed_bytes, integrated_time, sct, ...).
    """
    with images.writer(registry) as target:
        body = payload if payload is not None else images.simple_signing_payload(digest, f"{target.host}/{repository}")
        signed = signer.sign_legacy(body, **sign_options)
        annotations = signed.annotations()
        if alter is not None:
            annotations = alter(annotations)
        return images.sign_image(
            target,
            repository,
            digest,
            _FixedSignature(signed.signature),
            payload=body,
            extra_annotations=annotations,
        )


def push_legacy_signature(
    registry_url: str, repository: str, digest: str, payload: bytes, signature: bytes, annotations: dict[str, str]
) -> str:
    """Push a keyless signature made elsewhere (e.g. by sigstore-js) in cosign's legacy layout."""
    return images.sign_image(
        registry_url, repository, digest, _FixedSignature(signature), payload=payload, extra_annotations=annotations
    )


def sign_image_bundle(
    registry_url: str,
    repository: str,
    digest: str,
    signer: KeylessSigner,
    *,
    statement: bytes | None = None,
    bundle: bytes | None = None,
    tag_fallback: bool | None = None,
) -> str:
    """``cosign sign`` (v3): a Sigstore bundle as an OCI 1.1 referrer of ``repository@digest``.

    ``statement`` replaces the in-toto statement; ``bundle`` pushes given bytes as the bundle. Returns
    the referrer manifest's digest.
    """
    data = bundle if bundle is not None else signer.sign_bundle(statement or in_toto_statement(digest))
    return attach_bundle(registry_url, repository, digest, data, tag_fallback=tag_fallback)


def attach_bundle(
    registry: images.Registry, repository: str, digest: str, bundle: bytes, *, tag_fallback: bool | None = None
) -> str:
    """Push ``bundle`` as cosign v3 does (cosign's pkg/oci/remote/write.go; OCI distribution-spec 1.1, referrers): a manifest whose ``subject`` is the
    image, pushed by digest. Where the registry has no referrers API (``tag_fallback`` None: probe it),
    also add it to the referrers tag-schema index ``sha256-<hex>``, as go-containerregistry does."""
    with images.writer(registry) as target:
        subject = target.fetch_manifest(repository, digest)
        if subject is None:
            raise LookupError(f"{repository}@{digest} is not in the registry")
        subject_raw, subject_type = subject
        empty = b"{}"
        target.put_blob(repository, empty)
        target.put_blob(repository, bundle)
        annotations = {
            "dev.sigstore.bundle.content": "dsse-envelope",
            "dev.sigstore.bundle.predicateType": COSIGN_SIGN_PREDICATE,
            "org.opencontainers.image.created": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
        manifest = _json(
            {
                "schemaVersion": 2,
                "mediaType": images.OCI_MANIFEST,
                "config": {**_descriptor(OCI_EMPTY_CONFIG, empty), "artifactType": BUNDLE_MEDIA_TYPE},
                "layers": [_descriptor(BUNDLE_MEDIA_TYPE, bundle)],
                "annotations": annotations,
                "subject": {"mediaType": subject_type, "size": len(subject_raw), "digest": digest},
                "artifactType": BUNDLE_MEDIA_TYPE,
            }
        )
        referrer = target.put_manifest(repository, _digest(manifest), manifest, media_type=images.OCI_MANIFEST)
        if tag_fallback is None:
            tag_fallback = not target.has_referrers_api(repository, digest)
        if tag_fallback:
            descriptor = {
                **_descriptor(images.OCI_MANIFEST, manifest),
                "artifactType": BUNDLE_MEDIA_TYPE,
                "annotations": annotations,
            }
            add_to_referrers_index(target, repository, digest, descriptor)
    return referrer


def add_to_referrers_index(
    registry: images.Registry, repository: str, digest: str, descriptor: Mapping[str, Any]
) -> str:
    """Append ``descriptor`` to the referrers tag-schema index (OCI distribution-spec 1.1, "Referrers
    Tag Schema"): an image index tagged ``<alg>-<hex>``; returns the index digest."""
    tag = digest.replace(":", "-")
    with images.writer(registry) as target:
        existing = target.fetch_manifest(repository, tag)
        manifests: list[Any] = json.loads(existing[0])["manifests"] if existing is not None else []
        manifests = [m for m in manifests if m.get("digest") != descriptor["digest"]] + [dict(descriptor)]
        index = _json({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests})
        target.put_manifest(repository, tag, index, media_type=OCI_INDEX)
    return _digest(index)


# --- for the demo and the configuration -------------------------------------------------------------


def keyless_signature_config(
    trusted_root: Path | str,
    *,
    repository: str = "mosaic-stories/mosaic-life",
    workflow_path: str = ".github/workflows/build-push.yml",
    issuer: str = GITHUB_ISSUER,
    server_url: str = "https://github.com",
) -> dict[str, Any]:
    """The ``signature:`` block that accepts what a ``KeylessSigner`` with that workflow signs, for
    the environment's branch (the seed's identity: mosaic-stories/mosaic-life's build-push.yml)."""
    return {
        "keyless": {
            "issuer": issuer,
            "identity": f"{server_url}/{repository}/{workflow_path}@refs/heads/{{branch}}",
            "repository": repository,
            "ref": "refs/heads/{branch}",
            "trusted_root": str(trusted_root),
        }
    }


def demo_sigstore(workdir: Path, name: str = "tagrelay-demo") -> tuple[TestSigstore, Path]:
    """A fresh private Sigstore and its trusted_root.json under ``workdir`` (for ``make demo``)."""
    sigstore = TestSigstore.generate(name)
    return sigstore, sigstore.write_trusted_root(workdir / "sigstore" / "trusted_root.json")


# --- encodings --------------------------------------------------------------------------------------


def canonical_json(document: Any) -> bytes:
    """RFC 8785 for the documents Rekor canonicalises here (ASCII keys, strings and integers only)."""
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def der_utf8_string(value: str) -> bytes:
    """A DER UTF8String (tag 12), as Fulcio encodes its .8-.22 extension values."""
    data = value.encode()
    return b"\x0c" + _der_length(len(data)) + data


def _der_octet_string(data: bytes) -> bytes:
    return b"\x04" + _der_length(len(data)) + data


def _der_length(length: int) -> bytes:
    if length < 0x80:
        return bytes([length])
    encoded = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(encoded)]) + encoded


def _tls_vector(data: bytes, length_bytes: int) -> bytes:
    return len(data).to_bytes(length_bytes, "big") + data


def _sct(ct_key: ec.EllipticCurvePrivateKey, tbs: bytes, issuer_key_hash: bytes) -> bytes:
    """An RFC 6962 v1 SignedCertificateTimestamp for a precertificate entry, TLS-encoded."""
    timestamp = int(datetime.now(UTC).timestamp() * 1000).to_bytes(8, "big")
    extensions = _tls_vector(b"", 2)
    signed = b"\x00\x00" + timestamp + b"\x00\x01" + issuer_key_hash + _tls_vector(tbs, 3) + extensions
    signature = ct_key.sign(signed, ec.ECDSA(hashes.SHA256()))
    # SHA-256 (4) with ECDSA (3), then the DER signature as an opaque<0..2^16-1>.
    return b"\x00" + _key_id(ct_key.public_key()) + timestamp + extensions + b"\x04\x03" + _tls_vector(signature, 2)


def _leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def _node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(size: int) -> int:
    """The largest power of two smaller than ``size`` (RFC 6962 §2.1)."""
    split = 1
    while split * 2 < size:
        split *= 2
    return split


def _tree_hash(leaves: Sequence[bytes]) -> bytes:
    if len(leaves) == 1:
        return leaves[0]
    k = _split(len(leaves))
    return _node_hash(_tree_hash(leaves[:k]), _tree_hash(leaves[k:]))


def _inclusion_path(index: int, leaves: Sequence[bytes]) -> list[bytes]:
    """RFC 6962 §2.1.1 PATH(m, D[n]), ordered from the leaf up."""
    if len(leaves) <= 1:
        return []
    k = _split(len(leaves))
    if index < k:
        return [*_inclusion_path(index, leaves[:k]), _tree_hash(leaves[k:])]
    return [*_inclusion_path(index - k, leaves[k:]), _tree_hash(leaves[:k])]


def _key_id(public_key: ec.EllipticCurvePublicKey) -> bytes:
    return hashlib.sha256(
        public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    ).digest()


def _log_instance(url: str, key: ec.EllipticCurvePrivateKey, start: str) -> dict[str, Any]:
    der = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
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


def _ca_key_usage() -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=False,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=True,
        crl_sign=True,
        encipher_only=False,
        decipher_only=False,
    )


def _leaf_key_usage() -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=False,
        crl_sign=False,
        encipher_only=False,
        decipher_only=False,
    )


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _der(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.DER)


def _pem(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.PEM)


def _descriptor(media_type: str, blob: bytes) -> dict[str, Any]:
    return {"mediaType": media_type, "size": len(blob), "digest": _digest(blob)}


def _digest(blob: bytes) -> str:
    return "sha256:" + hashlib.sha256(blob).hexdigest()


def _json(document: dict[str, Any]) -> bytes:
    return json.dumps(document, separators=(",", ":")).encode()
