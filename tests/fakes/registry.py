"""FakeRegistry: the ImageRegistry port in memory, and a place devstack.images can push to.

Content-addressed like a real registry: a manifest's digest is the SHA-256 of its bytes, a tag points
at one digest, and re-tagging moves it. ``devstack.images`` (push_image, tag_image, sign_image) and
``devstack.sigstore_testing`` (attach_bundle) write to it through the same ``RegistryWriter`` calls
they make over HTTP, so images and cosign signatures are byte for byte what the local registry holds,
and the real signature verifier (adapters/signatures) checks them here as it does there.

``referrers_api`` False answers as distribution 2.8 does (no OCI 1.1 referrers API: None), True as
ECR does.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from tagrelay.adapters.registry import MAX_BLOB_BYTES
from tagrelay.domain.facts import Manifest
from tagrelay.domain.tags import is_digest, is_valid_image_tag
from tagrelay.errors import RegistryError, RegistryResponseTooLarge
from tests.fakes.faults import Faults


@dataclass
class _Repository:
    manifests: dict[str, tuple[bytes, str]] = field(default_factory=dict)  # digest -> (raw, media type)
    tags: dict[str, str] = field(default_factory=dict)
    blobs: dict[str, bytes] = field(default_factory=dict)


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class FakeRegistry:
    def __init__(self, host: str = "registry.example", *, referrers_api: bool = False) -> None:
        self._host = host
        self.referrers_api = referrers_api
        self.repositories: dict[str, _Repository] = {}
        self.faults = Faults("registry")
        self._request_count = 0

    @property
    def request_count(self) -> int:
        return self._request_count

    # --- ImageRegistry ---

    def resolve_tag(self, repository: str, tag: str) -> str | None:
        if not is_valid_image_tag(tag):
            raise ValueError(f"not a valid tag: {tag!r}")
        self._call("resolve_tag")
        return self._repository(repository).tags.get(tag)

    def get_manifest(self, repository: str, reference: str) -> Manifest | None:
        by_digest = is_digest(reference)
        if not by_digest and not is_valid_image_tag(reference):
            raise ValueError(f"not a valid tag or sha256 digest: {reference!r}")
        self._call("get_manifest")
        stored = self._repository(repository)
        digest = reference if by_digest else stored.tags.get(reference)
        found = stored.manifests.get(digest) if digest else None
        if found is None:
            return None
        raw, media_type = found
        return Manifest(digest=_digest(raw), media_type=media_type, raw=raw)

    def get_blob(self, repository: str, digest: str, *, max_bytes: int = MAX_BLOB_BYTES) -> bytes:
        if not is_digest(digest):
            raise ValueError(f"not a sha256 digest: {digest!r}")
        self._call("get_blob")
        blob = self._repository(repository).blobs.get(digest)
        if blob is None:
            raise RegistryError(
                f"blob {repository}@{digest} is unknown to the registry (404), although a manifest refers to it"
            )
        if len(blob) > max_bytes:
            raise RegistryResponseTooLarge(f"blob {repository}@{digest} is larger than {max_bytes} bytes")
        return blob

    def list_referrers(
        self, repository: str, digest: str, *, artifact_type: str | None = None
    ) -> list[dict[str, Any]] | None:
        if not is_digest(digest):
            raise ValueError(f"not a sha256 digest: {digest!r}")
        self._call("list_referrers")
        if not self.referrers_api:
            return None
        found = []
        for manifest_digest, (raw, media_type) in self._repository(repository).manifests.items():
            document = json.loads(raw)
            subject = document.get("subject") if isinstance(document, dict) else None
            if not isinstance(subject, dict) or subject.get("digest") != digest:
                continue
            kind = document.get("artifactType") or (document.get("config") or {}).get("mediaType")
            if artifact_type and kind != artifact_type:
                continue
            descriptor: dict[str, Any] = {"mediaType": media_type, "digest": manifest_digest, "size": len(raw)}
            if kind:
                descriptor["artifactType"] = kind
            if document.get("annotations"):
                descriptor["annotations"] = document["annotations"]
            found.append(descriptor)
        return found

    # --- devstack.images.RegistryWriter: what CI (and cosign) push ---

    @property
    def host(self) -> str:
        return self._host

    def put_blob(self, repository: str, blob: bytes) -> None:
        self.repositories.setdefault(repository, _Repository()).blobs[_digest(blob)] = blob

    def put_manifest(self, repository: str, reference: str, body: bytes, *, media_type: str) -> str:
        stored = self.repositories.setdefault(repository, _Repository())
        digest = _digest(body)
        if is_digest(reference) and reference != digest:
            raise ValueError(f"{repository}@{reference}: the body hashes to {digest}")
        stored.manifests[digest] = (body, media_type)
        if not is_digest(reference):
            stored.tags[reference] = digest
        return digest

    def fetch_manifest(self, repository: str, reference: str) -> tuple[bytes, str] | None:
        stored = self.repositories.get(repository, _Repository())
        digest = reference if is_digest(reference) else stored.tags.get(reference)
        return stored.manifests.get(digest) if digest else None

    def has_referrers_api(self, repository: str, digest: str) -> bool:
        return self.referrers_api

    def delete_tag(self, repository: str, tag: str) -> None:
        self._repository(repository).tags.pop(tag, None)

    # --- internals ---

    def _call(self, method: str) -> None:
        self._request_count += 1
        self.faults.before(method)

    def _repository(self, repository: str) -> _Repository:
        # An unknown repository answers like an unknown tag (404), as a registry does.
        return self.repositories.get(repository, _Repository())
