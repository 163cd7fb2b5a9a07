"""The pure rules of signature verification, without a registry: checks, layer parsing, the verifier loop."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from devstack.images import simple_signing_payload
from tagrelay.adapters.registry import Registry
from tagrelay.adapters.signatures import Candidate, CosignVerifier, PolicyResult, ReleaseContext, Unusable
from tagrelay.adapters.signatures.checks import (
    SIGNATURE_ANNOTATION,
    SIMPLE_SIGNING_MEDIA_TYPE,
    SignatureLayer,
    check_claims,
    check_ecdsa_p256_signature,
    check_payload_digest,
    check_simple_signing_claims,
    key_fingerprint,
    p256_problem,
    parse_signature_layer,
)
from tagrelay.adapters.signatures.keys import VerificationKey
from tagrelay.adapters.signatures.policies import PublicKeyPolicy, commit_annotation_problem
from tagrelay.adapters.signatures.verifier import examine
from tagrelay.ports import ImageRegistry

DIGEST = "sha256:2f5bb4a0a11803b9514ad928727f19cffb313eb4a48b40fb11243e428443cfe1"
OTHER_DIGEST = "sha256:" + "1" * 64
# The real payload cosign wrote to ECR (sigstore/cosign#1684).
ECR_PAYLOAD = (
    b'{"critical":{"identity":{"docker-reference":"123456789012.dkr.ecr.eu-west-1.amazonaws.com/my-app"},'
    b'"image":{"docker-manifest-digest":"sha256:2f5bb4a0a11803b9514ad928727f19cffb313eb4a48b40fb11243e428443cfe1"},'
    b'"type":"cosign container image signature"},"optional":null}'
)


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@pytest.fixture(scope="module")
def private_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def sign(key: ec.EllipticCurvePrivateKey, data: bytes) -> bytes:
    return key.sign(data, ec.ECDSA(hashes.SHA256()))


# --- the devstack payload is cosign's, byte for byte ------------------------------------------------


def test_devstack_payload_matches_what_cosign_writes() -> None:
    assert simple_signing_payload(DIGEST, "123456789012.dkr.ecr.eu-west-1.amazonaws.com/my-app") == ECR_PAYLOAD


# --- payload digest ---------------------------------------------------------------------------------


def test_payload_that_hashes_to_the_layer_digest_passes() -> None:
    assert check_payload_digest(ECR_PAYLOAD, sha256(ECR_PAYLOAD)) is None


def test_payload_hash_different_from_the_layer_digest_is_refused() -> None:
    problem = check_payload_digest(ECR_PAYLOAD + b" ", sha256(ECR_PAYLOAD))
    assert problem is not None
    assert f"not to the layer digest {sha256(ECR_PAYLOAD)}" in problem


# --- claims -----------------------------------------------------------------------------------------


def test_claims_of_cosigns_payload_pass() -> None:
    assert check_simple_signing_claims(ECR_PAYLOAD, DIGEST) is None
    assert check_claims(SIMPLE_SIGNING_MEDIA_TYPE, ECR_PAYLOAD, DIGEST) is None


def test_optional_annotations_are_allowed() -> None:
    payload = simple_signing_payload(DIGEST, "r/x", optional={"sha": "abc1234"})
    assert check_simple_signing_claims(payload, DIGEST) is None


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (simple_signing_payload(OTHER_DIGEST, "r/x"), f"the payload signs {OTHER_DIGEST}, not {DIGEST}"),
        (simple_signing_payload(DIGEST.upper(), "r/x"), "the payload signs SHA256:"),
        (simple_signing_payload(DIGEST, "r/x", signature_type="something else"), "the payload type is 'something"),
        (b'{"critical":{"image":{},"type":"cosign container image signature"}}', "no critical.image.docker-manifest"),
        (b'{"optional":null}', "no 'critical' object"),
        (b'["critical"]', "no 'critical' object"),
        (b"not json", "not JSON"),
        (b"\xff\xfe", "not JSON"),
        (
            b'{"critical":{"identity":{},"image":{"docker-manifest-digest":"'
            + OTHER_DIGEST.encode()
            + b'","docker-manifest-digest":"'
            + DIGEST.encode()
            + b'"},"type":"cosign container image signature"}}',
            "key 'docker-manifest-digest' appears twice",
        ),
    ],
)
def test_claims_that_do_not_name_this_digest_are_refused(payload: bytes, expected: str) -> None:
    problem = check_simple_signing_claims(payload, DIGEST)
    assert problem is not None
    assert expected in problem


def test_unknown_payload_type_is_refused() -> None:
    problem = check_claims("application/vnd.example.unknown+json", ECR_PAYLOAD, DIGEST)
    assert problem is not None and "not supported" in problem


# --- ECDSA ------------------------------------------------------------------------------------------


def test_signature_by_the_key_verifies(private_key: ec.EllipticCurvePrivateKey) -> None:
    assert check_ecdsa_p256_signature(private_key.public_key(), sign(private_key, ECR_PAYLOAD), ECR_PAYLOAD) is None


def test_signature_by_another_key_does_not_verify(private_key: ec.EllipticCurvePrivateKey) -> None:
    other = ec.generate_private_key(ec.SECP256R1())
    problem = check_ecdsa_p256_signature(private_key.public_key(), sign(other, ECR_PAYLOAD), ECR_PAYLOAD)
    assert problem is not None and "does not verify" in problem


def test_signature_over_other_bytes_does_not_verify(private_key: ec.EllipticCurvePrivateKey) -> None:
    # Equal JSON, other bytes: verification is over the bytes as downloaded, never a re-serialisation.
    spaced = ECR_PAYLOAD.replace(b",", b", ")
    problem = check_ecdsa_p256_signature(private_key.public_key(), sign(private_key, spaced), ECR_PAYLOAD)
    assert problem is not None and "does not verify" in problem


def test_garbage_signature_does_not_verify(private_key: ec.EllipticCurvePrivateKey) -> None:
    assert check_ecdsa_p256_signature(private_key.public_key(), b"\x30\x02\x00", ECR_PAYLOAD) is not None
    assert check_ecdsa_p256_signature(private_key.public_key(), b"", ECR_PAYLOAD) is not None


# --- keys -------------------------------------------------------------------------------------------


def test_fingerprint_is_the_sha256_of_the_subject_public_key_info(private_key: ec.EllipticCurvePrivateKey) -> None:
    der = private_key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert key_fingerprint(private_key.public_key()) == sha256(der)


def test_only_p256_keys_are_accepted(private_key: ec.EllipticCurvePrivateKey) -> None:
    assert p256_problem(private_key.public_key()) is None
    assert "secp384r1" in str(p256_problem(ec.generate_private_key(ec.SECP384R1()).public_key()))
    assert "RSA 2048-bit" in str(p256_problem(rsa.generate_private_key(65537, 2048).public_key()))
    assert "Ed25519" in str(p256_problem(ed25519.Ed25519PrivateKey.generate().public_key()))


# --- layer descriptors ------------------------------------------------------------------------------


def layer(**changes: object) -> dict[str, object]:
    descriptor: dict[str, object] = {
        "mediaType": SIMPLE_SIGNING_MEDIA_TYPE,
        "size": len(ECR_PAYLOAD),
        "digest": sha256(ECR_PAYLOAD),
        "annotations": {SIGNATURE_ANNOTATION: base64.b64encode(b"sig").decode()},
    }
    descriptor.update(changes)
    return {key: value for key, value in descriptor.items() if value is not None}


def test_well_formed_layer_is_parsed() -> None:
    parsed = parse_signature_layer(layer())
    assert isinstance(parsed, SignatureLayer)
    assert parsed.signature == b"sig"
    assert parsed.digest == sha256(ECR_PAYLOAD)


@pytest.mark.parametrize(
    ("descriptor", "expected"),
    [
        ("not an object", "not a JSON object"),
        (layer(digest="sha256:abc"), "not a sha256 digest"),
        (layer(mediaType="application/octet-stream"), "not a cosign simple-signing payload"),
        (layer(size=10_000_000), "more than the"),
        (layer(size="12"), "not a byte count"),
        (layer(annotations=None), "no string annotations"),
        (layer(annotations={"other": "x"}), f"no {SIGNATURE_ANNOTATION} annotation"),
        (layer(annotations={SIGNATURE_ANNOTATION: ""}), f"no {SIGNATURE_ANNOTATION} annotation"),
        (layer(annotations={SIGNATURE_ANNOTATION: "not base64!"}), "not base64"),
    ],
)
def test_malformed_layers_are_refused_before_download(descriptor: object, expected: str) -> None:
    parsed = parse_signature_layer(descriptor)
    assert isinstance(parsed, str)
    assert expected in parsed


# --- the verifier's rules, with a source and a policy stubbed -----------------------------------------


class RecordingPolicy:
    def __init__(self, accept: bool) -> None:
        self.accept = accept
        self.checked: list[str] = []

    def describe(self) -> str:
        return "the test key"

    def check(self, candidate: Candidate, release: ReleaseContext | None = None) -> PolicyResult:
        self.checked.append(candidate.origin)
        if self.accept:
            return PolicyResult(accepted=True, signer="the test key", reason="")
        return PolicyResult(accepted=False, signer=None, reason="not the test key")

    def check_binding(self, payload_type: str, payload: bytes, release: ReleaseContext | None) -> PolicyResult:
        return PolicyResult(accepted=True, signer=None, reason="")


def candidate(payload: bytes = ECR_PAYLOAD, *, origin: str = "layer", declared: str | None = None) -> Candidate:
    return Candidate(
        origin=origin,
        payload_type=SIMPLE_SIGNING_MEDIA_TYPE,
        payload=payload,
        payload_digest=declared or sha256(payload),
        signature=b"",
    )


def test_payload_digest_mismatch_is_refused_before_the_policy_is_asked() -> None:
    policy = RecordingPolicy(accept=True)
    result = examine(candidate(declared=OTHER_DIGEST), DIGEST, policy)
    assert not result.accepted
    assert "not to the layer digest" in result.reason
    assert policy.checked == []


def test_claims_are_checked_after_the_signer() -> None:
    policy = RecordingPolicy(accept=True)
    result = examine(candidate(simple_signing_payload(OTHER_DIGEST, "r/x")), DIGEST, policy)
    assert not result.accepted
    assert result.reason.startswith("validly signed, but the payload signs")
    assert policy.checked == ["layer"]


def test_a_rejected_signer_is_the_reason() -> None:
    result = examine(candidate(), DIGEST, RecordingPolicy(accept=False))
    assert (result.accepted, result.reason) == (False, "not the test key")


def test_public_key_policy_names_the_signer(private_key: ec.EllipticCurvePrivateKey) -> None:
    key = VerificationKey(private_key.public_key(), label="key sha256:test")
    signed = Candidate(
        origin="layer",
        payload_type=SIMPLE_SIGNING_MEDIA_TYPE,
        payload=ECR_PAYLOAD,
        payload_digest=sha256(ECR_PAYLOAD),
        signature=sign(private_key, ECR_PAYLOAD),
    )
    accepted = PublicKeyPolicy.of(key).check(signed)
    assert (accepted.accepted, accepted.signer, accepted.reason) == (True, "key sha256:test", "")
    assert [(c.name, c.status) for c in accepted.checks] == [("signature", "pass")]
    forged = Candidate(
        origin="layer",
        payload_type=SIMPLE_SIGNING_MEDIA_TYPE,
        payload=ECR_PAYLOAD,
        payload_digest=sha256(ECR_PAYLOAD),
        signature=sign(ec.generate_private_key(ec.SECP256R1()), ECR_PAYLOAD),
    )
    rejected = PublicKeyPolicy.of(key).check(forged)
    assert not rejected.accepted
    assert "key sha256:test" in rejected.reason


COMMIT = "abc1234" + "d" * 33


@pytest.mark.parametrize(
    ("optional", "tag_sha", "problem"),
    [
        ({"git-sha": COMMIT}, "abc1234", None),
        ({"git-sha": COMMIT[:9]}, "abc1234", None),  # a prefix at least as long as the tag's SHA
        ({"git-sha": COMMIT[:6]}, "abc1234", "not a commit SHA at least as long"),
        ({"git-sha": "f" * 40}, "abc1234", "made for commit ffff"),
        ({"git-sha": COMMIT.upper()}, "abc1234", "not a commit SHA"),
        ({"other": COMMIT}, "abc1234", "names no commit"),
        (None, "abc1234", "names no commit"),
        ({"git-sha": COMMIT}, None, "no release SHA"),
    ],
)
def test_a_key_signature_must_name_the_release_commit(
    optional: dict[str, str] | None, tag_sha: str | None, problem: str | None
) -> None:
    payload = simple_signing_payload(DIGEST, "r/x", optional=optional)
    found = commit_annotation_problem(payload, "git-sha", tag_sha)
    assert (found is None) if problem is None else (found is not None and problem in found)


def test_the_unbound_rejection_says_how_to_sign(private_key: ec.EllipticCurvePrivateKey) -> None:
    policy = PublicKeyPolicy.of(VerificationKey(private_key.public_key(), label="k"), commit_annotation="commit")
    payload = simple_signing_payload(DIGEST, "r/x")
    result = policy.check_binding(SIMPLE_SIGNING_MEDIA_TYPE, payload, ReleaseContext(sha="abc1234"))
    assert not result.accepted and result.code == "signature_commit_unbound"
    assert "-a commit=<full commit SHA>" in result.reason
    bound = simple_signing_payload(DIGEST, "r/x", optional={"commit": COMMIT})
    accepted = policy.check_binding(SIMPLE_SIGNING_MEDIA_TYPE, bound, ReleaseContext(sha="abc1234"))
    assert accepted.accepted and accepted.commit == COMMIT


class ListSource:
    """Yields prepared items and records how far the verifier read."""

    def __init__(self, items: list[Candidate | Unusable] | None) -> None:
        self.items = items
        self.consumed = 0

    def location(self, digest: str) -> str:
        return "the test source"

    def find(self, registry: ImageRegistry, repository: str, digest: str) -> Iterator[Candidate | Unusable] | None:
        if self.items is None:
            return None
        return self._iterate(self.items)

    def _iterate(self, items: list[Candidate | Unusable]) -> Iterator[Candidate | Unusable]:
        for item in items:
            self.consumed += 1
            yield item


REGISTRY = Registry("http://127.0.0.1:9")  # never contacted: the source is stubbed


def test_first_acceptable_candidate_wins_and_the_rest_is_not_read() -> None:
    source = ListSource(
        [
            Unusable(origin="layer 1", problem="no annotation"),
            candidate(simple_signing_payload(OTHER_DIGEST, "r/x"), origin="layer 2"),
            candidate(origin="layer 3"),
            candidate(origin="layer 4"),
        ]
    )
    verdict = CosignVerifier(source, RecordingPolicy(accept=True)).verify(REGISTRY, "demo/web", DIGEST)
    assert verdict.status == "verified"
    assert verdict.signer == "the test key"
    assert verdict.details == (
        "layer 1: rejected: no annotation",
        f"layer 2: rejected: validly signed, but the payload signs {OTHER_DIGEST}, not {DIGEST}",
        "layer 3: verified: signed by the test key",
    )
    assert source.consumed == 3
    assert REGISTRY.request_count == 0


def test_no_signature_artifact_is_missing() -> None:
    verdict = CosignVerifier(ListSource(None), RecordingPolicy(accept=True)).verify(REGISTRY, "demo/web", DIGEST)
    assert verdict.status == "missing"
    assert verdict.reason is not None and "the test source does not exist" in verdict.reason


def test_an_artifact_without_candidates_is_invalid() -> None:
    verdict = CosignVerifier(ListSource([]), RecordingPolicy(accept=True)).verify(REGISTRY, "demo/web", DIGEST)
    assert verdict.status == "invalid"
    assert verdict.reason is not None and "there are no signatures" in verdict.reason


def test_digest_must_be_a_sha256_digest() -> None:
    with pytest.raises(ValueError, match="sha256"):
        CosignVerifier(ListSource(None), RecordingPolicy(accept=True)).verify(REGISTRY, "demo/web", "abc1234")
