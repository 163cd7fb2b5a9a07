"""Fixtures of the signature tests: the real Debian registry, and a private Sigstore (trusted) plus a
second one (not trusted), each generated once per module."""

from __future__ import annotations

from pathlib import Path

import pytest

from devstack import images
from devstack.process import RunningServer
from devstack.sigstore_testing import GitHubIdentity, KeylessSigner, TestSigstore
from tagrelay.adapters.registry import Registry
from tests.signatures.support import FULL_SHA, REPOSITORY


@pytest.fixture(scope="module")
def sigstore() -> TestSigstore:
    return TestSigstore.generate("tagrelay-test")


@pytest.fixture(scope="module")
def stranger_sigstore() -> TestSigstore:
    """Another Sigstore instance, which the trusted root does not know."""
    return TestSigstore.generate("stranger")


@pytest.fixture(scope="module")
def trusted_root(sigstore: TestSigstore, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return sigstore.write_trusted_root(tmp_path_factory.mktemp("trust") / "trusted_root.json")


@pytest.fixture
def identity() -> GitHubIdentity:
    """The seed's workflow on main, for the release commit."""
    return GitHubIdentity(sha=FULL_SHA)


@pytest.fixture
def signer(sigstore: TestSigstore, identity: GitHubIdentity) -> KeylessSigner:
    return KeylessSigner(sigstore, identity)


@pytest.fixture
def image(registry_server: RunningServer) -> str:
    """A freshly pushed, unsigned image; returns its digest."""
    return images.push_image(registry_server.url, REPOSITORY, ["1e07581"])


@pytest.fixture
def registry(registry_server: RunningServer) -> Registry:
    return Registry(registry_server.url)
