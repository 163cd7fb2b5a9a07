"""Verification talks to the registry and nothing else: no TUF refresh, no Rekor or Fulcio lookup."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest

from devstack import images
from devstack.process import RunningServer
from devstack.sigstore_testing import KeylessSigner, sign_image_bundle, sign_image_keyless
from tagrelay.adapters.registry import Registry
from tests.signatures.support import REPOSITORY, keyless_app, verify

pytestmark = pytest.mark.stack


def test_verification_connects_only_to_the_registry(
    registry_server: RunningServer, signer: KeylessSigner, trusted_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    legacy = images.push_image(registry_server.url, REPOSITORY, ["legacy"])
    bundled = images.push_image(registry_server.url, REPOSITORY, ["bundled"])
    sign_image_keyless(registry_server.url, REPOSITORY, legacy, signer)
    sign_image_bundle(registry_server.url, REPOSITORY, bundled, signer)
    app = keyless_app(registry_server.url, trusted_root)

    contacted: list[Any] = []
    real_connect = socket.socket.connect

    def recording_connect(self: socket.socket, address: Any) -> None:
        contacted.append(address)
        real_connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", recording_connect)
    registry = Registry(registry_server.url)
    assert verify(app, registry, legacy).status == "verified"
    assert verify(app, registry, bundled).status == "verified"
    port = int(registry_server.url.rsplit(":", 1)[1])
    assert contacted, "the registry was not contacted at all: the recorder is not in the path"
    assert {tuple(address[:2]) for address in contacted} == {("127.0.0.1", port)}
