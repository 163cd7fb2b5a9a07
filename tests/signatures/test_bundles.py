"""cosign v3 signatures: Sigstore bundles stored as OCI 1.1 referrers, verified with sigstore-python.

The Debian registry has no referrers API, so there the bundles are found through the referrers tag
schema (``sha256-<hex>`` index), as cosign writes them for such registries; the referrers API itself
is served by devstack's referrers proxy in front of the same registry.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from devstack import images
from devstack.process import RunningServer
from devstack.referrers_proxy import start_referrers_proxy
from devstack.sigstore_testing import (
    BUNDLE_MEDIA_TYPE,
    GitHubIdentity,
    KeylessSigner,
    TestSigstore,
    add_to_referrers_index,
    attach_bundle,
    in_toto_statement,
    sign_image_bundle,
    sign_image_keyless,
)
from tagrelay.adapters.registry import Registry
from tests.signatures.support import FULL_SHA, REPOSITORY, SHA, failed_check, keyless_app, verify

pytestmark = pytest.mark.stack

OTHER_DIGEST = "sha256:" + "cd" * 32


@pytest.fixture(scope="module")
def proxy(registry_server: RunningServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    server = start_referrers_proxy(registry_server.url, tmp_path_factory.mktemp("proxy"))
    yield server
    server.stop()


# --- accepted ---------------------------------------------------------------------------------------


def test_bundle_found_through_the_referrers_tag_schema(
    registry_server: RunningServer, registry: Registry, image: str, signer: KeylessSigner, trusted_root: Path
) -> None:
    sign_image_bundle(registry_server.url, REPOSITORY, image, signer)
    verdict = verify(keyless_app(registry_server.url, trusted_root), registry, image)
    assert verdict.status == "verified", verdict.reason
    assert verdict.identity is not None and verdict.identity.commit == FULL_SHA
    assert f"referrers tag {image.replace(':', '-')}" in verdict.examined[0].origin
    assert [c.name for c in verdict.examined[0].checks] == [
        "download",
        "bundle",
        "sigstore",
        "issuer",
        "identity",
        "repository",
        "ref",
        "commit",
        "claims",
    ]
    # .sig tag (absent), referrers API (absent here), referrers tag, referrer manifest, bundle blob
    assert registry.request_count == 5


def test_bundle_found_through_the_referrers_api(
    proxy: RunningServer, image: str, signer: KeylessSigner, trusted_root: Path
) -> None:
    sign_image_bundle(proxy.url, REPOSITORY, image, signer)
    # The proxy answers the referrers API, so no referrers tag was written:
    registry = Registry(proxy.url)
    assert registry.get_manifest(REPOSITORY, image.replace(":", "-")) is None
    registry = Registry(proxy.url)
    verdict = verify(keyless_app(proxy.url, trusted_root), registry, image)
    assert verdict.status == "verified", verdict.reason
    assert "referrers API" in verdict.examined[0].origin
    assert registry.request_count == 4  # .sig tag (absent), referrers API, referrer manifest, bundle blob


def test_legacy_signature_is_preferred_when_both_layouts_exist(
    registry_server: RunningServer, registry: Registry, image: str, signer: KeylessSigner, trusted_root: Path
) -> None:
    sign_image_bundle(registry_server.url, REPOSITORY, image, signer)
    sign_image_keyless(registry_server.url, REPOSITORY, image, signer)
    verdict = verify(keyless_app(registry_server.url, trusted_root), registry, image)
    assert verdict.status == "verified"
    assert ".sig" in verdict.examined[0].origin
    assert registry.request_count == 2


def test_a_rejected_legacy_signature_falls_through_to_the_bundle(
    registry_server: RunningServer,
    registry: Registry,
    image: str,
    sigstore: TestSigstore,
    identity: GitHubIdentity,
    trusted_root: Path,
) -> None:
    sign_image_keyless(registry_server.url, REPOSITORY, image, KeylessSigner(sigstore, replace(identity, sha="f" * 40)))
    sign_image_bundle(registry_server.url, REPOSITORY, image, KeylessSigner(sigstore, identity))
    verdict = verify(keyless_app(registry_server.url, trusted_root), registry, image)
    assert verdict.status == "verified"
    assert [e.accepted for e in verdict.examined] == [False, True]


# --- the negative corpus for bundles ----------------------------------------------------------------


def test_bundle_whose_subject_is_another_digest(
    registry_server: RunningServer, registry: Registry, image: str, signer: KeylessSigner, trusted_root: Path
) -> None:
    sign_image_bundle(registry_server.url, REPOSITORY, image, signer, statement=in_toto_statement(OTHER_DIGEST))
    verdict = verify(keyless_app(registry_server.url, trusted_root), registry, image)
    assert failed_check(verdict) == ("claims", f"the statement's subject is {OTHER_DIGEST}, not {image}")


def test_bundle_with_another_predicate_type(
    registry_server: RunningServer, registry: Registry, image: str, signer: KeylessSigner, trusted_root: Path
) -> None:
    statement = in_toto_statement(image, predicate_type="https://slsa.dev/provenance/v1")
    sign_image_bundle(registry_server.url, REPOSITORY, image, signer, statement=statement)
    verdict = verify(keyless_app(registry_server.url, trusted_root), registry, image)
    assert failed_check(verdict) == (
        "claims",
        "the predicate type is 'https://slsa.dev/provenance/v1', not cosign's image signature "
        "'https://sigstore.dev/cosign/sign/v1'",
    )


@pytest.mark.parametrize(
    ("change", "check", "reason"),
    [
        ({"issuer": "https://gitlab.com"}, "issuer", "the certificate's issuer is 'https://gitlab.com'"),
        ({"ref": "refs/heads/develop"}, "identity", "the certificate's SAN is"),
        ({"sha": "0123456" + "0" * 33}, "commit", f"but the tag names {SHA}"),
    ],
    ids=["wrong issuer", "wrong SAN", "commit does not match the tag"],
)
def test_bundle_identity_is_checked_like_a_legacy_signature(
    registry_server: RunningServer,
    registry: Registry,
    image: str,
    sigstore: TestSigstore,
    identity: GitHubIdentity,
    trusted_root: Path,
    change: dict[str, Any],
    check: str,
    reason: str,
) -> None:
    sign_image_bundle(registry_server.url, REPOSITORY, image, KeylessSigner(sigstore, replace(identity, **change)))
    verdict = verify(keyless_app(registry_server.url, trusted_root), registry, image)
    name, detail = failed_check(verdict)
    assert (name, reason in detail) == (check, True), detail


def test_bundle_from_an_untrusted_ca(
    registry_server: RunningServer,
    registry: Registry,
    image: str,
    sigstore: TestSigstore,
    stranger_sigstore: TestSigstore,
    identity: GitHubIdentity,
    trusted_root: Path,
) -> None:
    signer = KeylessSigner(sigstore, identity, ca=stranger_sigstore)
    sign_image_bundle(registry_server.url, REPOSITORY, image, signer)
    verdict = verify(keyless_app(registry_server.url, trusted_root), registry, image)
    name, detail = failed_check(verdict)
    assert name == "sigstore"
    assert "failed to build timestamp certificate chain" in detail


def test_bundle_with_a_tampered_statement(
    registry_server: RunningServer, registry: Registry, image: str, signer: KeylessSigner, trusted_root: Path
) -> None:
    bundle = json.loads(signer.sign_bundle(in_toto_statement(OTHER_DIGEST)))
    bundle["dsseEnvelope"]["payload"] = base64.b64encode(in_toto_statement(image)).decode()
    sign_image_bundle(registry_server.url, REPOSITORY, image, signer, bundle=json.dumps(bundle).encode())
    verdict = verify(keyless_app(registry_server.url, trusted_root), registry, image)
    name, detail = failed_check(verdict)
    assert name == "sigstore"
    assert "signature" in detail.lower()


def test_not_a_bundle(registry_server: RunningServer, registry: Registry, image: str, trusted_root: Path) -> None:
    attach_bundle(registry_server.url, REPOSITORY, image, b'{"mediaType": "' + BUNDLE_MEDIA_TYPE.encode() + b'"}')
    verdict = verify(keyless_app(registry_server.url, trusted_root), registry, image)
    assert failed_check(verdict) == (
        "bundle",
        "the bundle has no DSSE envelope (cosign v3 signs images with an in-toto statement)",
    )


def test_referrer_of_another_image_listed_under_this_image(
    registry_server: RunningServer, registry: Registry, image: str, signer: KeylessSigner, trusted_root: Path
) -> None:
    other = images.push_image(registry_server.url, REPOSITORY, ["other"])
    referrer = sign_image_bundle(registry_server.url, REPOSITORY, other, signer)
    manifest = Registry(registry_server.url).get_manifest(REPOSITORY, referrer)
    assert manifest is not None
    descriptor = {
        "mediaType": images.OCI_MANIFEST,
        "digest": referrer,
        "size": len(manifest.raw),
        "artifactType": BUNDLE_MEDIA_TYPE,
    }
    add_to_referrers_index(registry_server.url, REPOSITORY, image, descriptor)
    verdict = verify(keyless_app(registry_server.url, trusted_root), registry, image)
    assert verdict.status == "invalid"
    assert failed_check(verdict) == ("layout", f"the referrer's subject is {other}, not this image")
