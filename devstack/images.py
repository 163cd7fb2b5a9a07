"""Put realistic images and cosign signatures into the local registry, over the OCI distribution API.

What CI does in production (``docker push``, ``cosign sign --key ...``), reproduced with ``requests`` so
that tests and the demo need neither Docker nor cosign. Signatures follow cosign's legacy layout
byte for byte (cosign's specs/SIGNATURE_SPEC.md): a manifest tagged ``sha256-<hex>.sig`` whose
layers are simple-signing payloads, each annotated with a base64 ECDSA P-256/SHA-256 signature;
re-signing appends a layer, as cosign does.

Negative tests use the keyword arguments of ``sign_image`` to produce the failures tagrelay must
reject: a payload for another digest or with the wrong type (``payload=``), a signature over other
bytes (``signed_bytes=``), or a layer signed by another key (another signer).
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import os
import tarfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Protocol

import requests
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

if TYPE_CHECKING:
    from mypy_boto3_kms import KMSClient

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
SIMPLE_SIGNING = "application/vnd.dev.cosign.simplesigning.v1+json"
SIGNATURE_ANNOTATION = "dev.cosignproject.cosign/signature"
COSIGN_SIGNATURE_TYPE = "cosign container image signature"
_ACCEPT = ", ".join(
    (
        OCI_MANIFEST,
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
    )
)
_TIMEOUT = 10


class Signer(Protocol):
    """Produces cosign key-pair signatures: ASN.1 DER ECDSA P-256 over SHA-256 of the payload."""

    @property
    def public_key_pem(self) -> str: ...

    def sign(self, payload: bytes) -> bytes: ...


class CosignKeySigner:
    """A cosign key pair held in memory (what ``cosign generate-key-pair`` produces, unencrypted)."""

    def __init__(self, private_key: ec.EllipticCurvePrivateKey) -> None:
        if not isinstance(private_key.curve, ec.SECP256R1):
            raise ValueError("cosign key pairs are ECDSA P-256")
        self._private_key = private_key

    @classmethod
    def generate(cls) -> CosignKeySigner:
        return cls(ec.generate_private_key(ec.SECP256R1()))

    @classmethod
    def from_private_pem(cls, pem: bytes | str, password: bytes | None = None) -> CosignKeySigner:
        data = pem.encode() if isinstance(pem, str) else pem
        key = serialization.load_pem_private_key(data, password=password)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise ValueError("not an EC private key")
        return cls(key)

    @property
    def public_key_pem(self) -> str:
        return (
            self._private_key.public_key()
            .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
            .decode()
        )

    def sign(self, payload: bytes) -> bytes:
        return self._private_key.sign(payload, ec.ECDSA(hashes.SHA256()))


class KmsSigner:
    """An AWS KMS ECC_NIST_P256 key, as ``cosign sign --key awskms:///...`` uses it (moto in tests)."""

    def __init__(self, key_id: str, *, client: KMSClient | None = None) -> None:
        self.key_id = key_id
        self._client = client if client is not None else _kms_client()
        self._public_key_pem: str | None = None

    @classmethod
    def create(cls, *, alias: str | None = None, client: KMSClient | None = None) -> KmsSigner:
        """Create a new SIGN_VERIFY ECC_NIST_P256 key (and an alias such as ``alias/cosign``)."""
        kms = client if client is not None else _kms_client()
        key_id = kms.create_key(KeyUsage="SIGN_VERIFY", KeySpec="ECC_NIST_P256")["KeyMetadata"]["KeyId"]
        if alias:
            kms.create_alias(AliasName=alias, TargetKeyId=key_id)
        return cls(alias or key_id, client=kms)

    @property
    def public_key_pem(self) -> str:
        if self._public_key_pem is None:
            der = self._client.get_public_key(KeyId=self.key_id)["PublicKey"]
            key = serialization.load_der_public_key(der)
            self._public_key_pem = key.public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            ).decode()
        return self._public_key_pem

    def sign(self, payload: bytes) -> bytes:
        # MessageType RAW: KMS hashes the payload with SHA-256 itself, exactly like cosign's KMS signer.
        answer = self._client.sign(
            KeyId=self.key_id, Message=payload, MessageType="RAW", SigningAlgorithm="ECDSA_SHA_256"
        )
        return answer["Signature"]


def _kms_client() -> KMSClient:
    import boto3

    return boto3.client("kms")


def simple_signing_payload(
    digest: str,
    docker_reference: str,
    *,
    signature_type: str = COSIGN_SIGNATURE_TYPE,
    optional: dict[str, str] | None = None,
) -> bytes:
    """cosign's payload, byte for byte as Go's encoding/json writes it: struct field order, no spaces."""
    document = {
        "critical": {
            "identity": {"docker-reference": docker_reference},
            "image": {"docker-manifest-digest": digest},
            "type": signature_type,
        },
        "optional": optional,
    }
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()


