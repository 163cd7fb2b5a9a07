"""Keyless releases through the promoter handler: the seed's identity, bound to the release's commit.

Signatures come from the suite's own Sigstore (a Fulcio CA, a Rekor log, a CT log): cosign's legacy
layout, and cosign v3 bundles found through the referrers tag-schema index (the Debian registry has no
referrers API) or announced by an untagged referrer push, as ECR reports bundles.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from devstack.events import ecr_push_event
from devstack.lambda_context import lambda_context
from devstack.scenario import Release, SeedScenario
from devstack.sigstore_testing import (
    GitHubIdentity,
    KeylessSigner,
    TestSigstore,
    demo_sigstore,
    keyless_signature_config,
    sign_image_bundle,
    sign_image_keyless,
)
from tagrelay.adapters.store import Ledger
from tagrelay.domain.tags import SIGSTORE_BUNDLE_TYPES, signature_tag

pytestmark = pytest.mark.stack


@pytest.fixture(scope="module")
def private_sigstore(tmp_path_factory: pytest.TempPathFactory) -> tuple[TestSigstore, Path]:
    return demo_sigstore(tmp_path_factory.mktemp("sigstore"))


@pytest.fixture
def keyless_env(
    private_sigstore: tuple[TestSigstore, Path], promoter_env: Callable[..., Path]
) -> Callable[[], KeylessSigner]:
    sigstore, trusted_root = private_sigstore
    promoter_env(signature=keyless_signature_config(trusted_root))
    return lambda: KeylessSigner(sigstore)


def invoke(event: dict[str, Any]) -> dict[str, Any]:
    from tagrelay.handlers.promoter import handler

    result: dict[str, Any] = handler(event, lambda_context("promoter"))
    return result


def unsigned_release(scenario: SeedScenario, branch: str = "main") -> Release:
    sha = scenario.commit(branch)
    release = scenario.release(sha, branch=branch, sign=False)
    assert {invoke(e)["reason"] for e in release.events} <= {"signature_missing", "release_tag_not_seen"}
    return release


def test_a_keyless_legacy_signature_from_the_seed_workflow_promotes(
    scenario: SeedScenario, keyless_env: Callable[[], KeylessSigner]
) -> None:
    release = unsigned_release(scenario)
    signer = keyless_env()
    signer.identity = GitHubIdentity().for_commit(release.sha, branch="main")
    results = []
    for image, digest in release.digests.items():
        signature = sign_image_keyless(scenario.stack.registry.url, image, digest, signer)
        results.append(invoke(ecr_push_event(image, signature_tag(digest), signature)))
    assert [r["decision"] for r in results] == ["wait", "promote"]
    record = next(
        r for r in Ledger("tagrelay-ledger").history("mosaic-life", "prod").records if r.outcome == "committed"
    )
    signer_line = record.signers[scenario.images[0]]
    assert signer_line.startswith(
        "keyless https://github.com/mosaic-stories/mosaic-life/.github/workflows/build-push.yml@refs/heads/main"
    )
    assert release.sha in signer_line


def test_cosign_v3_bundles_promote_through_the_tag_fallback_and_untagged_referrer_events(
    scenario: SeedScenario, keyless_env: Callable[[], KeylessSigner]
) -> None:
    release = unsigned_release(scenario)
    signer = keyless_env()
    signer.identity = GitHubIdentity().for_commit(release.sha, branch="main")
    web, api = scenario.images
    registry = scenario.stack.registry.url

    # web: the registry has no referrers API, so cosign also updates the sha256-<hex> index tag.
    sign_image_bundle(registry, web, release.digests[web], signer, tag_fallback=True)
    index_tag = release.digests[web].replace(":", "-")
    first = invoke(ecr_push_event(web, index_tag, "sha256:" + "b" * 64))
    assert (first["decision"], first["reason"]) == ("wait", "signature_missing")

    # core-api: ECR (which has the referrers API) reports the bundle as an untagged push.
    referrer = sign_image_bundle(registry, api, release.digests[api], signer, tag_fallback=True)
    untagged = ecr_push_event(api, None, referrer)
    untagged["detail"]["artifact-media-type"] = next(iter(sorted(SIGSTORE_BUNDLE_TYPES)))
    last = invoke(untagged)
    assert last["decision"] == "promote"
    assert f'imageTag: "{release.tag}"'.encode() in scenario.values_file("prod")


def test_a_keyless_signature_for_another_commit_is_rejected(
    scenario: SeedScenario, keyless_env: Callable[[], KeylessSigner]
) -> None:
    release = unsigned_release(scenario)
    signer = keyless_env()
    other_commit = scenario.commit("main")  # signed by the right workflow, but for a different commit
    signer.identity = GitHubIdentity().for_commit(other_commit, branch="main")
    results = [
        invoke(
            ecr_push_event(
                image, signature_tag(digest), sign_image_keyless(scenario.stack.registry.url, image, digest, signer)
            )
        )
        for image, digest in release.digests.items()
    ]
    assert (results[-1]["decision"], results[-1]["reason"]) == ("reject", "signature_invalid")
    assert release.tag in results[-1]["message"] or "commit" in results[-1]["message"]


def test_a_develop_build_signature_does_not_satisfy_prod(
    scenario: SeedScenario, keyless_env: Callable[[], KeylessSigner]
) -> None:
    release = unsigned_release(scenario)  # tagged main → prod, whose policy wants refs/heads/main
    signer = keyless_env()
    signer.identity = GitHubIdentity().for_commit(release.sha, branch="develop")
    results = [
        invoke(
            ecr_push_event(
                image, signature_tag(digest), sign_image_keyless(scenario.stack.registry.url, image, digest, signer)
            )
        )
        for image, digest in release.digests.items()
    ]
    assert (results[-1]["decision"], results[-1]["reason"]) == ("reject", "signature_invalid")
