"""Helpers of the operator-command tests: releases CI pushed but nobody promoted, the GitOps log, the ledger."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import boto3
import pytest

from devstack.argocd_sim import Mark
from devstack.scenario import BRANCH_OF_ENV, Release, SeedScenario
from devstack.stack import LEDGER_TABLE, LocalStack
from tagrelay.adapters.store import Ledger
from tagrelay.domain.records import DecisionRecord, EnvironmentState
from tests.conftest import OperatorSetup
from tests.tracking.support import TrackerSetup, cli, promote, track

if TYPE_CHECKING:
    from mypy_boto3_lambda import LambdaClient

APP = "mosaic-life"
# The operator_env fixture (tests/conftest.py).
Configure = Callable[..., OperatorSetup]


def pushed(scenario: SeedScenario, env: str = "prod", **release: Any) -> Release:
    """A new commit on the environment's branch whose images CI pushed (and signed), not promoted:
    its events are never delivered, so only an operator command can deploy it."""
    sha = scenario.commit(BRANCH_OF_ENV[env])
    return scenario.release(sha, branch=BRANCH_OF_ENV[env], **release)


def deployed(scenario: SeedScenario, setup: TrackerSetup, env: str = "prod", *, mark: Mark | None = None) -> Release:
    """Promoted by a push (through the promoter handler), synced by Argo CD, its outcome recorded."""
    release = promote(scenario, setup, env, mark=mark)
    setup.control.settle()
    track()
    return release


def settle_and_track(setup: TrackerSetup) -> dict[str, Any]:
    setup.control.settle()
    return track()


def subjects(scenario: SeedScenario, limit: int = 20) -> list[str]:
    """`git log --format=%s` of the GitOps branch, newest first."""
    output = subprocess.run(
        ["git", f"--git-dir={scenario.gitops.bare_path}", "log", f"-{limit}", "--format=%s", "main"],
        check=True,
        capture_output=True,
    )
    return output.stdout.decode().splitlines()


def gitops_tag(scenario: SeedScenario, env: str) -> str:
    text = scenario.values_file(env).decode()
    [line] = [line for line in text.splitlines() if line.strip().startswith("imageTag:")]
    return line.split(":", 1)[1].split("#", 1)[0].strip().strip('"')


def records(env: str, limit: int = 100) -> list[DecisionRecord]:
    """The environment's ledger records, newest first."""
    return Ledger(LEDGER_TABLE).history(APP, env, limit=limit).records


def state(env: str) -> EnvironmentState | None:
    return Ledger(LEDGER_TABLE).environment_state(APP, env)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    return cli(capsys, *argv)


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, Any], str]:
    code, out, err = cli(capsys, *argv, "-o", "json")
    return code, json.loads(out), err


def invoke_raw(stack: LocalStack, payload: Any, function: str = "tagrelay-promoter") -> dict[str, Any]:
    """The promoter function invoked with any payload, as boto3 sends it (no identity added)."""
    env = stack.aws_env
    client: LambdaClient = boto3.client(
        "lambda",
        endpoint_url=stack.lambda_api.url,
        region_name=env["AWS_DEFAULT_REGION"],
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        aws_session_token=env["AWS_SESSION_TOKEN"],
    )
    response = client.invoke(FunctionName=function, Payload=json.dumps(payload).encode())
    assert "FunctionError" not in response, response
    answer: dict[str, Any] = json.loads(response["Payload"].read())
    return answer
