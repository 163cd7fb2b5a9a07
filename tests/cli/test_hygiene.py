"""The `tagrelay` command as a user's shell runs it: its version, `config check`, and no traceback for a
closed pipe, a missing AWS region, an unreachable service or an unexpected failure."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import boto3
import pytest
from ruamel.yaml import YAML

from devstack.moto import aws_env
from devstack.process import RunningServer, free_port
from tagrelay.adapters.ledger_schema import table_definition
from tagrelay.cli.main import main

REPO_ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = REPO_ROOT / "examples" / "mosaic-life.yaml"
TAGRELAY = [sys.executable, "-m", "tagrelay.cli.main"]


def shell_env(**variables: str) -> dict[str, str]:
    """A user's environment: no AWS settings of this machine, no profile file, unless given."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("AWS_", "TAGRELAY_"))}
    env.update({"AWS_CONFIG_FILE": "/dev/null", "AWS_SHARED_CREDENTIALS_FILE": "/dev/null", **variables})
    return env


def run(*argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*TAGRELAY, *argv],
        capture_output=True,
        text=True,
        env=env or shell_env(),
        cwd=REPO_ROOT,
        timeout=120,
        check=False,
    )


def write_config(tmp_path: Path, change: Any) -> Path:
    data = YAML(typ="safe").load(EXAMPLE.read_text(encoding="utf-8"))
    change(data)
    path = tmp_path / "tagrelay.yaml"
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    from importlib.metadata import version

    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"tagrelay {version('tagrelay')}"


# --- config check ---------------------------------------------------------------------------------


def test_config_check_accepts_the_example(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "check", "--config", str(EXAMPLE)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"{EXAMPLE}: valid")
    assert "mosaic-life (2 images, environments prod, staging, signature keyless)" in out


def test_config_check_reports_every_problem_including_the_deploy_time_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """What only `cdk synth` (and then CloudWatch or the packaging) used to find, all at once."""
    monkeypatch.chdir(tmp_path)  # relative files are checked where `cdk` would run
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / "bad.pem").write_text("-----BEGIN PUBLIC KEY-----\nnot a key\n-----END PUBLIC KEY-----\n")

    def change(data: dict[str, Any]) -> None:
        data["deploy"]["log_retention_days"] = 100
        data["deploy"]["account"] = "111122223333"
        data["argocd"]["ca_bundle"] = "certs/missing.pem"
        data["apps"]["mosaic-life"]["signature"] = {"key": {"public_key_file": "keys/bad.pem"}}

    assert main(["config", "check", "--config", str(write_config(tmp_path, change)), "-o", "json"]) == 1
    result = json.loads(capsys.readouterr().out)
    assert result["valid"] is False
    errors = "\n".join(result["errors"])
    assert "deploy.log_retention_days: 100 is not a CloudWatch Logs retention period" in errors
    assert "argocd.ca_bundle:" in errors and "does not exist, so it cannot be packaged" in errors
    assert "apps.mosaic-life.signature:" in errors  # the PEM does not parse: the functions could not start
    [warning] = result["warnings"]
    assert "account 033691785857 but deploy.account is 111122223333" in warning


