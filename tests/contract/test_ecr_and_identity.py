"""Contracts of the RegistryControlPlane and IdentityVerifier ports.

ECR: FakeEcr and the ECR adapter against the local ECR stand-in describe repositories' tag mutability
and images' status alike, and refuse an unknown repository alike. Identity: FakeIdentity and the STS
adapter against moto's STS accept a proof made for the request once, and refuse a missing one, one
made for another request, and a replay, with the same codes.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest

from devstack.images import push_image
from devstack.scenario import set_tag_mutability
from devstack.stack import LocalStack
from tagrelay.domain.facts import ImageDetail
from tagrelay.errors import IdentityError, MisconfiguredError
from tagrelay.ports import IdentityVerifier, RegistryControlPlane
from tests.fakes.ecr import FakeEcr
from tests.fakes.identity import FakeIdentity
from tests.fakes.ledger import FakeLedger


@dataclass
class EcrSide:
    ecr: RegistryControlPlane
    create: Callable[[str, str, tuple[str, ...]], None]  # (name, mutability, exclusions)
    push: Callable[[str, str], str]  # (name, tag) -> digest


@pytest.fixture(params=["fake", pytest.param("stack", marks=pytest.mark.stack)])
def ecr_side(request: pytest.FixtureRequest) -> Iterator[EcrSide]:
    if request.param == "fake":
        fake = FakeEcr()

        def push_fake(name: str, tag: str) -> str:
            digest = "sha256:" + f"{abs(hash((name, tag))):064x}"[-64:]
            fake.set_image(name, ImageDetail(digest=digest, tags=(tag,), status="ACTIVE"))
            return digest

        yield EcrSide(fake, fake.set_mutability, push_fake)
        return
    from tagrelay.adapters.ecr import EcrControlPlane

    stack: LocalStack = request.getfixturevalue("stack")
    registry = stack.ecr_registry
    adapter = EcrControlPlane(registry["account"], registry["region"], client=stack.ecr_client(), cache_seconds=0)
    yield EcrSide(
        adapter,
        lambda n, m, e: set_tag_mutability(stack, n, m, e),
        lambda n, tag: push_image(stack.registry.url, n, [tag], content=f"{n}:{tag}".encode()),
    )


def repository(request: pytest.FixtureRequest) -> str:
    return "contract/" + re.sub(r"[^a-z0-9]+", "-", request.node.name.lower())[:40].strip("-")


def test_tag_mutability_is_described_per_repository(ecr_side: EcrSide, request: pytest.FixtureRequest) -> None:
    name = repository(request)
    ecr_side.create(f"{name}-a", "IMMUTABLE_WITH_EXCLUSION", ("sha256-*", "main"))
    ecr_side.create(f"{name}-b", "MUTABLE", ())
    settings = ecr_side.ecr.repository_settings([f"{name}-a", f"{name}-b"])
    assert (settings[f"{name}-a"].mutability, settings[f"{name}-a"].exclusion_filters) == (
        "IMMUTABLE_WITH_EXCLUSION",
        ("sha256-*", "main"),
    )
    assert (settings[f"{name}-b"].mutability, settings[f"{name}-b"].exclusion_filters) == ("MUTABLE", ())
    with pytest.raises(MisconfiguredError):
        ecr_side.ecr.repository_settings([f"{name}-missing"])


def test_an_image_is_described_with_its_status(ecr_side: EcrSide, request: pytest.FixtureRequest) -> None:
    name = repository(request)
    ecr_side.create(name, "IMMUTABLE", ())
    digest = ecr_side.push(name, "abc1234")
    [detail] = ecr_side.ecr.describe_images(name, digests=[digest])
    assert (detail.digest, detail.tags, detail.status) == (digest, ("abc1234",), "ACTIVE")
    [by_tag] = ecr_side.ecr.describe_images(name, tags=["abc1234"])
    assert by_tag.digest == digest
    with pytest.raises(MisconfiguredError):
        ecr_side.ecr.describe_images(f"{name}-missing", digests=[digest])


# --- identity ---


@dataclass
class IdentitySide:
    verifier: IdentityVerifier
    prove: Callable[[str], dict[str, Any]]  # binding -> a proof made by the known caller
    caller_arn: str


@pytest.fixture(params=["fake", pytest.param("stack", marks=pytest.mark.stack)])
def identity_side(request: pytest.FixtureRequest) -> Iterator[IdentitySide]:
    ledger = FakeLedger()  # single use: the nonce's conditional put, as runtime.build_operator wires it

    def use_nonce(nonce: str, expires_at: datetime) -> bool:
        return ledger.use_nonce(nonce, expires_at=expires_at)

    if request.param == "fake":
        fake = FakeIdentity(use_nonce=use_nonce, clock=lambda: datetime.now(UTC))
        arn = "arn:aws:sts::123456789012:assumed-role/oncall/alice"
        fake.known(arn)
        yield IdentitySide(fake, lambda binding: FakeIdentity.proof(arn, binding), arn)
        return
    import boto3

    from tagrelay.adapters.identity import StsIdentityVerifier, sign_caller_identity

    stack: LocalStack = request.getfixturevalue("stack")
    env = stack.aws_env
    session = boto3.Session(
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        aws_session_token=env["AWS_SESSION_TOKEN"],
        region_name=env["AWS_DEFAULT_REGION"],
    )
    endpoint = stack.moto.url
    credentials = session.get_credentials()
    assert credentials is not None
    frozen = credentials.get_frozen_credentials()
    arn = session.client("sts", endpoint_url=endpoint).get_caller_identity()["Arn"]
    verifier = StsIdentityVerifier(endpoint, use_nonce=use_nonce)
    yield IdentitySide(
        verifier,
        lambda binding: sign_caller_identity(
            frozen, endpoint=endpoint, region=env["AWS_DEFAULT_REGION"], binding=binding
        ),
        arn,
    )


def test_a_proof_for_the_request_names_the_caller_once(identity_side: IdentitySide) -> None:
    proof = identity_side.prove("b" * 64)
    assert identity_side.verifier.verify(proof, binding="b" * 64).arn == identity_side.caller_arn
    with pytest.raises(IdentityError) as replayed:
        identity_side.verifier.verify(proof, binding="b" * 64)
    assert replayed.value.code == "identity_replayed"


def test_a_missing_proof_or_one_for_another_request_is_refused(identity_side: IdentitySide) -> None:
    with pytest.raises(IdentityError) as missing:
        identity_side.verifier.verify(None, binding="b" * 64)
    assert missing.value.code == "identity_missing"
    with pytest.raises(IdentityError) as other:
        identity_side.verifier.verify(identity_side.prove("c" * 64), binding="b" * 64)
    assert other.value.code == "identity_invalid"
