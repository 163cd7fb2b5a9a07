"""`tagrelay verify IMAGE_REF`: the verdict, every check, the identity or the first failing check."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from devstack import images
from devstack.process import RunningServer
from devstack.sigstore_testing import GitHubIdentity, KeylessSigner, TestSigstore, sign_image_keyless
from tagrelay.cli.common import CommandError
from tagrelay.cli.main import main
from tagrelay.cli.verify import parse_image_ref
from tests.signatures.support import FULL_SHA, REPOSITORY, SHA, keyless_app

pytestmark = pytest.mark.stack


@pytest.fixture
def config_file(registry_server: RunningServer, trusted_root: Path, tmp_path: Path) -> Path:
    app = keyless_app(registry_server.url, trusted_root)
    document = {
        "apps": {"mosaic-life": app.model_dump(mode="json", exclude_none=True)},
        "github": {"auth": {"token_secret": "github-token"}},
    }
    path = tmp_path / "tagrelay.yaml"
    path.write_text(json.dumps(document))  # JSON is YAML
    return path


def _host(server: RunningServer) -> str:
    return server.url.split("://", 1)[1]


def test_verified_image_shows_the_identity_and_every_check(
    registry_server: RunningServer,
    signer: KeylessSigner,
    config_file: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    digest = images.push_image(registry_server.url, REPOSITORY, [SHA, "main"])
    sign_image_keyless(registry_server.url, REPOSITORY, digest, signer)
    code = main(["verify", f"{_host(registry_server)}/{REPOSITORY}:{SHA}", "--config", str(config_file), "-o", "json"])
    result = json.loads(capsys.readouterr().out)
    assert code == 0
    assert result["verdict"] == "verified"
    assert result["environments"] == ["prod"]  # the branch tag main points at the digest
    assert result["identity"]["commit"] == FULL_SHA
    assert result["identity"]["subject"].endswith("build-push.yml@refs/heads/main")
    checks = result["signatures"][0]["checks"]
    assert [c["status"] for c in checks] == ["pass"] * len(checks)
    assert {"chain", "sct", "transparency log", "commit", "claims"} <= {c["name"] for c in checks}


def test_rejected_image_names_the_first_failing_check(
    registry_server: RunningServer,
    sigstore: TestSigstore,
    identity: GitHubIdentity,
    config_file: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    digest = images.push_image(registry_server.url, REPOSITORY, [SHA])
    wrong_commit = KeylessSigner(sigstore, replace(identity, sha="badc0de" + "0" * 33))
    sign_image_keyless(registry_server.url, REPOSITORY, digest, wrong_commit)
    code = main(
        ["verify", f"{_host(registry_server)}/{REPOSITORY}:{SHA}", "--config", str(config_file), "--env", "prod"]
    )
    out = capsys.readouterr().out
    assert code == 1
    assert out.startswith(f"INVALID: {_host(registry_server)}/{REPOSITORY}@{digest}")
    assert "  FAIL  commit" in out
    assert f"the certificate was issued for commit badc0de{'0' * 33}, but the tag names {SHA}" in out
    assert "  ok    chain" in out


def test_digest_reference_needs_the_release_sha(
    registry_server: RunningServer, signer: KeylessSigner, config_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    digest = images.push_image(registry_server.url, REPOSITORY, [SHA])
    sign_image_keyless(registry_server.url, REPOSITORY, digest, signer)
    ref = f"{_host(registry_server)}/{REPOSITORY}@{digest}"
    assert main(["verify", ref, "--config", str(config_file), "--env", "prod"]) == 1
    assert "no release SHA" in capsys.readouterr().out
    assert main(["verify", ref, "--config", str(config_file), "--env", "prod", "--sha", SHA]) == 0


def test_unknown_image_is_a_configuration_error(config_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["verify", "127.0.0.1:1/other/image:1e07581", "--config", str(config_file)]) == 2
    assert "no app of the configuration lists the image other/image" in capsys.readouterr().err


def test_a_keyless_policy_without_an_environment_is_a_usage_error_not_invalid(
    registry_server: RunningServer, signer: KeylessSigner, config_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """No branch tag points at the digest and no --env: the {branch} of the policy cannot be filled in."""
    digest = images.push_image(registry_server.url, REPOSITORY, [SHA])
    sign_image_keyless(registry_server.url, REPOSITORY, digest, signer)
    ref = f"{_host(registry_server)}/{REPOSITORY}:{SHA}"
    assert main(["verify", ref, "--config", str(config_file), "-o", "json"]) == 2
    captured = capsys.readouterr()
    error = json.loads(captured.out)["error"]
    assert error["exit_code"] == 2
    assert "name one with --env (prod, staging)" in error["message"]
    assert "name one with --env" in captured.err
    assert main(["verify", ref, "--config", str(config_file), "--env", "prod"]) == 0


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["verify", "mosaic-life/web:1e07581"], "give the registry too"),
        (["verify", "127.0.0.1:1/other/image:1e07581"], "no app of the configuration lists the image"),
        (["verify", "127.0.0.1:1/x/y:t", "--bogus"], "unrecognized arguments: --bogus"),
        (["verify"], "the following arguments are required: IMAGE_REF"),
    ],
)
def test_usage_and_configuration_errors_exit_2_with_a_json_error_object(
    argv: list[str], message: str, config_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*argv, "--config", str(config_file), "--output", "json"]) == 2
    error = json.loads(capsys.readouterr().out)["error"]
    assert message in error["message"] and error["exit_code"] == 2


def test_an_unreachable_registry_exits_3_not_1(config_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """'Not verified' (1) and 'could not check' are different answers; a closed port is the latter."""
    from devstack.process import free_port

    document = json.loads(config_file.read_text())
    document["apps"]["mosaic-life"]["registry"] = f"http://127.0.0.1:{free_port()}"
    config_file.write_text(json.dumps(document))
    host = document["apps"]["mosaic-life"]["registry"].split("://")[1]
    assert main(["verify", f"{host}/{REPOSITORY}:{SHA}", "--config", str(config_file), "--env", "prod"]) == 3
    assert "try again" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1:5000/demo/web:1e07581", ("127.0.0.1:5000", "demo/web", "1e07581", None)),
        (
            "033691785857.dkr.ecr.us-east-1.amazonaws.com/mosaic-life/web@sha256:" + "a" * 64,
            ("033691785857.dkr.ecr.us-east-1.amazonaws.com", "mosaic-life/web", None, "sha256:" + "a" * 64),
        ),
        ("http://localhost/x/y:t@sha256:" + "b" * 64, ("localhost", "x/y", "t", "sha256:" + "b" * 64)),
    ],
)
def test_image_references(text: str, expected: tuple[str, str, str | None, str | None]) -> None:
    ref = parse_image_ref(text)
    assert (ref.registry, ref.repository, ref.tag, ref.digest) == expected


@pytest.mark.parametrize("text", ["demo/web:1e07581", "127.0.0.1:5000/demo/web", "r.example/x@sha256:short"])
def test_incomplete_references_are_refused(text: str) -> None:
    with pytest.raises(CommandError):
        parse_image_ref(text)
