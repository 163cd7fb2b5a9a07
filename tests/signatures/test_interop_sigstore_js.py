"""Interoperability: a keyless signature made by sigstore-js, with the certificate, SCT, SET and Rekor
body made by the Sigstore project's mock services (@sigstore/mock), verifies in tagrelay; altered
copies of it do not. Needs node and `npm ci` (scripts/bootstrap)."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from devstack import images
from devstack.process import RunningServer
from devstack.sigstore_interop import SigstoreJsSignature, sign_with_sigstore_js
from devstack.sigstore_testing import BUNDLE_ANNOTATION, GitHubIdentity, push_legacy_signature
from tagrelay.adapters.registry import Registry
from tests.signatures.support import FULL_SHA, REPOSITORY, failed_check, keyless_app, verify

pytestmark = pytest.mark.stack


@pytest.fixture(scope="module")
def signed_image(registry_server: RunningServer) -> tuple[str, SigstoreJsSignature]:
    digest = images.push_image(registry_server.url, REPOSITORY, ["sigstore-js"])
    host = registry_server.url.split("://", 1)[1]
    payload = images.simple_signing_payload(digest, f"{host}/{REPOSITORY}")
    return digest, sign_with_sigstore_js(payload, GitHubIdentity(sha=FULL_SHA))


@pytest.fixture(scope="module")
def js_trusted_root(signed_image: tuple[str, SigstoreJsSignature], tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sigstore-js") / "trusted_root.json"
    path.write_text(json.dumps(signed_image[1].trusted_root()))
    return path


def _flip_last_byte(value: str) -> str:
    raw = bytearray(base64.b64decode(value))
    raw[-1] ^= 0x01
    return base64.b64encode(bytes(raw)).decode()


def _attach(server: RunningServer, digest: str, payload: bytes, signature: bytes, annotations: dict[str, str]) -> None:
    """Make this the only signature of ``digest`` (cosign appends; the test wants one layer)."""
    existing = Registry(server.url).get_manifest(REPOSITORY, images.signature_tag(digest))
    if existing is not None:
        images.delete_manifest(server.url, REPOSITORY, existing.digest)
    push_legacy_signature(server.url, REPOSITORY, digest, payload, signature, annotations)


def test_sigstore_js_signature_verifies(
    registry_server: RunningServer, signed_image: tuple[str, SigstoreJsSignature], js_trusted_root: Path
) -> None:
    digest, signed = signed_image
    _attach(registry_server, digest, signed.payload, signed.signature, signed.cosign_annotations())
    verdict = verify(keyless_app(registry_server.url, js_trusted_root), Registry(registry_server.url), digest)
    assert verdict.status == "verified", verdict.reason
    assert verdict.identity is not None
    assert verdict.identity.commit == FULL_SHA
    assert verdict.identity.issuer == "https://token.actions.githubusercontent.com"
    assert [c.status for c in verdict.examined[0].checks] == ["pass"] * len(verdict.examined[0].checks)


Alteration = Callable[[bytes, dict[str, str]], tuple[bytes, dict[str, str]]]


def _other_signature(signature: bytes, annotations: dict[str, str]) -> tuple[bytes, dict[str, str]]:
    altered = bytearray(signature)
    altered[-1] ^= 0x01
    return bytes(altered), annotations


def _other_set(signature: bytes, annotations: dict[str, str]) -> tuple[bytes, dict[str, str]]:
    bundle = json.loads(annotations[BUNDLE_ANNOTATION])
    bundle["SignedEntryTimestamp"] = _flip_last_byte(bundle["SignedEntryTimestamp"])
    return signature, {**annotations, BUNDLE_ANNOTATION: json.dumps(bundle)}


def _other_log_entry(signature: bytes, annotations: dict[str, str]) -> tuple[bytes, dict[str, str]]:
    bundle = json.loads(annotations[BUNDLE_ANNOTATION])
    bundle["Payload"]["logIndex"] += 1
    return signature, {**annotations, BUNDLE_ANNOTATION: json.dumps(bundle)}


@pytest.mark.parametrize(
    ("alter", "check"),
    [(_other_signature, "signature"), (_other_set, "transparency log"), (_other_log_entry, "transparency log")],
    ids=["signature altered", "SET altered", "log index altered"],
)
def test_altered_copies_fail(
    registry_server: RunningServer,
    signed_image: tuple[str, SigstoreJsSignature],
    js_trusted_root: Path,
    alter: Alteration,
    check: str,
) -> None:
    digest, signed = signed_image
    signature, annotations = alter(signed.signature, signed.cosign_annotations())
    _attach(registry_server, digest, signed.payload, signature, annotations)
    verdict = verify(keyless_app(registry_server.url, js_trusted_root), Registry(registry_server.url), digest)
    assert verdict.status == "invalid"
    assert failed_check(verdict)[0] == check
