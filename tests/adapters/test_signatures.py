"""Signature verification end to end: images and cosign signatures in the real registry, keys in moto's KMS."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from devstack import images
from devstack.process import RunningServer
from tagrelay.adapters.registry import Registry
from tagrelay.adapters.signatures import NOT_REQUIRED_SIGNER, ReleaseContext, SignatureVerdict, verifier_for
from tagrelay.adapters.signatures.checks import key_fingerprint
from tagrelay.adapters.signatures.keys import KmsKeys
from tagrelay.config import App
from tagrelay.errors import MisconfiguredError

if TYPE_CHECKING:
    from mypy_boto3_kms import KMSClient

pytestmark = pytest.mark.stack

REPOSITORY = "demo/core-api"
COMMIT = "abc1234" + "0" * 33  # the release commit the image was built from
RELEASE = ReleaseContext(sha=COMMIT[:7])


@pytest.fixture(scope="module")
def signer() -> images.CosignKeySigner:
    """The key the app trusts."""
    return images.CosignKeySigner.generate()


@pytest.fixture(scope="module")
def stranger() -> images.CosignKeySigner:
    """Some other key."""
    return images.CosignKeySigner.generate()


@pytest.fixture
def image(registry_server: RunningServer) -> str:
    """A freshly pushed, unsigned image; returns its digest."""
    return images.push_image(registry_server.url, REPOSITORY, ["abc1234"])


@pytest.fixture
def registry(registry_server: RunningServer) -> Registry:
    return Registry(registry_server.url)


def app(signature: Any, registry: str = "http://127.0.0.1:5000") -> App:
    return App.model_validate(
        {
            "source_repo": "o/r",
            "registry": registry,
            "images": [REPOSITORY],
            "gitops": {"repo": "o/gitops"},
            "environments": {"prod": {"branch": "main"}},
            "signature": signature,
        }
    )


def pem_app(signer: images.Signer) -> App:
    return app({"key": {"public_key_pem": signer.public_key_pem}})


def fingerprint(signer: images.Signer) -> str:
    public_key = serialization.load_pem_public_key(signer.public_key_pem.encode())
    assert isinstance(public_key, ec.EllipticCurvePublicKey)
    return key_fingerprint(public_key)


def verify(app_config: App, registry: Registry, digest: str) -> SignatureVerdict:
    return verifier_for(app_config).verify(registry, REPOSITORY, digest, release=RELEASE)


def sign_image(*args: Any, **kwargs: Any) -> str:
    """cosign sign --key ... -a git-sha=<commit>, as CI signs for a key policy."""
    kwargs.setdefault("annotations", {"git-sha": COMMIT})
    return images.sign_image(*args, **kwargs)


# --- accepted ---------------------------------------------------------------------------------------


def test_signed_image_verifies_with_two_requests(
    registry_server: RunningServer, registry: Registry, image: str, signer: images.CosignKeySigner
) -> None:
    sign_image(registry_server.url, REPOSITORY, image, signer)
    verdict = verify(pem_app(signer), registry, image)
    assert verdict.status == "verified"
    assert verdict.acceptable
    assert verdict.signer == f"key {fingerprint(signer)}"
    assert verdict.reason is None
    assert len(verdict.details) == 1
    assert "layer 1/1" in verdict.details[0]
    assert "verified" in verdict.details[0]
    assert registry.request_count == 2  # GET the .sig manifest, GET the payload blob


def test_public_key_file_verifies(
    registry_server: RunningServer,
    registry: Registry,
    image: str,
    signer: images.CosignKeySigner,
    tmp_path: Path,
) -> None:
    key_file = tmp_path / "cosign.pub"
    key_file.write_text(signer.public_key_pem)
    sign_image(registry_server.url, REPOSITORY, image, signer)
    verdict = verify(app({"key": {"public_key_file": str(key_file)}}), registry, image)
    assert verdict.status == "verified"
    assert verdict.signer == f"key {fingerprint(signer)}"


def test_only_the_second_layer_is_valid(
    registry_server: RunningServer,
    registry: Registry,
    image: str,
    signer: images.CosignKeySigner,
    stranger: images.CosignKeySigner,
) -> None:
    sign_image(registry_server.url, REPOSITORY, image, stranger)
    sign_image(registry_server.url, REPOSITORY, image, signer)  # cosign appends a layer
    verdict = verify(pem_app(signer), registry, image)
    assert verdict.status == "verified"
    assert len(verdict.details) == 2
    assert "layer 1/2" in verdict.details[0] and "rejected" in verdict.details[0]
    assert "layer 2/2" in verdict.details[1] and "verified" in verdict.details[1]
    assert registry.request_count == 3


def test_verification_stops_at_the_first_valid_layer(
    registry_server: RunningServer,
    registry: Registry,
    image: str,
    signer: images.CosignKeySigner,
    stranger: images.CosignKeySigner,
) -> None:
    sign_image(registry_server.url, REPOSITORY, image, signer)
    sign_image(registry_server.url, REPOSITORY, image, stranger)
    verdict = verify(pem_app(signer), registry, image)
    assert verdict.status == "verified"
    assert len(verdict.details) == 1
    assert registry.request_count == 2  # the second layer's payload is never downloaded


def test_docker_reference_is_not_checked(
    registry_server: RunningServer, registry: Registry, image: str, signer: images.CosignKeySigner
) -> None:
    # cosign ignores critical.identity (images are signed where they are built and then copied).
    sign_image(registry_server.url, REPOSITORY, image, signer, docker_reference="ghcr.io/elsewhere/app")
    assert verify(pem_app(signer), registry, image).status == "verified"


# --- missing and invalid ----------------------------------------------------------------------------


def test_no_signature_is_missing(registry: Registry, image: str, signer: images.CosignKeySigner) -> None:
    verdict = verify(pem_app(signer), registry, image)
    assert verdict.status == "missing"
    assert not verdict.acceptable
    assert verdict.signer is None
    assert verdict.reason is not None
    assert REPOSITORY in verdict.reason and image in verdict.reason
    assert images.signature_tag(image) in verdict.reason
    assert registry.request_count == 1


def test_signed_by_another_key_is_invalid(
    registry_server: RunningServer,
    registry: Registry,
    image: str,
    signer: images.CosignKeySigner,
    stranger: images.CosignKeySigner,
) -> None:
    sign_image(registry_server.url, REPOSITORY, image, stranger)
    verdict = verify(pem_app(signer), registry, image)
    assert verdict.status == "invalid"
    assert verdict.reason is not None
    assert "does not verify" in verdict.reason
    assert fingerprint(signer) in verdict.reason  # says which key was expected
    assert fingerprint(stranger) not in verdict.reason
    assert image in verdict.reason and REPOSITORY in verdict.reason
    assert len(verdict.details) == 1


def test_payload_for_another_digest_is_invalid(
    registry_server: RunningServer, registry: Registry, image: str, signer: images.CosignKeySigner
) -> None:
    other = images.push_image(registry_server.url, REPOSITORY, ["fff0000"])
    host = registry_server.url.split("://", 1)[1]
    payload = images.simple_signing_payload(other, f"{host}/{REPOSITORY}")
    sign_image(registry_server.url, REPOSITORY, image, signer, payload=payload)
    verdict = verify(pem_app(signer), registry, image)
    assert verdict.status == "invalid"
    assert verdict.reason is not None
    assert f"the payload signs {other}, not {image}" in verdict.reason


def test_wrong_signature_type_is_invalid(
    registry_server: RunningServer, registry: Registry, image: str, signer: images.CosignKeySigner
) -> None:
    payload = images.simple_signing_payload(image, "x/y", signature_type="cosign container image attestation")
    sign_image(registry_server.url, REPOSITORY, image, signer, payload=payload)
    verdict = verify(pem_app(signer), registry, image)
    assert verdict.status == "invalid"
    assert verdict.reason is not None
    assert "payload type is 'cosign container image attestation'" in verdict.reason


def test_signature_over_other_bytes_is_invalid(
    registry_server: RunningServer, registry: Registry, image: str, signer: images.CosignKeySigner
) -> None:
    sign_image(registry_server.url, REPOSITORY, image, signer, signed_bytes=b"something else")
    verdict = verify(pem_app(signer), registry, image)
    assert verdict.status == "invalid"
    assert verdict.reason is not None
    assert "does not verify" in verdict.reason


def test_every_rejected_layer_is_listed(
    registry_server: RunningServer,
    registry: Registry,
    image: str,
    signer: images.CosignKeySigner,
    stranger: images.CosignKeySigner,
) -> None:
    sign_image(registry_server.url, REPOSITORY, image, stranger)
    sign_image(registry_server.url, REPOSITORY, image, signer, signed_bytes=b"other")
    sign_image(registry_server.url, REPOSITORY, image, signer, layer_media_type="application/octet-stream")
    verdict = verify(pem_app(signer), registry, image)
    assert verdict.status == "invalid"
    assert [re.search(r"layer \d/\d", line).group() for line in verdict.details] == [  # type: ignore[union-attr]
        "layer 1/3",
        "layer 2/3",
        "layer 3/3",
    ]
    assert "not a cosign simple-signing payload" in verdict.details[2]
    assert verdict.reason is not None and "and 2 more" in verdict.reason
    assert registry.request_count == 3  # the third layer is refused without downloading it


def test_layer_without_signature_annotation_is_invalid_without_download(
    registry_server: RunningServer, registry: Registry, image: str, signer: images.CosignKeySigner
) -> None:
    payload = images.simple_signing_payload(image, "x/y")
    config = b"{}"
    manifest = {
        "schemaVersion": 2,
        "mediaType": images.OCI_MANIFEST,
        "config": {
            "mediaType": images.OCI_CONFIG,
            "size": len(config),
            "digest": images.put_blob(registry_server.url, REPOSITORY, config),
        },
        "layers": [
            {
                "mediaType": images.SIMPLE_SIGNING,
                "size": len(payload),
                "digest": images.put_blob(registry_server.url, REPOSITORY, payload),
            }
        ],
    }
    images.put_signature_manifest(registry_server.url, REPOSITORY, image, json.dumps(manifest).encode())
    verdict = verify(pem_app(signer), registry, image)
    assert verdict.status == "invalid"
    assert "no string annotations" in verdict.details[0]
    assert registry.request_count == 1


# --- policy choices ---------------------------------------------------------------------------------


def test_signature_none_is_not_required_without_requests(registry: Registry, image: str) -> None:
    verdict = verify(app("none"), registry, image)
    assert verdict == SignatureVerdict(
        status="not_required",
        signer=NOT_REQUIRED_SIGNER,
        reason=None,
        details=("signature verification is turned off for this app (signature: none)",),
    )
    assert verdict.acceptable
    assert registry.request_count == 0


def test_key_signature_is_not_a_keyless_signature(
    registry_server: RunningServer, registry: Registry, image: str, signer: images.CosignKeySigner
) -> None:
    # The public-good root is pinned in the package; a key-pair signature has no certificate to check.
    sign_image(registry_server.url, REPOSITORY, image, signer)
    keyless = {"keyless": {"issuer": "https://token.actions.githubusercontent.com", "identity": "x"}}
    verdict = verify(app(keyless), registry, image)
    assert verdict.status == "invalid"
    assert verdict.reason is not None and "no certificate" in verdict.reason


def test_rsa_key_in_configuration_is_a_misconfiguration() -> None:
    rsa_pem = (
        rsa.generate_private_key(public_exponent=65537, key_size=2048)
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    with pytest.raises(MisconfiguredError, match="RSA 2048-bit key, not ECDSA P-256"):
        verifier_for(app({"key": {"public_key_pem": rsa_pem}}))


def test_unparsable_pem_is_a_misconfiguration_that_does_not_echo_it() -> None:
    bad = "-----BEGIN PUBLIC KEY-----\nTm90QUtleUF0QWxs\n-----END PUBLIC KEY-----\n"
    with pytest.raises(MisconfiguredError, match="public_key_pem is not a PEM public key") as raised:
        verifier_for(app({"key": {"public_key_pem": bad}}))
    assert "Tm90QUtleUF0QWxs" not in str(raised.value)


def test_missing_key_file_is_a_misconfiguration(tmp_path: Path) -> None:
    with pytest.raises(MisconfiguredError, match="cannot read"):
        verifier_for(app({"key": {"public_key_file": str(tmp_path / "absent.pub")}}))


# --- AWS KMS keys (moto) ----------------------------------------------------------------------------


def counting_kms_keys() -> tuple[KmsKeys, list[str]]:
    calls: list[str] = []

    def factory(region: str | None) -> KMSClient:
        client: KMSClient = boto3.client("kms", region_name=region)
        client.meta.events.register("before-call.kms.GetPublicKey", lambda **_: calls.append("GetPublicKey"))
        return client

    return KmsKeys(client_factory=factory), calls


def test_kms_key_verifies_and_is_fetched_once(
    moto_server: RunningServer, registry_server: RunningServer, registry: Registry, image: str
) -> None:
    kms_signer = images.KmsSigner.create(alias="alias/cosign-verifies")
    sign_image(registry_server.url, REPOSITORY, image, kms_signer)
    kms_keys, calls = counting_kms_keys()
    verifier = verifier_for(app({"key": {"kms_key_id": "alias/cosign-verifies"}}), kms_keys=kms_keys)
    assert calls == []  # lazily: nothing is fetched before a signature needs checking
    first = verifier.verify(registry, REPOSITORY, image, release=RELEASE)
    second = verifier.verify(registry, REPOSITORY, image, release=RELEASE)
    assert first.status == second.status == "verified"
    assert first.signer == f"kms:alias/cosign-verifies (key {fingerprint(kms_signer)})"
    assert calls == ["GetPublicKey"]
    assert registry.request_count == 4


def test_kms_key_is_not_fetched_when_the_signature_is_missing(
    moto_server: RunningServer, registry: Registry, image: str
) -> None:
    images.KmsSigner.create(alias="alias/cosign-missing")
    kms_keys, calls = counting_kms_keys()
    verdict = verifier_for(app({"key": {"kms_key_id": "alias/cosign-missing"}}), kms_keys=kms_keys).verify(
        registry, REPOSITORY, image
    )
    assert verdict.status == "missing"
    assert verdict.reason is not None and "kms:alias/cosign-missing" in verdict.reason
    assert calls == []


def test_kms_signature_by_another_key_is_invalid(
    moto_server: RunningServer,
    registry_server: RunningServer,
    registry: Registry,
    image: str,
    stranger: images.CosignKeySigner,
) -> None:
    images.KmsSigner.create(alias="alias/cosign-other")
    sign_image(registry_server.url, REPOSITORY, image, stranger)
    kms_keys, _ = counting_kms_keys()
    verdict = verifier_for(app({"key": {"kms_key_id": "alias/cosign-other"}}), kms_keys=kms_keys).verify(
        registry, REPOSITORY, image
    )
    assert verdict.status == "invalid"


@pytest.mark.parametrize(
    "key_kind",
    [("ECC_NIST_P384", "SIGN_VERIFY"), ("RSA_2048", "SIGN_VERIFY"), ("SYMMETRIC_DEFAULT", "ENCRYPT_DECRYPT")],
)
@pytest.mark.usefixtures("moto_server")
def test_kms_key_that_is_not_p256_is_a_misconfiguration(
    registry_server: RunningServer,
    registry: Registry,
    image: str,
    stranger: images.CosignKeySigner,
    key_kind: tuple[str, str],
) -> None:
    key_spec, key_usage = key_kind
    kms: KMSClient = boto3.client("kms")
    key_id = kms.create_key(KeySpec=key_spec, KeyUsage=key_usage)["KeyMetadata"]["KeyId"]  # type: ignore[arg-type]
    sign_image(registry_server.url, REPOSITORY, image, stranger)  # so that the key is needed
    kms_keys, _ = counting_kms_keys()
    verifier = verifier_for(app({"key": {"kms_key_id": key_id}}), kms_keys=kms_keys)
    with pytest.raises(MisconfiguredError, match="ECC_NIST_P256"):
        verifier.verify(registry, REPOSITORY, image, release=RELEASE)


def test_unknown_kms_key_is_a_misconfiguration(
    moto_server: RunningServer,
    registry_server: RunningServer,
    registry: Registry,
    image: str,
    stranger: images.CosignKeySigner,
) -> None:
    sign_image(registry_server.url, REPOSITORY, image, stranger)
    kms_keys, _ = counting_kms_keys()
    verifier = verifier_for(app({"key": {"kms_key_id": "alias/does-not-exist"}}), kms_keys=kms_keys)
    with pytest.raises(MisconfiguredError, match="kms:GetPublicKey on alias/does-not-exist"):
        verifier.verify(registry, REPOSITORY, image, release=RELEASE)


# --- the key signature names the commit (cosign sign -a git-sha=...) --------------------------------


def test_a_key_signature_without_the_commit_annotation_is_unbound(
    registry_server: RunningServer, registry: Registry, image: str, signer: images.CosignKeySigner
) -> None:
    sign_image(registry_server.url, REPOSITORY, image, signer, annotations=None)
    verdict = verify(pem_app(signer), registry, image)
    assert verdict.status == "invalid"
    assert verdict.code == "signature_commit_unbound"
    assert verdict.reason is not None and "-a git-sha=<full commit SHA>" in verdict.reason


def test_a_key_signature_for_another_commit_is_invalid(
    registry_server: RunningServer, registry: Registry, image: str, signer: images.CosignKeySigner
) -> None:
    sign_image(registry_server.url, REPOSITORY, image, signer, annotations={"git-sha": "f" * 40})
    verdict = verify(pem_app(signer), registry, image)
    assert (verdict.status, verdict.code) == ("invalid", None)
    assert verdict.reason is not None and "made for commit ffff" in verdict.reason


def test_the_annotation_name_is_configurable_and_the_commit_is_reported(
    registry_server: RunningServer, registry: Registry, image: str, signer: images.CosignKeySigner
) -> None:
    sign_image(registry_server.url, REPOSITORY, image, signer, annotations={"commit": COMMIT})
    configured = app({"key": {"public_key_pem": signer.public_key_pem, "commit_annotation": "commit"}})
    verdict = verify(configured, registry, image)
    assert (verdict.status, verdict.commit) == ("verified", COMMIT)
