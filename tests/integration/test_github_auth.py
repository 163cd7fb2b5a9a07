"""The promoter against GitHub Enterprise (an /api/v3 base URL) with GitHub App authentication.

A second GitHub stand-in serves under the /api/v3 prefix and knows one GitHub App; the App's private
key is a Secrets Manager secret (moto). The promoter finds the App's installation on the GitOps
repository, exchanges its JWT for an installation token, and commits with it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import pytest

from devstack.github_standin import GitHubAppSpec, generate_app_keypair, start_github_standin
from devstack.lambda_context import lambda_context
from devstack.scenario import SeedScenario
from devstack.stack import LocalStack

pytestmark = pytest.mark.stack

APP_ID = 424242
INSTALLATION_ID = 777
APP_KEY_SECRET = "tagrelay/github-app-private-key"


@pytest.fixture(scope="module")
def enterprise_stack(stack: LocalStack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    private_pem, public_pem = generate_app_keypair()
    github = start_github_standin(
        tmp_path_factory.mktemp("ghe"),
        tokens=(),
        app=GitHubAppSpec(app_id=APP_ID, public_key_pem=public_pem, installation_id=INSTALLATION_ID),
        prefix="/api/v3",
    )
    secrets = stack.aws_client("secretsmanager")
    secrets.create_secret(Name=APP_KEY_SECRET, SecretString=private_pem)
    try:
        yield dataclasses.replace(stack, github=github)
    finally:
        github.stop()
        secrets.delete_secret(SecretId=APP_KEY_SECRET, ForceDeleteWithoutRecovery=True)


@pytest.mark.parametrize("installation_id", [INSTALLATION_ID, None], ids=["installation-given", "installation-found"])
def test_a_github_app_on_enterprise_commits_the_release(
    enterprise_stack: LocalStack, installation_id: int | None, request: pytest.FixtureRequest
) -> None:
    from tagrelay import runtime

    scenario = SeedScenario.create(enterprise_stack, isolate_as=f"ghe-{request.node.callspec.id}")
    app_auth: dict[str, Any] = {"app_id": APP_ID, "private_key_secret": APP_KEY_SECRET}
    if installation_id:
        app_auth["installation_id"] = installation_id
    config = scenario.write_config(
        extra={"github": {"base_url": enterprise_stack.github.url, "auth": {"app": app_auth}}}
    )
    assert enterprise_stack.github.url.endswith("/api/v3")
    enterprise_stack.reset_ledger()
    with enterprise_stack.environment(config):
        runtime.config.cache_clear()
        runtime.promoter.cache_clear()
        from tagrelay.handlers.promoter import handler

        sha = scenario.commit("main")
        results = [handler(event, lambda_context("promoter")) for event in scenario.release(sha).events]
        runtime.promoter.cache_clear()
        runtime.config.cache_clear()

    assert [r["decision"] for r in results].count("promote") == 1
    assert f'imageTag: "{sha[:7]}"'.encode() in scenario.values_file("prod")
    log = enterprise_stack.github_control.requests()
    paths = [entry["path"] for entry in log]
    assert all(path.startswith("/api/v3/") for path in paths)
    assert any(path.endswith(f"/app/installations/{INSTALLATION_ID}/access_tokens") for path in paths)
    assert any(path.endswith("/installation") for path in paths) is (installation_id is None)
    writes = [entry for entry in log if entry["method"] == "PUT"]
    assert writes and all(entry["auth"] == "installation" for entry in writes)
