"""Signature sources: where the signatures of an image digest are stored.

* ``LegacyTagSource``: cosign's legacy layout (cosign's specs/SIGNATURE_SPEC.md), which cosign v1/v2 write by
  default and v3 writes with ``--new-bundle-format=false``;
* ``ReferrersSource``: cosign v3 Sigstore bundles stored as OCI 1.1 referrers (§2.6), found through
  the referrers API, or through the referrers tag schema on registries without it;
* ``AnySource``: several sources in turn, as ``cosign verify`` looks for bundles and then for the tag.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from tagrelay.adapters.signatures.checks import MAX_PAYLOAD_BYTES, parse_signature_layer
from tagrelay.adapters.signatures.model import Candidate, SignatureSource, Unusable
from tagrelay.domain.decision import Reason
from tagrelay.domain.tags import is_digest, signature_tag
from tagrelay.errors import RegistryError, RegistryResponseTooLarge

if TYPE_CHECKING:
    from tagrelay.domain.facts import Manifest
    from tagrelay.ports import ImageRegistry


def _unusable(origin: str, problem: str, exc: RegistryError) -> Unusable:
    code = Reason.RESPONSE_TOO_LARGE if isinstance(exc, RegistryResponseTooLarge) else None
    return Unusable(origin=origin, problem=f"{problem}: {exc}", code=code)


# Signatures examined per image: cosign adds one layer (or one referrer) per signing run, so an image has
# a handful; thousands are an attack on the promoter's time, not signatures (limits.signature_layers_max).
MAX_SIGNATURE_LAYERS = 16


class LegacyTagSource:
    """cosign's ``sha256-<hex>.sig`` tag: one manifest per signed digest, one layer per signature.

    Costs one manifest GET, then one blob GET per layer examined; at most ``max_layers`` layers are.
    """

    def __init__(self, *, max_layers: int = MAX_SIGNATURE_LAYERS, max_payload_bytes: int = MAX_PAYLOAD_BYTES) -> None:
        self.max_layers = max_layers
        self.max_payload_bytes = max_payload_bytes

    def location(self, digest: str) -> str:
        return f"tag {signature_tag(digest)}"

    def find(self, registry: ImageRegistry, repository: str, digest: str) -> Iterator[Candidate | Unusable] | None:
        tag = signature_tag(digest)
        try:
            manifest = registry.get_manifest(repository, tag)
        except RegistryError as exc:
            return iter([_unusable(tag, "the signature manifest is unusable", exc)])
        if manifest is None:
            return None
        return self._candidates(registry, repository, tag, manifest)

    def _candidates(
        self, registry: ImageRegistry, repository: str, tag: str, manifest: Manifest
    ) -> Iterator[Candidate | Unusable]:
        layers = manifest.document().get("layers")
        if not isinstance(layers, list) or not layers:
            yield Unusable(origin=f"{tag} ({manifest.digest})", problem="the signature manifest has no layers")
            return
        for index, descriptor in enumerate(layers, start=1):
            origin = f"{tag} layer {index}/{len(layers)}"
            if index > self.max_layers:
                yield Unusable(
                    origin=f"{tag} layers {index}-{len(layers)}",
                    problem=f"not examined: only the first {self.max_layers} signature layers are "
                    "(limits.signature_layers_max)",
                )
                return
            layer = parse_signature_layer(descriptor, max_bytes=self.max_payload_bytes)
            if isinstance(layer, str):  # refused without downloading anything
                yield Unusable(origin=origin, problem=layer)
                continue
            origin = f"{origin} ({layer.digest})"
            try:
                payload = registry.get_blob(repository, layer.digest, max_bytes=self.max_payload_bytes)
            except RegistryError as exc:
                yield _unusable(origin, "the payload cannot be read", exc)
                continue
            yield Candidate(
                origin=origin,
                payload_type=layer.media_type,
                payload=payload,
                payload_digest=layer.digest,
                signature=layer.signature,
                annotations=layer.annotations,
            )


BUNDLE_ARTIFACT_TYPE = "application/vnd.dev.sigstore.bundle.v0.3+json"
BUNDLE_LAYER_TYPES = frozenset({BUNDLE_ARTIFACT_TYPE, "application/vnd.dev.sigstore.bundle+json;version=0.3"})
# A keyless bundle is 5-10 KiB (certificate, log entry, envelope); RFC 3161 timestamps add a few more.
MAX_BUNDLE_BYTES = 256 * 1024
# Each referrer costs two requests; an image has one per signing run, so more than this is noise.
MAX_BUNDLES = 16


class ReferrersSource:
    """cosign v3 bundles: OCI 1.1 referrer manifests whose ``subject`` is the image (cosign's pkg/oci/remote/write.go; OCI distribution-spec 1.1, referrers).

    Costs one request to list them (the referrers API; where it is missing, one more for the referrers
    tag ``sha256-<hex>``), then two per bundle examined (its manifest and its bundle blob); at most
    ``max_bundles`` are.
    """

    def __init__(self, *, max_bundles: int = MAX_BUNDLES, max_bundle_bytes: int = MAX_BUNDLE_BYTES) -> None:
        self.max_bundles = max_bundles
        self.max_bundle_bytes = max_bundle_bytes

    def location(self, digest: str) -> str:
        return f"the OCI referrers of {digest} (API, or tag {digest.replace(':', '-')})"

    def find(self, registry: ImageRegistry, repository: str, digest: str) -> Iterator[Candidate | Unusable] | None:
        fallback_tag = digest.replace(":", "-")
        try:
            descriptors = registry.list_referrers(repository, digest, artifact_type=BUNDLE_ARTIFACT_TYPE)
            via = "referrers API"
            if descriptors is None:
                # Referrers tag schema (distribution-spec 1.1): an image index under the digest's tag.
                index = registry.get_manifest(repository, fallback_tag)
                if index is None:
                    return None
                listed = index.document().get("manifests")
                descriptors = [d for d in listed if isinstance(d, dict)] if isinstance(listed, list) else []
                via = f"referrers tag {fallback_tag}"
        except RegistryError as exc:
            return iter([_unusable(f"referrers of {digest}", "the referrers are unreadable", exc)])
        bundles = [d for d in descriptors if d.get("artifactType") == BUNDLE_ARTIFACT_TYPE]
        if not bundles:
            return None
        return self._candidates(registry, repository, digest, bundles, via)

    def _candidates(
        self, registry: ImageRegistry, repository: str, digest: str, bundles: Sequence[dict[str, Any]], via: str
    ) -> Iterator[Candidate | Unusable]:
        for number, descriptor in enumerate(bundles, start=1):
            reference = descriptor.get("digest")
            origin = f"bundle {number}/{len(bundles)} ({via}, {reference})"
            if number > self.max_bundles:
                yield Unusable(
                    origin=f"bundles {number}-{len(bundles)} ({via})",
                    problem=f"not examined: only the first {self.max_bundles} bundles are (limits.referrers_max)",
                )
                return
            if not isinstance(reference, str) or not is_digest(reference):
                yield Unusable(origin=origin, problem="the referrer's digest is not a sha256 digest")
                continue
            try:
                manifest = registry.get_manifest(repository, reference)
                if manifest is None:
                    yield Unusable(origin=origin, problem="the referrer is listed, but its manifest does not exist")
                    continue
                layer = _bundle_layer(manifest.document(), digest, self.max_bundle_bytes)
                if isinstance(layer, str):
                    yield Unusable(origin=origin, problem=layer)
                    continue
                payload = registry.get_blob(repository, layer["digest"], max_bytes=self.max_bundle_bytes)
            except RegistryError as exc:
                yield _unusable(origin, "the bundle cannot be read", exc)
                continue
            yield Candidate(
                origin=origin,
                payload_type=layer["mediaType"],
                payload=payload,
                payload_digest=layer["digest"],
                signature=b"",
            )


def _bundle_layer(document: dict[str, Any], digest: str, max_bytes: int = MAX_BUNDLE_BYTES) -> dict[str, Any] | str:
    """The bundle layer of a referrer manifest, or why the manifest is not a bundle of this image."""
    subject = document.get("subject")
    subject_digest = subject.get("digest") if isinstance(subject, dict) else None
    if subject_digest != digest:
        # A tag-schema index can list anything; only the manifest's own subject binds it to the image.
        return f"the referrer's subject is {subject_digest}, not this image"
    layers = document.get("layers")
    if not isinstance(layers, list) or len(layers) != 1 or not isinstance(layers[0], dict):
        return "the referrer has not exactly one layer, so it is not a cosign bundle"
    layer = layers[0]
    size, layer_digest = layer.get("size"), layer.get("digest")
    if layer.get("mediaType") not in BUNDLE_LAYER_TYPES:
        return f"the referrer's layer is {layer.get('mediaType')!r}, not a Sigstore bundle v0.3"
    if not isinstance(layer_digest, str) or not is_digest(layer_digest):
        return "the bundle layer's digest is not a sha256 digest"
    if not isinstance(size, int) or isinstance(size, bool) or not 0 < size <= max_bytes:
        return f"the bundle layer's size {size!r} is not between 1 and {max_bytes} bytes"
    return layer


class AnySource:
    """Several sources, examined in order; a signature is missing only when every source has none.

    Each source is asked only when the ones before it are exhausted, so a digest whose first source
    verifies costs no request to the others.
    """

    def __init__(self, sources: Sequence[SignatureSource]) -> None:
        self.sources = tuple(sources)

    def location(self, digest: str) -> str:
        return " or ".join(source.location(digest) for source in self.sources)

    def find(self, registry: ImageRegistry, repository: str, digest: str) -> Iterator[Candidate | Unusable] | None:
        for index, source in enumerate(self.sources):
            found = source.find(registry, repository, digest)
            if found is not None:
                return self._chain(found, self.sources[index + 1 :], registry, repository, digest)
        return None

    @staticmethod
    def _chain(
        first: Iterator[Candidate | Unusable],
        rest: Sequence[SignatureSource],
        registry: ImageRegistry,
        repository: str,
        digest: str,
    ) -> Iterator[Candidate | Unusable]:
        yield from first
        for source in rest:
            yield from source.find(registry, repository, digest) or ()
