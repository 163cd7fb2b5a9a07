"""Pull-request write-back (gitops.write: pull_request) through the promoter handler on the local stack.

One branch per environment (tagrelay/<app>/<env>), one pull request, squash-merged when GitHub allows;
when a protected branch refuses the merge, the pull request waits, a newer release takes it over, an
older one never replaces it (no-downgrade), and the merge happens once GitHub allows it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import requests

from devstack.scenario import SeedScenario
from devstack.stack import GITHUB_TOKEN, LocalStack
from tagrelay.adapters.store import Ledger
from tests.integration.test_promoter_handler import invoke

pytestmark = pytest.mark.stack

BRANCH = "tagrelay/mosaic-life/prod"
REVIEW_REQUIRED = "At least 1 approving review is required by reviewers with write access."


def pulls(stack: LocalStack, scenario: SeedScenario) -> list[dict[str, Any]]:
    answer = requests.get(
        f"{stack.github.url}/repos/{scenario.gitops_repo}/pulls?state=all",
        headers={"Authorization": f"token {GITHUB_TOKEN}"},
        timeout=10,
    )
    answer.raise_for_status()
    return list(answer.json())


def deliver(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [invoke(event) for event in events]


def prod_tag(scenario: SeedScenario) -> str:
    text = scenario.values_file("prod").decode()
    return text.split("imageTag:", 1)[1].split()[0].strip('"')


def test_a_release_goes_through_a_pull_request_merged_when_github_allows(
    stack: LocalStack, scenario: SeedScenario, promoter_env: Callable[..., Any]
) -> None:
    promoter_env(gitops={"write": "pull_request"})
    control = stack.github_control

    first = scenario.release(scenario.commit("main"), branch="main")
    results = deliver(first.events)

    assert [r["decision"] for r in results].count("promote") == 1
    assert prod_tag(scenario) == first.tag
    (merged,) = pulls(stack, scenario)
    assert (merged["state"], merged["head"]["ref"], merged["base"]["ref"]) == ("closed", BRANCH, "main")
    assert merged["merged_at"] and merged["merge_commit_sha"] == scenario.gitops.head("main")
    records = Ledger("tagrelay-ledger").history("mosaic-life", "prod", limit=20).records
    (record,) = [r for r in records if r.outcome == "committed"]
    assert record.pull_request_url == merged["html_url"]
    assert record.gitops_commit == merged["merge_commit_sha"]
    # The squash commit on main carries the promoter's commit message, as a direct commit does.
    assert f"update image tag to {first.tag}" in scenario.gitops.log("main").split("\ndiff", 1)[0]

    # The branch becomes protected: merging needs a review.
    control.inject(
        method="PUT", path_regex=r"/pulls/\d+/merge$", status=405, count=100, body={"message": REVIEW_REQUIRED}
    )
    older_sha, newer_sha, newest_sha = (scenario.commit("main") for _ in range(3))
    newer = scenario.release(newer_sha, branch="main")
    waiting = deliver(newer.events)
    assert {r["reason"] for r in waiting if r["decision"] == "wait"} >= {"pull_request_open"}
    assert prod_tag(scenario) == first.tag
    open_pull = next(p for p in pulls(stack, scenario) if p["state"] == "open")
    assert newer.tag in open_pull["title"]

    # An older release whose CI finished later: it never replaces the newer proposal (no-downgrade).
    older = scenario.release(older_sha, branch="main")
    late = deliver(older.events)
    assert ("superseded", "newer_commit_deployed") in {(r["decision"], r["reason"]) for r in late}
    assert newer.tag in next(p for p in pulls(stack, scenario) if p["state"] == "open")["title"]

    # A newer release takes the open pull request over.
    newest = scenario.release(newest_sha, branch="main")
    deliver(newest.events)
    open_pulls = [p for p in pulls(stack, scenario) if p["state"] == "open"]
    assert [p["number"] for p in open_pulls] == [open_pull["number"]]
    assert newest.tag in open_pulls[0]["title"]

    # Reviewed: GitHub allows the merge, and the next evaluation merges it.
    control.clear_faults()
    after = invoke(newest.events[0])
    assert after["decision"] == "promote"
    assert prod_tag(scenario) == newest.tag
    assert all(p["state"] == "closed" for p in pulls(stack, scenario))


def test_a_hand_edit_that_conflicts_with_a_waiting_pull_request_is_rebuilt_on_the_branch_not_stuck(
    stack: LocalStack, scenario: SeedScenario, promoter_env: Callable[..., Any]
) -> None:
    """The GitOps branch moves while the pull request waits for a review, with an edit next to the tag
    line (git calls that a conflict). The next evaluation rebuilds the pull request's branch on the
    branch's new head (the compare-and-swap of the pull-request path) instead of waiting forever."""
    promoter_env(gitops={"write": "pull_request"})
    control = stack.github_control
    control.inject(
        method="PUT", path_regex=r"/pulls/\d+/merge$", status=405, count=100, body={"message": REVIEW_REQUIRED}
    )
    release = scenario.release(scenario.commit("main"), branch="main")
    waiting = deliver(release.events)
    assert {r["reason"] for r in waiting if r["decision"] == "wait"} >= {"pull_request_open"}

    lines = scenario.values_file("prod").decode().splitlines(keepends=True)
    at = next(i for i, line in enumerate(lines) if "imageTag:" in line)
    lines.insert(at + 1, "  # hand edit: next to the tag line\n")
    edited = "".join(lines).encode()
    scenario.gitops.commit_files({"environments/prod/values.yaml": edited}, "ops: hand edit", branch="main")

    control.clear_faults()  # reviewed
    after = invoke(release.events[0])

    assert (after["decision"], after["reason"]) == ("promote", "committed"), after
    assert prod_tag(scenario) == release.tag
    assert b"# hand edit: next to the tag line" in scenario.values_file("prod")
    assert all(p["state"] == "closed" for p in pulls(stack, scenario))


def test_a_merge_whose_answer_was_lost_is_recorded_by_the_retry_with_its_pull_request(
    stack: LocalStack, scenario: SeedScenario, promoter_env: Callable[..., Any]
) -> None:
    """GitHub merges, but its answer comes after the client's timeout (every attempt: PyGithub retries the
    PUT). Lambda's retry finds the tag already on main and recovers the record from the squash commit:
    with the URL of the pull request that carried it, as the promoter would have recorded it."""
    from tagrelay.errors import TransientError

    promoter_env(
        gitops={"write": "pull_request"},
        extra={
            "github": {
                "base_url": stack.github.url,
                "auth": {"token_secret": "tagrelay/github-token"},
                "timeout_seconds": 1,
            }
        },
    )
    control = stack.github_control
    release = scenario.release(scenario.commit("main"), branch="main")
    control.inject(method="PUT", path_regex=r"/pulls/\d+/merge$", kind="delay", seconds=1.5, count=10)
    with pytest.raises(TransientError, match="github"):
        invoke(release.events[0])
    control.clear_faults()
    (merged,) = pulls(stack, scenario)
    assert merged["merged_at"] and prod_tag(scenario) == release.tag  # merged: only the answer was lost

    retried = invoke(release.events[0])  # Lambda's retry of the same event

    assert (retried["decision"], retried["reason"]) == ("promote", "committed"), retried
    records = Ledger("tagrelay-ledger").history("mosaic-life", "prod", limit=20).records
    (record,) = [r for r in records if r.outcome == "committed"]
    assert record.gitops_commit == merged["merge_commit_sha"] == scenario.gitops.head("main")
    assert record.pull_request_url == merged["html_url"]
    assert len(pulls(stack, scenario)) == 1
