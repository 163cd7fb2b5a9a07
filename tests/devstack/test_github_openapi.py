"""Every answer the GitHub stand-in gives tagrelay's GitHub adapter has GitHub's published shape.

The adapter (tagrelay.adapters.github) is driven through each of its calls and each outcome the
services tell apart (found, unknown, conflict, a file over 1 MB through the blob API, ...), with the
stand-in keeping every answer's body; each (operation, status, body) is then validated against GitHub's
OpenAPI description (npm @octokit/openapi). A stand-in that drifts from GitHub's shapes fails here,
not in production.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from github import Auth

from devstack.github_standin import GitHubAppSpec, generate_app_keypair
from devstack.scenario import SeedScenario
from devstack.stack import GITHUB_TOKEN, LocalStack
from tagrelay.adapters.github import GitHub, credentials_from_secrets
from tagrelay.config import GitHubConfig
from tagrelay.errors import CommitNotFound, FileNotFound, WriteConflict
from tests.github_openapi import operation_for, problems

pytestmark = pytest.mark.stack


@pytest.fixture
def recorded(stack: LocalStack) -> Iterator[list[dict[str, Any]]]:
    """The stand-in's request log with bodies, for what the test body does."""
    control = stack.github_control
    control.keep_bodies(True)
    control.clear_requests()
    entries: list[dict[str, Any]] = []
    yield entries
    control.keep_bodies(False)


def adapter(stack: LocalStack) -> GitHub:
    config = GitHubConfig.model_validate({"base_url": stack.github.url, "auth": {"token_secret": "unused"}})
    return GitHub(config, lambda: Auth.Token(GITHUB_TOKEN))


def drive_every_adapter_call(scenario: SeedScenario, github: GitHub) -> None:
    source, gitops, path = scenario.source_repo, scenario.gitops_repo, "environments/prod/values.yaml"
    first = scenario.commit("main")
    second = scenario.commit("main")
    github.resolve_commit(source, second[:7])
    with pytest.raises(CommitNotFound):
        github.resolve_commit(source, "0000000")
    assert github.compare(source, first, second) == "ahead"
    assert github.comparison(source, first, second).commits == (second,)
    with pytest.raises(CommitNotFound):
        github.compare(source, "0" * 40, second)
    current = github.read_file(gitops, path, "main")
    with pytest.raises(FileNotFound):
        github.read_file(gitops, "environments/nowhere/values.yaml", "main")
    github.write_file(gitops, path, "main", content=current.content + b"# x\n", blob_sha=current.blob_sha, message="m")
    with pytest.raises(WriteConflict):
        github.write_file(gitops, path, "main", content=b"y: 1\n", blob_sha=current.blob_sha, message="stale")
    github.commits_touching(gitops, path, "main", limit=5)
    # A file over 1 MB comes with encoding "none" from the Contents API, then through the blobs API.
    scenario.gitops.commit_files({"big.yaml": "a: " + "b" * (1024 * 1024 + 10) + "\n"}, "big", branch="main")
    github.read_file(gitops, "big.yaml", "main")


def drive_pull_requests_and_deployments(scenario: SeedScenario, github: GitHub) -> None:
    gitops, path, branch = scenario.gitops_repo, "environments/prod/values.yaml", "tagrelay/mosaic-life/prod"
    assert github.branch_head(gitops, branch) is None
    main = github.branch_head(gitops, "main")
    assert main is not None
    github.reset_branch(gitops, branch, main, exists=False)
    assert github.open_pull_request(gitops, branch, "main") is None
    current = github.read_file(gitops, path, branch)
    written = github.write_file(
        gitops, path, branch, content=current.content + b"# one\n", blob_sha=current.blob_sha, message="deploy one"
    )
    pull = github.create_pull_request(gitops, branch, "main", title="deploy one", body="why")
    assert github.open_pull_request(gitops, branch, "main") == pull
    github.update_pull_request(gitops, pull.number, title="deploy two")
    stale = github.merge_pull_request(gitops, pull.number, head_sha="0" * 40, title="t", message="m")
    assert not stale.merged and "modified" in stale.reason
    merged = github.merge_pull_request(gitops, pull.number, head_sha=written.sha, title="t", message="m")
    assert merged.merged and merged.sha == github.branch_head(gitops, "main")
    came_through = github.pull_request_for_commit(gitops, str(merged.sha))
    assert came_through is not None and came_through.url == pull.url and came_through.merged
    again = github.merge_pull_request(gitops, pull.number, head_sha=written.sha, title="t", message="m")
    assert not again.merged and "not mergeable" in again.reason
    github.reset_branch(gitops, branch, main, exists=True)  # back to before the merge: not a fast-forward

    sha = scenario.commit("main")
    deployment = github.create_deployment(
        scenario.source_repo,
        sha=sha,
        environment="prod",
        description="prod-abc1234",
        payload={"gitops_commit": written.sha},
        production=True,
    )
    for state in ("in_progress", "success", "inactive", "failure", "error"):
        github.create_deployment_status(
            scenario.source_repo, deployment, state=state, description=state, log_url="https://argocd.example/a"
        )


