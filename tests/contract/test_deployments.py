"""Contract of the DeploymentRecords port: FakeGitHub and the GitHub adapter (against the GitHub
stand-in) keep GitHub Deployments alike. A deployment is found again by the decision its payload names
(and only for its commit and environment), its ref is resolved to the commit, its statuses are kept in
order, a success with auto_inactive makes the environment's earlier successful deployments inactive,
an unknown commit is CommitNotFound and an outage a TransientError."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tagrelay.errors import CommitNotFound, TransientError
from tagrelay.ports import DeploymentRecords
from tests.contract.test_github import FakeSide, Repositories, stack_github, standin_get
from tests.fakes.github import FakeGitHub

LOG_URL = "https://argocd.example/applications/app-prod"


@dataclass
class Side:
    github: DeploymentRecords
    repos: Repositories
    # id -> what GitHub shows of it: sha, ref, environment, payload, production_environment, and its
    # statuses oldest first as (state, log_url)
    shown: Callable[[int], dict[str, Any]]
    outage: Callable[[], None]  # the next deployment creations fail with a 5xx


@pytest.fixture(params=["fake", pytest.param("stack", marks=pytest.mark.stack)])
def side(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Side]:
    if request.param == "fake":
        fake = FakeGitHub()
        fake_repos = FakeSide(fake)

        def fake_shown(deployment_id: int) -> dict[str, Any]:
            deployment = fake.deployment(fake_repos.repo, deployment_id)
            return {
                "sha": deployment.sha,
                "ref": deployment.ref,
                "environment": deployment.environment,
                "payload": deployment.payload,
                "production_environment": deployment.production,
                "statuses": [(status.state, status.log_url or "") for status in deployment.statuses],
            }

        yield Side(fake, fake_repos, fake_shown, lambda: fake.faults.fail("create_deployment", times=5))
        return
    stack, github, repos = stack_github(request, tmp_path_factory)
    control = stack.github_control

    def stack_shown(deployment_id: int) -> dict[str, Any]:
        body = standin_get(stack, f"/repos/{repos.repo}/deployments/{deployment_id}")
        statuses = standin_get(stack, f"/repos/{repos.repo}/deployments/{deployment_id}/statuses")  # newest first
        shown = {name: body[name] for name in ("sha", "ref", "environment", "payload", "production_environment")}
        return {**shown, "statuses": [(s["state"], s["log_url"]) for s in reversed(statuses)]}

    def stack_outage() -> None:
        control.inject(method="POST", path_regex=r"/deployments$", status=502, count=5)

    try:
        yield Side(github, repos, stack_shown, stack_outage)
    finally:
        control.clear_faults()


def create(side: Side, sha: str, env: str = "prod", decision: str = "d-1") -> int:
    return side.github.create_deployment(
        side.repos.repo,
        sha=sha,
        environment=env,
        description=f"{sha[:7]} by tagrelay (push)",
        payload={"tagrelay_decision_id": decision, "gitops_commit": "a" * 40},
        production=env == "prod",
    )


def test_a_deployment_is_found_again_by_its_decision_for_its_commit_and_environment(side: Side) -> None:
    github, repo = side.github, side.repos.repo
    sha = side.repos.commit({"a.txt": "a\n"}, "feat: a")
    other = side.repos.commit({"a.txt": "b\n"}, "feat: b")
    assert github.find_deployment(repo, sha, "prod", "d-1") is None

    created = create(side, sha, "prod", "d-1")
    staging = create(side, sha, "staging", "d-2")

    assert created != staging
    assert github.find_deployment(repo, sha, "prod", "d-1") == created
    assert github.find_deployment(repo, sha, "staging", "d-2") == staging
    assert github.find_deployment(repo, sha, "prod", "d-2") is None  # another decision's
    assert github.find_deployment(repo, sha, "staging", "d-1") is None  # another environment
    assert github.find_deployment(repo, other, "prod", "d-1") is None  # another commit
    shown = side.shown(created)
    assert (shown["sha"], shown["ref"], shown["environment"], shown["production_environment"]) == (
        sha,
        sha,
        "prod",
        True,
    )
    assert shown["payload"] == {"tagrelay_decision_id": "d-1", "gitops_commit": "a" * 40}
    assert (side.shown(staging)["production_environment"], side.shown(staging)["statuses"]) == (False, [])


def test_statuses_are_kept_in_order_and_a_success_makes_earlier_successes_inactive(side: Side) -> None:
    github, repo = side.github, side.repos.repo
    first_sha = side.repos.commit({"a.txt": "1\n"}, "one")
    second_sha = side.repos.commit({"a.txt": "2\n"}, "two")
    first, staging = create(side, first_sha, "prod", "d-1"), create(side, first_sha, "staging", "d-2")
    for deployment_id in (first, staging):
        github.create_deployment_status(
            repo, deployment_id, state="in_progress", description="syncing", log_url=LOG_URL
        )
        github.create_deployment_status(
            repo, deployment_id, state="success", description="healthy", log_url=LOG_URL, auto_inactive=True
        )
    assert side.shown(first)["statuses"] == [("in_progress", LOG_URL), ("success", LOG_URL)]

    second = create(side, second_sha, "prod", "d-3")
    github.create_deployment_status(repo, second, state="failure", description="degraded", log_url=None)
    assert side.shown(first)["statuses"][-1][0] == "success"  # only a success supersedes
    github.create_deployment_status(repo, second, state="success", description="ok", log_url=LOG_URL)
    assert side.shown(first)["statuses"][-1][0] == "success"  # without auto_inactive, nothing else changes
    github.create_deployment_status(
        repo, second, state="success", description="ok", log_url=LOG_URL, auto_inactive=True
    )

    assert [state for state, _ in side.shown(first)["statuses"]] == ["in_progress", "success", "inactive"]
    assert [state for state, _ in side.shown(second)["statuses"]] == ["failure", "success", "success"]
    assert side.shown(staging)["statuses"][-1][0] == "success"  # another environment


def test_an_unknown_commit_is_commit_not_found_and_an_outage_is_transient(side: Side) -> None:
    side.repos.commit({"a.txt": "a\n"}, "feat: a")
    with pytest.raises(CommitNotFound):
        create(side, "f" * 40)
    sha = side.repos.commit({"a.txt": "b\n"}, "feat: b")
    side.outage()
    with pytest.raises(TransientError):
        create(side, sha)
    assert side.github.find_deployment(side.repos.repo, sha, "prod", "d-1") is None
