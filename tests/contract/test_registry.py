"""Contract of the ImageRegistry and SignatureVerifier ports.

The registry: FakeRegistry and the registry adapter against the local registry (distribution, as
ECR speaks the same API) hold what devstack.images pushes and answer reads the same way. The
signatures: FakeSignatures and the cosign verifier, on real signatures in the local registry, agree on
what is missing, verified (for which commit) and invalid.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from devstack.images import CosignKeySigner, Registry, push_image, sign_image, tag_image
from devstack.stack import LocalStack
from tagrelay.config import App
from tagrelay.domain.facts import ReleaseContext
from tagrelay.domain.tags import signature_tag
from tagrelay.errors import RegistryError
from tagrelay.ports import ImageRegistry, SignatureVerifier
from tests.fakes.registry import FakeRegistry
from tests.fakes.signatures import FakeSignatures

REPOSITORY = "contract/web"
SHA = "1e07581" + "c0ffee" * 5 + "abc"


@dataclass
class Side:
    registry: ImageRegistry
    target: Registry  # where devstack.images pushes: the URL, or the fake itself


@pytest.fixture(params=["fake", pytest.param("stack", marks=pytest.mark.stack)])
def side(request: pytest.FixtureRequest) -> Iterator[Side]:
    if request.param == "fake":
        fake = FakeRegistry()
        yield Side(fake, fake)
        return
    from tagrelay.adapters.registry import Registry as RegistryAdapter

    stack: LocalStack = request.getfixturevalue("stack")
    yield Side(RegistryAdapter(stack.registry.url), stack.registry.url)


def test_a_tag_resolves_to_its_digest_and_moves_when_re_tagged(side: Side) -> None:
    first = push_image(side.target, REPOSITORY, ["abc1234"], content=b"first")
    second = push_image(side.target, REPOSITORY, ["def5678"], content=b"second")
    assert side.registry.resolve_tag(REPOSITORY, "abc1234") == first
    assert side.registry.resolve_tag(REPOSITORY, "no-such-tag") is None
    assert side.registry.resolve_tag("contract/no-such-repository", "abc1234") is None
    tag_image(side.target, REPOSITORY, second, "abc1234")
    assert side.registry.resolve_tag(REPOSITORY, "abc1234") == second
    with pytest.raises(ValueError, match="not a valid tag"):
        side.registry.resolve_tag(REPOSITORY, "../etc")


def test_a_manifest_reads_as_stored_by_tag_and_by_digest_and_its_blobs_by_digest(side: Side) -> None:
    digest = push_image(side.target, REPOSITORY, ["abc1234"], content=b"content")
    by_tag, by_digest = (
        side.registry.get_manifest(REPOSITORY, "abc1234"),
        side.registry.get_manifest(REPOSITORY, digest),
    )
    assert by_tag is not None and by_digest is not None
    assert by_tag.digest == by_digest.digest == digest
    assert by_tag.raw == by_digest.raw
    config: dict[str, Any] = by_tag.document()["config"]
    blob = side.registry.get_blob(REPOSITORY, config["digest"])
    assert json.loads(blob)["architecture"] == "amd64"
    assert side.registry.get_manifest(REPOSITORY, "sha256:" + "0" * 64) is None
    with pytest.raises(RegistryError):
        side.registry.get_blob(REPOSITORY, "sha256:" + "0" * 64)


def test_a_cosign_signature_is_a_manifest_under_the_signature_tag(side: Side) -> None:
    digest = push_image(side.target, REPOSITORY, ["abc1234"], content=b"signed")
    signature = sign_image(side.target, REPOSITORY, digest, CosignKeySigner.generate(), annotations={"git-sha": SHA})
    assert side.registry.resolve_tag(REPOSITORY, signature_tag(digest)) == signature
    # distribution 2.8, like the local stack's registry, has no referrers API: None, not an empty list
    assert side.registry.list_referrers(REPOSITORY, digest) is None


def test_each_read_is_counted(side: Side) -> None:
    push_image(side.target, REPOSITORY, ["abc1234"], content=b"counted")
    before = side.registry.request_count
    side.registry.resolve_tag(REPOSITORY, "abc1234")
    side.registry.get_manifest(REPOSITORY, "abc1234")
    assert side.registry.request_count - before == 2


# --- the signature verifier ---


@dataclass
class Signing:
    verifier: SignatureVerifier
    registry: ImageRegistry
    target: Registry
    signer: CosignKeySigner
    fake: FakeSignatures | None

    def sign(self, digest: str, commit: str) -> None:
        if self.fake is not None:
            self.fake.sign(REPOSITORY, digest, commit)
        sign_image(self.target, REPOSITORY, digest, self.signer, annotations={"git-sha": commit})


@pytest.fixture
def signing(side: Side) -> Signing:
    signer = CosignKeySigner.generate()
    if isinstance(side.target, FakeRegistry):
        fake = FakeSignatures()
        return Signing(fake, side.registry, side.target, signer, fake)
    from tagrelay.adapters.signatures import verifier_for

    app = App.model_validate(
        {
            "source_repo": "acme/app",
            "registry": side.target,
            "images": [REPOSITORY],
            "gitops": {"repo": "acme/gitops"},
            "environments": {"prod": {"branch": "main"}},
            "signature": {"key": {"public_key_pem": signer.public_key_pem}},
        }
    )
    return Signing(verifier_for(app), side.registry, side.target, signer, None)


def test_an_unsigned_digest_is_missing_a_signed_one_verified_for_its_commit(signing: Signing) -> None:
    digest = push_image(signing.target, REPOSITORY, ["1e07581"], content=b"to sign")
    release = ReleaseContext(sha=SHA[:7])
    assert signing.verifier.verify(signing.registry, REPOSITORY, digest, release=release).status == "missing"
    signing.sign(digest, SHA)
    verdict = signing.verifier.verify(signing.registry, REPOSITORY, digest, release=release)
    assert (verdict.status, verdict.commit, verdict.acceptable) == ("verified", SHA, True)
    assert verdict.signer


def test_a_signature_for_another_commit_is_invalid(signing: Signing) -> None:
    digest = push_image(signing.target, REPOSITORY, ["1e07581"], content=b"signed for another")
    signing.sign(digest, "0" * 40)
    verdict = signing.verifier.verify(signing.registry, REPOSITORY, digest, release=ReleaseContext(sha=SHA[:7]))
    assert (verdict.status, verdict.acceptable) == ("invalid", False)
    assert verdict.reason
