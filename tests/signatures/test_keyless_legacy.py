"""Keyless signatures in cosign's legacy layout (``sha256-<hex>.sig`` with certificate, chain and Rekor
bundle annotations), signed by the test Sigstore and read from the real registry."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from devstack import images
from devstack.process import RunningServer
from devstack.sigstore_testing import (
    BUNDLE_ANNOTATION,
    GitHubIdentity,
    KeylessSigner,
    TestSigstore,
    sign_image_keyless,
)
from tagrelay.adapters.registry import Registry
from tests.signatures.support import FULL_SHA, REPOSITORY, SHA, failed_check, keyless_app, verify

pytestmark = pytest.mark.stack

SEED_SAN = "https://github.com/mosaic-stories/mosaic-life/.github/workflows/build-push.yml@refs/heads/main"


# --- accepted ---------------------------------------------------------------------------------------


def test_keyless_signature_verifies_and_names_the_identity(
    registry_server: RunningServer, registry: Registry, image: str, signer: KeylessSigner, trusted_root: Path
) -> None:
    sign_image_keyless(registry_server.url, REPOSITORY, image, signer)
    verdict = verify(keyless_app(registry_server.url, trusted_root), registry, image)
    assert verdict.status == "verified", verdict.reason
    assert verdict.identity is not None
    assert verdict.identity.subject == SEED_SAN
    assert verdict.identity.commit == FULL_SHA
    assert verdict.signer == (
        f"keyless {SEED_SAN} (issuer https://token.actions.githubusercontent.com, "
        f"repository mosaic-stories/mosaic-life, ref refs/heads/main, commit {FULL_SHA})"
    )
    names = [check.name for check in verdict.examined[0].checks]
    assert names == [
        "download",
        "certificate",
        "signature",
        "transparency log",
        "log entry",
        "validity",
        "chain",
        "sct",
        "issuer",
        "identity",
        "repository",
        "ref",
        "commit",
        "claims",
    ]
    assert all(check.status == "pass" for check in verdict.examined[0].checks)
    assert registry.request_count == 2  # the .sig manifest and its payload: no referrers request


def test_any_one_acceptable_signature_suffices_and_is_the_one_recorded(
    registry_server: RunningServer,
    registry: Registry,
    image: str,
    sigstore: TestSigstore,
    identity: GitHubIdentity,
    trusted_root: Path,
) -> None:
    fork = replace(identity, repository="someone/fork", san=None)
    sign_image_keyless(registry_server.url, REPOSITORY, image, KeylessSigner(sigstore, fork))
    sign_image_keyless(registry_server.url, REPOSITORY, image, KeylessSigner(sigstore, identity))
    verdict = verify(keyless_app(registry_server.url, trusted_root), registry, image)
    assert verdict.status == "verified"
    assert [e.accepted for e in verdict.examined] == [False, True]
    assert "someone/fork" in verdict.examined[0].reason
    assert verdict.identity is not None and verdict.identity.repository == "mosaic-stories/mosaic-life"
    assert "layer 1/2" in verdict.details[0] and "rejected" in verdict.details[0]


def test_branch_placeholder_follows_the_target_environment(
    registry_server: RunningServer,
    registry: Registry,
    image: str,
    sigstore: TestSigstore,
    identity: GitHubIdentity,
    trusted_root: Path,
) -> None:
    develop = KeylessSigner(sigstore, identity.for_commit(FULL_SHA, branch="develop"))
    sign_image_keyless(registry_server.url, REPOSITORY, image, develop)
    app = keyless_app(registry_server.url, trusted_root)
    assert verify(app, registry, image, envs=("staging",)).status == "verified"
    prod = verify(app, registry, image, envs=("prod",))
    assert prod.status == "invalid"
    assert failed_check(prod) == (
        "identity",
        f"the certificate's SAN is {SEED_SAN.replace('main', 'develop')}, not {SEED_SAN}",
    )
    both = verify(app, registry, image, envs=("staging", "prod"))
    assert both.status == "invalid"  # every target environment's policy must hold
    assert failed_check(both)[0] == "identity [prod]"


def test_identity_regexp_must_match_the_whole_san(
    registry_server: RunningServer, registry: Registry, image: str, signer: KeylessSigner, trusted_root: Path
) -> None:
    sign_image_keyless(registry_server.url, REPOSITORY, image, signer)
    anchored = keyless_app(
        registry_server.url,
        trusted_root,
        identity=None,
        identity_regexp=r"https://github\.com/mosaic-stories/mosaic-life/\.github/workflows/[a-z-]+\.yml@refs/heads/{branch}",
    )
    assert verify(anchored, registry, image).status == "verified"
    partial = keyless_app(registry_server.url, trusted_root, identity=None, identity_regexp="mosaic-life")
    verdict = verify(partial, registry, image)
    assert failed_check(verdict)[0] == "identity"
    assert "as a whole" in failed_check(verdict)[1]


def test_older_certificate_with_only_the_deprecated_extensions(
    registry_server: RunningServer,
    registry: Registry,
    image: str,
    sigstore: TestSigstore,
    identity: GitHubIdentity,
    trusted_root: Path,
) -> None:
    old = KeylessSigner(sigstore, replace(identity, extensions_v2=False))
    sign_image_keyless(registry_server.url, REPOSITORY, image, old)
    verdict = verify(keyless_app(registry_server.url, trusted_root, trigger="push"), registry, image)
    assert verdict.status == "verified", verdict.reason
    assert verdict.identity is not None and verdict.identity.commit == FULL_SHA  # read from .3


def test_sct_check_can_be_turned_off(
    registry_server: RunningServer, registry: Registry, image: str, signer: KeylessSigner, trusted_root: Path
) -> None:
    sign_image_keyless(registry_server.url, REPOSITORY, image, signer, sct=False)
    strict = verify(keyless_app(registry_server.url, trusted_root), registry, image)
    assert failed_check(strict) == (
        "sct",
        "the certificate has no embedded SCT: it was not logged to a certificate transparency log",
    )
    relaxed = verify(keyless_app(registry_server.url, trusted_root, verify_sct=False), registry, image)
    assert relaxed.status == "verified"
    assert ("sct", "skip") in [(c.name, c.status) for c in relaxed.examined[0].checks]


def test_no_signature_is_missing(
    registry: Registry, image: str, registry_server: RunningServer, trusted_root: Path
) -> None:
    verdict = verify(keyless_app(registry_server.url, trusted_root), registry, image)
    assert verdict.status == "missing"
    assert registry.request_count == 3  # the .sig tag, the referrers API, the referrers tag


# --- the negative corpus: each case rejected by its own check, with its own reason -------------------

Sign = Callable[[RunningServer, str, TestSigstore, TestSigstore, GitHubIdentity], None]


def _signed(identity_change: dict[str, Any] | None = None, **sign_options: Any) -> Sign:
    def sign(server: RunningServer, digest: str, trusted: TestSigstore, _: TestSigstore, who: GitHubIdentity) -> None:
        signer = KeylessSigner(trusted, replace(who, **(identity_change or {})))
        sign_image_keyless(server.url, REPOSITORY, digest, signer, **sign_options)

    return sign


def _altered_bundle(change: Callable[[dict[str, Any]], None]) -> Sign:
    def alter(annotations: dict[str, str]) -> dict[str, str]:
        bundle = json.loads(annotations[BUNDLE_ANNOTATION])
        change(bundle)
        return {**annotations, BUNDLE_ANNOTATION: json.dumps(bundle)}

    return _signed(alter=alter)


def _without_bundle() -> Sign:
    return _signed(alter=lambda annotations: {k: v for k, v in annotations.items() if k != BUNDLE_ANNOTATION})


def _certificate_from_another_ca() -> Sign:
    def sign(
        server: RunningServer, digest: str, trusted: TestSigstore, other: TestSigstore, who: GitHubIdentity
    ) -> None:
        sign_image_keyless(server.url, REPOSITORY, digest, KeylessSigner(trusted, who, ca=other))

    return sign


def _logged_by_another_rekor() -> Sign:
    def sign(server: RunningServer, digest: str, _: TestSigstore, other: TestSigstore, who: GitHubIdentity) -> None:
        sign_image_keyless(server.url, REPOSITORY, digest, KeylessSigner(other, who))

    return sign


def _entry_for_another_signature() -> Sign:
    def sign(server: RunningServer, digest: str, trusted: TestSigstore, _: TestSigstore, who: GitHubIdentity) -> None:
        other = KeylessSigner(trusted, who).sign_legacy(b"another payload").signature
        sign_image_keyless(server.url, REPOSITORY, digest, KeylessSigner(trusted, who), logged_signature=other)

    return sign


def _payload_for(other_digest: str) -> Sign:
    def sign(server: RunningServer, digest: str, trusted: TestSigstore, _: TestSigstore, who: GitHubIdentity) -> None:
        payload = images.simple_signing_payload(other_digest, f"registry/{REPOSITORY}")
        sign_image_keyless(server.url, REPOSITORY, digest, KeylessSigner(trusted, who), payload=payload)

    return sign


def _later() -> int:
    return int((datetime.now(UTC) + timedelta(hours=1)).timestamp())


OTHER_DIGEST = "sha256:" + "ab" * 32

NEGATIVE_CORPUS: list[tuple[str, Sign, str, str]] = [
    (
        "wrong issuer",
        _signed({"issuer": "https://accounts.google.com"}),
        "issuer",
        "the certificate's issuer is 'https://accounts.google.com', not 'https://token.actions.githubusercontent.com'",
    ),
    (
        "wrong SAN",
        _signed({"repository": "attacker/mosaic-life"}),
        "identity",
        "the certificate's SAN is https://github.com/attacker/mosaic-life/",
    ),
    (
        "wrong repository",  # a reusable workflow of ours, called from someone else's repository
        _signed({"repository": "someone/else", "san": SEED_SAN}),
        "repository",
        "the certificate's repository is 'someone/else', not 'mosaic-stories/mosaic-life'",
    ),
    (
        "wrong ref",
        _signed({"ref": "refs/heads/feature-x", "san": SEED_SAN}),
        "ref",
        "the certificate's ref is 'refs/heads/feature-x', not 'refs/heads/main'",
    ),
    (
        "commit does not match the tag",
        _signed({"sha": "deadbee" + "0" * 33}),
        "commit",
        f"the certificate was issued for commit deadbee{'0' * 33}, but the tag names {SHA}",
    ),
    (
        "certificate expired at the integrated time",
        _signed(integrated_time=_later()),
        "validity",
        "it was expired (or not yet valid) when it was used",
    ),
    ("missing SET", _without_bundle(), "transparency log", "there is no Rekor bundle"),
    (
        "invalid SET",
        _altered_bundle(
            lambda bundle: bundle["Payload"].update(integratedTime=bundle["Payload"]["integratedTime"] - 60)
        ),
        "transparency log",
        "the signed entry timestamp does not verify",
    ),
    ("SET from an untrusted log", _logged_by_another_rekor(), "transparency log", "which signature.keyless"),
    (
        "Rekor body for another signature",
        _entry_for_another_signature(),
        "log entry",
        "the Rekor entry records another signature: this signature was never logged",
    ),
    ("payload for another digest", _payload_for(OTHER_DIGEST), "claims", f"the payload signs {OTHER_DIGEST}"),
    (
        "tampered payload",
        _signed(signed_bytes=b'{"critical":{}}'),
        "signature",
        "the signature does not verify: it was made with another key, or over other bytes",
    ),
    ("untrusted root", _certificate_from_another_ca(), "chain", "the certificate chain does not lead to a Fulcio CA"),
    ("self-signed leaf", _signed(self_signed=True), "chain", "the certificate is self-signed"),
]


@pytest.mark.parametrize(("case", "sign", "check", "reason"), NEGATIVE_CORPUS, ids=[c[0] for c in NEGATIVE_CORPUS])
def test_negative_corpus_is_rejected_by_its_own_check(
    registry_server: RunningServer,
    registry: Registry,
    image: str,
    sigstore: TestSigstore,
    stranger_sigstore: TestSigstore,
    identity: GitHubIdentity,
    trusted_root: Path,
    case: str,
    sign: Sign,
    check: str,
    reason: str,
) -> None:
    sign(registry_server, image, sigstore, stranger_sigstore, identity)
    verdict = verify(keyless_app(registry_server.url, trusted_root), registry, image)
    assert verdict.status == "invalid", case
    name, detail = failed_check(verdict)
    assert name == check, detail
    assert reason in detail
    assert verdict.reason is not None and reason in verdict.reason
    assert verdict.signer is None and verdict.identity is None


def test_every_case_of_the_corpus_has_its_own_reason() -> None:
    reasons = [reason for _, _, _, reason in NEGATIVE_CORPUS]
    assert len(set(reasons)) == len(reasons)


def test_a_digest_without_a_release_sha_is_not_accepted(
    registry_server: RunningServer, registry: Registry, image: str, signer: KeylessSigner, trusted_root: Path
) -> None:
    sign_image_keyless(registry_server.url, REPOSITORY, image, signer)
    verdict = verify(keyless_app(registry_server.url, trusted_root), registry, image, sha=None)
    assert failed_check(verdict) == (
        "commit",
        "no release SHA to bind the certificate's commit to: verify the image by its release tag",
    )