def test_config_check_reports_schema_errors_by_field(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    def change(data: dict[str, Any]) -> None:
        data["apps"]["mosaic-life"]["tag_pattern"] = "[0-9a-f]{7}"
        data["tracking"]["schedule_minutes"] = 0

    assert main(["config", "check", "--config", str(write_config(tmp_path, change))]) == 1
    out = capsys.readouterr().out
    assert "INVALID" in out
    assert "error: apps.mosaic-life.tag_pattern: must contain a named group 'sha'" in out
    assert "error: tracking.schedule_minutes:" in out


def test_config_check_says_to_remove_a_setting_this_version_no_longer_reads(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A file written for a version that accepted deploy.tracker_vpc.vpc_id: not "unknown field", but
    which setting and what to do; the rest of the file is still checked."""

    def change(data: dict[str, Any]) -> None:
        data["deploy"]["tracker_vpc"] = {
            "vpc_id": "vpc-0123456789abcdef0",
            "subnet_ids": ["subnet-0aaaaaaaaaaaaaaa1"],
            "security_group_ids": ["sg-0ccccccccccccccc3"],
        }
        data["tracking"]["schedule_minutes"] = 0

    assert main(["config", "check", "--config", str(write_config(tmp_path, change)), "-o", "json"]) == 1
    errors = json.loads(capsys.readouterr().out)["errors"]
    assert "deploy.tracker_vpc.vpc_id: no longer read: the subnets (subnet_ids) determine the VPC; remove it" in errors
    assert any(error.startswith("tracking.schedule_minutes:") for error in errors)
    assert not any("unknown field" in error for error in errors)


def test_a_non_ecr_registry_cannot_be_deployed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    def change(data: dict[str, Any]) -> None:
        data["apps"]["mosaic-life"]["registry"] = "ghcr.io"

    assert main(["config", "check", "--config", str(write_config(tmp_path, change))]) == 1
    assert "apps.mosaic-life.registry: 'ghcr.io' is not an Amazon ECR registry" in capsys.readouterr().out


# --- no traceback reaches a user ----------------------------------------------------------------------


@pytest.fixture
def ledger_env(moto_server: RunningServer) -> dict[str, str]:
    """An empty ledger table in moto, and the environment that reaches it."""
    env = aws_env(moto_server)
    client: Any = boto3.client(
        "dynamodb",
        endpoint_url=moto_server.url,
        region_name=env["AWS_DEFAULT_REGION"],
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
    )
    with contextlib.suppress(client.exceptions.ResourceInUseException):
        client.create_table(**table_definition("tagrelay-ledger"))
    return shell_env(**env)


@pytest.mark.parametrize(
    "argv",
    [["history", "--env", "prod"], ["history", "-o", "json"], ["config", "check", "-o", "json"]],
)
def test_a_closed_pipe_ends_quietly(argv: list[str], ledger_env: dict[str, str]) -> None:
    """`tagrelay history | head -1`: the reader goes away before the command has written."""
    process = subprocess.Popen(
        [*TAGRELAY, *argv, "--config", str(EXAMPLE)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=ledger_env,
        cwd=REPO_ROOT,
    )
    assert process.stdout is not None and process.stderr is not None
    process.stdout.close()  # like `head` exiting at once
    stderr = process.stderr.read().decode()
    assert process.wait(timeout=60) == 141, stderr
    assert stderr == ""


def no_region_config(tmp_path: Path) -> Path:
    def change(data: dict[str, Any]) -> None:
        data["deploy"].pop("region")

    return write_config(tmp_path, change)


@pytest.mark.parametrize("command", [["history"], ["dora"]])
def test_a_missing_aws_region_is_a_sentence_not_a_traceback(tmp_path: Path, command: list[str]) -> None:
    result = run(*command, "--config", str(no_region_config(tmp_path)))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "no AWS region: set AWS_REGION (or AWS_DEFAULT_REGION)" in result.stderr


def test_aws_region_is_honoured_as_people_set_it(tmp_path: Path) -> None:
    """boto3 itself reads AWS_DEFAULT_REGION only; with AWS_REGION the command gets as far as the network."""
    port = free_port()  # nothing listens there
    env = shell_env(
        AWS_REGION="eu-west-1",
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_ENDPOINT_URL=f"http://127.0.0.1:{port}",
        AWS_MAX_ATTEMPTS="1",
    )
    result = run("history", "--config", str(no_region_config(tmp_path)), "-o", "json", env=env)
    assert "no AWS region" not in result.stderr
    assert "Traceback" not in result.stderr
    assert result.returncode == 1
    assert f"127.0.0.1:{port}" in result.stderr  # names what could not be reached
    assert "exit_code" in json.loads(result.stdout)["error"]


def test_an_unexpected_failure_is_one_line_with_a_way_to_see_more(tmp_path: Path) -> None:
    """A bug must not dump a traceback on the user, but TAGRELAY_DEBUG=1 shows it."""
    values = tmp_path / "values.yaml"
    values.write_text("global:\n  imageTag: abc1234\n")
    sitecustomize = tmp_path / "site"
    sitecustomize.mkdir()
    # Make the command fail where no code expects it: the values edit raises a plain RuntimeError.
    (sitecustomize / "sitecustomize.py").write_text(
        "import tagrelay.domain.values_patch as patch\n"
        "def boom(*args, **kwargs):\n    raise RuntimeError('disk on fire')\n"
        "patch.plan_values = boom\n"
    )
    env = shell_env(PYTHONPATH=f"{sitecustomize}{os.pathsep}{REPO_ROOT / 'functions'}")
    result = run("set-tag", str(values), "--tag", "def5678", env=env)
    assert result.returncode == 70, result.stderr
    assert result.stderr.count("\n") == 1
    assert "internal error (RuntimeError: disk on fire)" in result.stderr and "TAGRELAY_DEBUG=1" in result.stderr
    debug = run("set-tag", str(values), "--tag", "def5678", env={**env, "TAGRELAY_DEBUG": "1"})
    assert "Traceback" in debug.stderr