def drive_app_authentication(stack: LocalStack, scenario: SeedScenario) -> None:
    """A GitHub App's flow: the installation found on the GitOps repository, a token for it, a request."""
    private_pem, public_pem = generate_app_keypair()
    stack.github_control.add_app(GitHubAppSpec(app_id=4242, public_key_pem=public_pem, installation_id=777))
    config = GitHubConfig.model_validate(
        {"base_url": stack.github.url, "auth": {"app": {"app_id": 4242, "private_key_secret": "unused"}}}
    )
    credentials = credentials_from_secrets(config, lambda _: private_pem, installation_repo=scenario.gitops_repo)
    GitHub(config, credentials).read_file(scenario.gitops_repo, "environments/prod/values.yaml", "main")


def test_every_answer_to_the_adapter_matches_githubs_openapi_description(
    scenario: SeedScenario, stack: LocalStack, recorded: list[dict[str, Any]]
) -> None:
    drive_every_adapter_call(scenario, adapter(stack))
    drive_pull_requests_and_deployments(scenario, adapter(stack))
    drive_app_authentication(stack, scenario)
    entries = stack.github_control.requests()

    pairs: dict[tuple[str, int], list[str]] = {}
    for entry in entries:
        operation = operation_for(entry["method"], entry["path"])
        key = (operation.operation_id if operation else f"{entry['method']} {entry['path']}", entry["status"])
        pairs.setdefault(key, []).extend(problems(entry["method"], entry["path"], entry["status"], entry["body"]))

    invalid = {pair: found for pair, found in pairs.items() if found}
    assert not invalid, "\n".join(f"{pair}: {found[:3]}" for pair, found in invalid.items())
    # Every outcome the adapter tells apart was exercised (so the check above covered it).
    assert set(pairs) >= {
        ("repos/get-commit", 200),
        ("repos/get-commit", 422),
        ("repos/compare-commits-with-basehead", 200),
        ("repos/compare-commits-with-basehead", 404),
        ("repos/get-content", 200),
        ("repos/get-content", 404),
        ("repos/create-or-update-file-contents", 200),
        ("repos/create-or-update-file-contents", 409),
        ("repos/list-commits", 200),
        ("git/get-blob", 200),
        ("git/get-ref", 200),
        ("git/get-ref", 404),
        ("git/create-ref", 201),
        ("git/update-ref", 200),
        ("pulls/list", 200),
        ("pulls/create", 201),
        ("pulls/update", 200),
        ("pulls/merge", 200),
        ("pulls/merge", 405),
        ("pulls/merge", 409),
        ("repos/list-pull-requests-associated-with-commit", 200),
        ("repos/create-deployment", 201),
        ("repos/create-deployment-status", 201),
        ("apps/get-repo-installation", 200),
        ("apps/create-installation-access-token", 201),
    }, sorted(pairs)


def test_a_commit_without_account_nor_git_author_is_read_not_crashed_on(
    scenario: SeedScenario, stack: LocalStack, recorded: list[dict[str, Any]]
) -> None:
    """GitHub's schema lets ``author`` (the account) and ``commit.author`` (git's) both be null."""
    github = adapter(stack)
    control = stack.github_control
    for committer in (True, False):
        sha = scenario.commit("main")
        github.resolve_commit(scenario.source_repo, sha[:7])
        real = next(entry["body"] for entry in control.requests() if entry["path"].endswith(f"/commits/{sha[:7]}"))
        nulls = {**real, "author": None, "committer": real["committer"] if committer else None}
        nulls["commit"] = {
            **real["commit"],
            "author": None,
            "committer": real["commit"]["committer"] if committer else None,
        }
        assert problems("GET", f"/repos/{scenario.source_repo}/commits/{sha}", 200, nulls) == []
        control.inject(method="GET", path_regex=f"/commits/{sha[:8]}$", status=200, body=nulls)

        commit = github.resolve_commit(scenario.source_repo, sha[:8])

        assert commit.sha == sha
        assert commit.author == (real["commit"]["committer"]["name"] if committer else "unknown")
        assert (commit.committed_at is not None) == committer