def signature_tag(digest: str) -> str:
    algorithm, _, hex_digest = digest.partition(":")
    return f"{algorithm}-{hex_digest}.sig"


class RegistryWriter(Protocol):
    """Where the helpers below put images and signatures: a registry over HTTP (``HttpRegistry``, what
    a registry URL string means), or an in-memory one (tests/fakes FakeRegistry)."""

    @property
    def host(self) -> str:
        """host[:port], as it appears in image references (``<host>/<repository>``)."""
        ...

    def put_blob(self, repository: str, blob: bytes) -> None: ...

    def put_manifest(self, repository: str, reference: str, body: bytes, *, media_type: str) -> str:
        """Store a manifest under a tag or its digest; returns its digest."""
        ...

    def fetch_manifest(self, repository: str, reference: str) -> tuple[bytes, str] | None:
        """(raw bytes, media type), or None when unknown."""
        ...

    def has_referrers_api(self, repository: str, digest: str) -> bool: ...


class HttpRegistry:
    """A ``RegistryWriter`` over the OCI distribution API, one session per use (``with``)."""

    def __init__(self, registry_url: str) -> None:
        self.base = registry_url.rstrip("/")
        self.session = requests.Session()

    @property
    def host(self) -> str:
        return self.base.split("://", 1)[-1]

    def __enter__(self) -> HttpRegistry:
        return self

    def __exit__(self, *exc: object) -> None:
        self.session.close()

    def put_blob(self, repository: str, blob: bytes) -> None:
        _put_blob(self.session, self.base, repository, blob)

    def put_manifest(self, repository: str, reference: str, body: bytes, *, media_type: str) -> str:
        return _put_manifest(self.session, self.base, repository, reference, body, media_type=media_type)

    def fetch_manifest(self, repository: str, reference: str) -> tuple[bytes, str] | None:
        return _get_manifest(self.session, self.base, repository, reference)

    def has_referrers_api(self, repository: str, digest: str) -> bool:
        probe = self.session.get(f"{self.base}/v2/{repository}/referrers/{digest}", timeout=_TIMEOUT)
        return probe.status_code != 404


Registry = str | RegistryWriter


@contextmanager
def writer(registry: Registry) -> Iterator[RegistryWriter]:
    """A registry URL becomes an ``HttpRegistry`` for the duration; a writer is used as it is."""
    if isinstance(registry, str):
        with HttpRegistry(registry) as http:
            yield http
    else:
        yield registry


def push_image(registry: Registry, repository: str, tags: Sequence[str], *, content: bytes | None = None) -> str:
    """Push a small OCI image (config + one gzip layer) under each tag; returns the manifest digest.

    The layer holds one file with ``content`` (random unless given), so equal content gives an equal
    digest and anything else a new one.
    """
    layer_tar = _tar_with_file("app/content.bin", content if content is not None else os.urandom(32))
    layer = gzip.compress(layer_tar, mtime=0)
    config = _json(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": {"Cmd": ["/app/run"]},
            "rootfs": {"type": "layers", "diff_ids": [_digest(layer_tar)]},
        }
    )
    with writer(registry) as target:
        target.put_blob(repository, config)
        target.put_blob(repository, layer)
        manifest = _json(
            {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": _descriptor(OCI_CONFIG, config),
                "layers": [_descriptor(OCI_LAYER_GZIP, layer)],
            }
        )
        digest = ""
        for tag in tags or [_digest(manifest)]:
            digest = target.put_manifest(repository, tag, manifest, media_type=OCI_MANIFEST)
    return digest


def tag_image(registry: Registry, repository: str, digest: str, tag: str) -> None:
    """Put an existing manifest under another tag (e.g. the branch tag CI pushes after the SHA tag)."""
    with writer(registry) as target:
        found = target.fetch_manifest(repository, digest)
        if found is None:
            raise LookupError(f"{repository}@{digest} is not in the registry")
        raw, media_type = found
        if target.put_manifest(repository, tag, raw, media_type=media_type) != digest:
            raise RuntimeError(f"re-tagging {repository}@{digest} changed its digest")


def delete_manifest(registry_url: str, repository: str, digest: str) -> None:
    """Delete a manifest by digest (and so every tag pointing to it)."""
    response = requests.delete(f"{registry_url.rstrip('/')}/v2/{repository}/manifests/{digest}", timeout=_TIMEOUT)
    response.raise_for_status()


