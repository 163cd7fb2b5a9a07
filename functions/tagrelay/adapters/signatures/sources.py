"""Signature sources: where the signatures of an image digest are stored.

Today cosign's legacy layout (wire-formats.md §2.2), which cosign v1/v2 write by default and v3
writes with ``--new-bundle-format=false``. OCI 1.1 referrers (cosign v2 experimental, cosign v3
bundles, wire-formats.md §2.5/§2.6) will be further sources; a composite source can then try the
referrers first and fall back to the tag, as ``cosign verify`` does.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from tagrelay.adapters.registry import RegistryError
from tagrelay.adapters.signatures.checks import MAX_PAYLOAD_BYTES, parse_signature_layer
from tagrelay.adapters.signatures.model import Candidate, Unusable
from tagrelay.domain.tags import signature_tag

if TYPE_CHECKING:
    from tagrelay.adapters.registry import Manifest, Registry


class LegacyTagSource:
    """cosign's ``sha256-<hex>.sig`` tag: one manifest per signed digest, one layer per signature.

    Costs one manifest GET, then one blob GET per layer examined.
    """

    def location(self, digest: str) -> str:
        return f"tag {signature_tag(digest)}"

    def find(self, registry: Registry, repository: str, digest: str) -> Iterator[Candidate | Unusable] | None:
        tag = signature_tag(digest)
        try:
            manifest = registry.get_manifest(repository, tag)
        except RegistryError as exc:
            return iter([Unusable(origin=tag, problem=f"the signature manifest is unusable: {exc}")])
        if manifest is None:
            return None
        return self._candidates(registry, repository, tag, manifest)

    @staticmethod
    def _candidates(
        registry: Registry, repository: str, tag: str, manifest: Manifest
    ) -> Iterator[Candidate | Unusable]:
        layers = manifest.document().get("layers")
        if not isinstance(layers, list) or not layers:
            yield Unusable(origin=f"{tag} ({manifest.digest})", problem="the signature manifest has no layers")
            return
        for index, descriptor in enumerate(layers, start=1):
            origin = f"{tag} layer {index}/{len(layers)}"
            layer = parse_signature_layer(descriptor)
            if isinstance(layer, str):  # refused without downloading anything
                yield Unusable(origin=origin, problem=layer)
                continue
            origin = f"{origin} ({layer.digest})"
            try:
                payload = registry.get_blob(repository, layer.digest, max_bytes=MAX_PAYLOAD_BYTES)
            except RegistryError as exc:
                yield Unusable(origin=origin, problem=f"the payload cannot be read: {exc}")
                continue
            yield Candidate(
                origin=origin,
                payload_type=layer.media_type,
                payload=payload,
                payload_digest=layer.digest,
                signature=layer.signature,
                annotations=layer.annotations,
            )