def sign_image(
    registry: Registry,
    repository: str,
    digest: str,
    signer: Signer,
    *,
    docker_reference: str | None = None,
    payload: bytes | None = None,
    signed_bytes: bytes | None = None,
    layer_media_type: str = SIMPLE_SIGNING,
    extra_annotations: dict[str, str] | None = None,
    annotations: dict[str, str] | None = None,
) -> str:
    """Sign ``repository@digest`` the way cosign's legacy layout does; returns the .sig manifest digest.

    ``annotations`` are what ``cosign sign -a key=value`` signs into the payload's ``optional`` map
    (tagrelay's key policies require ``git-sha=<full commit SHA>``).

    If ``sha256-<hex>.sig`` already exists, the new signature is appended as another layer.
    Negative-test knobs: ``payload`` replaces the simple-signing payload (another digest, wrong type);
    ``signed_bytes`` signs other bytes than the payload (a signature that cannot verify);
    ``layer_media_type`` and ``extra_annotations`` alter the layer descriptor.
    """
    with writer(registry) as target:
        if payload is None:
            payload = simple_signing_payload(
                digest, docker_reference or f"{target.host}/{repository}", optional=annotations
            )
        signature = signer.sign(payload if signed_bytes is None else signed_bytes)
        layer = _descriptor(layer_media_type, payload)
        layer["annotations"] = {SIGNATURE_ANNOTATION: base64.b64encode(signature).decode(), **(extra_annotations or {})}
        tag = signature_tag(digest)
        existing = target.fetch_manifest(repository, tag)
        layers: list[dict[str, Any]] = json.loads(existing[0])["layers"] if existing is not None else []
        layers.append(layer)
        target.put_blob(repository, payload)
        # go-containerregistry's config for a signature image: empty except the layers' diff_ids.
        config = _json(
            {
                "architecture": "",
                "config": {},
                "created": "0001-01-01T00:00:00Z",
                "history": [{"created": "0001-01-01T00:00:00Z"}],
                "os": "",
                "rootfs": {"type": "layers", "diff_ids": [entry["digest"] for entry in layers]},
            }
        )
        target.put_blob(repository, config)
        manifest = _json(
            {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": _descriptor(OCI_CONFIG, config),
                "layers": layers,
            }
        )
        return target.put_manifest(repository, tag, manifest, media_type=OCI_MANIFEST)


def put_signature_manifest(registry: Registry, repository: str, digest: str, manifest: bytes) -> str:
    """Store arbitrary bytes as the .sig manifest of ``digest`` (for malformed-signature tests)."""
    with writer(registry) as target:
        return target.put_manifest(repository, signature_tag(digest), manifest, media_type=OCI_MANIFEST)


def put_blob(registry: Registry, repository: str, blob: bytes) -> str:
    """Upload a blob; returns its digest."""
    with writer(registry) as target:
        target.put_blob(repository, blob)
    return _digest(blob)


def _put_blob(session: requests.Session, base: str, repository: str, blob: bytes) -> None:
    digest = _digest(blob)
    if session.head(f"{base}/v2/{repository}/blobs/{digest}", timeout=_TIMEOUT).status_code == 200:
        return
    started = session.post(f"{base}/v2/{repository}/blobs/uploads/", timeout=_TIMEOUT)
    started.raise_for_status()
    location = started.headers["Location"]
    upload_url = location if location.startswith("http") else base + location
    finished = session.put(
        upload_url,
        params={"digest": digest},
        data=blob,
        headers={"Content-Type": "application/octet-stream"},
        timeout=_TIMEOUT,
    )
    finished.raise_for_status()


def _put_manifest(
    session: requests.Session, base: str, repository: str, reference: str, body: bytes, *, media_type: str
) -> str:
    response = session.put(
        f"{base}/v2/{repository}/manifests/{reference}",
        data=body,
        headers={"Content-Type": media_type},
        timeout=_TIMEOUT,
    )
    if response.status_code != 201:
        raise RuntimeError(f"PUT manifest {repository}:{reference} → {response.status_code}: {response.text}")
    digest = _digest(body)
    if response.headers.get("Docker-Content-Digest") != digest:
        raise RuntimeError(f"the registry stored {repository}:{reference} under another digest")
    return digest


def _get_manifest(session: requests.Session, base: str, repository: str, reference: str) -> tuple[bytes, str] | None:
    response = session.get(
        f"{base}/v2/{repository}/manifests/{reference}", headers={"Accept": _ACCEPT}, timeout=_TIMEOUT
    )
    if response.status_code == 404:
        return None
    response.raise_for_status()
    return response.content, response.headers.get("Content-Type", OCI_MANIFEST).split(";")[0]


def _tar_with_file(name: str, content: bytes) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        info = tarfile.TarInfo(name)
        info.size = len(content)
        info.mode = 0o644
        info.mtime = 0  # reproducible: the same content gives the same layer digest
        archive.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


def _descriptor(media_type: str, blob: bytes) -> dict[str, Any]:
    return {"mediaType": media_type, "size": len(blob), "digest": _digest(blob)}


def _digest(blob: bytes) -> str:
    return "sha256:" + hashlib.sha256(blob).hexdigest()


def _json(document: dict[str, Any]) -> bytes:
    return json.dumps(document, separators=(",", ":")).encode()
