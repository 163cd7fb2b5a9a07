"""Pull-request write-back (gitops.write: pull_request) on the fakes: the promotion rules of the
pull-request path, with FakeGitHub's pull requests (held to the adapter by tests/contract/
test_pull_requests.py). One branch and pull request per environment, squash-merged when GitHub allows;
a protected branch makes it wait; an older release never replaces a newer proposal; a newer one takes
it over; a hand edit next to the tag line rebuilds the branch; a pull request a concurrent evaluation
opened first, and a merge whose answer was lost, end in one merge and one record.

The same paths end to end, through the promoter handler and the GitHub stand-in, are in
tests/integration/test_pull_request_writeback.py.
"""

from __future__ import annotations

import pytest

from tagrelay.errors import TransientError, WriteConflict
from tagrelay.services.promote import Promoter
from tests.fakes.github import PullRequest
from tests.fakes.world import FakeWorld
from tests.services.support import deliver, deploy_commits, gitops_tag, hand_edit, history, invoke

BRANCH = "tagrelay/mosaic-life/prod"
REVIEW_REQUIRED = "At least 1 approving review is required by reviewers with write access."


@pytest.fixture
def promoter(world: FakeWorld) -> Promoter:
    return world.promoter(world.config(gitops={"write": "pull_request"}))


def pulls(world: FakeWorld) -> list[PullRequest]:
    return world.github.pulls.get(world.gitops_repo, [])


def open_pulls(world: FakeWorld) -> list[PullRequest]:
    return [pull for pull in pulls(world) if pull.state == "open"]


def test_a_release_is_a_pull_request_squash_merged_and_recorded_with_its_url(
    world: FakeWorld, promoter: Promoter
) -> None:
    sha = world.commit("main")
    assert deliver(world, promoter, world.release(sha).events)["decision"] == "promote"

    [pull] = pulls(world)
    assert (pull.head, pull.base, pull.state, pull.merged) == (BRANCH, "main", "closed", True)
    assert pull.merge_commit_sha == world.github.head(world.gitops_repo, "main")
    assert gitops_tag(world, "prod") == sha[:7]
    [record] = [r for r in history(world, "prod") if r.outcome == "committed"]
    assert record.pull_request_url == f"https://github.example/{world.gitops_repo}/pull/{pull.number}"
    assert record.gitops_commit == pull.merge_commit_sha
    # The squash commit on the GitOps branch carries the promoter's commit message, as a direct commit does.
    [message] = deploy_commits(world)
    assert message.startswith(f"deploy(prod): update image tag to {sha[:7]}") and f"Commit: {sha}" in message


def test_a_protected_branch_waits_a_newer_release_takes_the_pull_request_over_an_older_never_does(
    world: FakeWorld, promoter: Promoter
) -> None:
    first = world.commit("main")
    deliver(world, promoter, world.release(first).events)
    world.github.merge_refusals[world.gitops_repo] = REVIEW_REQUIRED  # merging now needs a review
    older_sha, newer_sha, newest_sha = (world.commit("main") for _ in range(3))

    waiting = deliver(world, promoter, world.release(newer_sha).events)
    assert (waiting["decision"], waiting["reason"]) == ("wait", "pull_request_open")
    assert REVIEW_REQUIRED in waiting["message"]
    assert gitops_tag(world, "prod") == first[:7]
    [proposal] = open_pulls(world)
    assert newer_sha[:7] in proposal.title
    waits = [r for r in history(world, "prod") if r.reason == "pull_request_open"]
    assert waits and {w.pull_request_url for w in waits} == {
        f"https://github.example/{world.gitops_repo}/pull/{proposal.number}"
    }

    late = deliver(world, promoter, world.release(older_sha).events)  # its CI finished later
    assert (late["decision"], late["reason"]) == ("superseded", "newer_commit_deployed")
    assert [p.title for p in open_pulls(world)] == [proposal.title]

    newest = world.release(newest_sha)
    deliver(world, promoter, newest.events)
    assert [p.number for p in open_pulls(world)] == [proposal.number]  # the same pull request, retitled
    assert newest_sha[:7] in open_pulls(world)[0].title

    del world.github.merge_refusals[world.gitops_repo]  # reviewed
    world.clock.tick()
    assert invoke(promoter, newest.events[0])["decision"] == "promote"
    assert gitops_tag(world, "prod") == newest_sha[:7]
    assert open_pulls(world) == []


def test_a_hand_edit_next_to_the_tag_line_rebuilds_the_waiting_pull_request_instead_of_waiting_forever(
    world: FakeWorld, promoter: Promoter
) -> None:
    world.github.merge_refusals[world.gitops_repo] = REVIEW_REQUIRED
    release = world.release(world.commit("main"))
    assert deliver(world, promoter, release.events)["reason"] == "pull_request_open"
    lines = world.values_file("prod").decode().splitlines(keepends=True)
    at = next(i for i, line in enumerate(lines) if "imageTag:" in line)
    lines.insert(at + 1, "  # hand edit: next to the tag line\n")
    hand_edit(world, "prod", "".join(lines))

    del world.github.merge_refusals[world.gitops_repo]  # reviewed: only the conflict stands in the way now
    world.clock.tick()
    after = invoke(promoter, release.events[0])

    assert (after["decision"], after["reason"]) == ("promote", "committed"), after
    assert gitops_tag(world, "prod") == release.tag
    assert b"# hand edit: next to the tag line" in world.values_file("prod")
    assert open_pulls(world) == [] and len(pulls(world)) == 1


def test_a_pull_request_a_concurrent_evaluation_opened_first_is_reused_after_the_conflict(
    world: FakeWorld, promoter: Promoter
) -> None:
    """Between this evaluation's look for an open pull request and its own, another one opened it:
    GitHub's 422 is a WriteConflict, and the re-read finds and merges that pull request."""
    release = world.release(world.commit("main"))

    def opened_concurrently() -> Exception:
        head = world.github.head(world.gitops_repo, BRANCH)
        [subject, *_] = world.github.log(world.gitops_repo, head)[0].message.splitlines()
        world.github.create_pull_request(world.gitops_repo, BRANCH, "main", title=subject, body="")
        return WriteConflict("Validation Failed: A pull request already exists for mosaic-stories:" + BRANCH)

    world.github.faults.fail("create_pull_request", opened_concurrently)
    assert deliver(world, promoter, release.events)["decision"] == "promote"

    assert world.github.faults.met == {"create_pull_request": 1}
    [pull] = pulls(world)
    assert pull.merged and gitops_tag(world, "prod") == release.tag
    assert len([r for r in history(world, "prod") if r.outcome == "committed"]) == 1
    assert world.sleeps  # the compare-and-swap backoff before the re-read


def test_a_merge_whose_answer_was_lost_is_recorded_by_the_retry_not_merged_twice(
    world: FakeWorld, promoter: Promoter
) -> None:
    release = world.release(world.commit("main"))
    world.github.faults.lose_answer("merge_pull_request")  # GitHub merged; the promoter saw a timeout
    with pytest.raises(TransientError):
        invoke(promoter, release.events[0])
    assert gitops_tag(world, "prod") == release.tag and len(deploy_commits(world)) == 1

    retried = invoke(promoter, release.events[0])  # Lambda's retry of the same event

    assert (retried["decision"], retried["reason"]) == ("promote", "committed"), retried
    [pull] = pulls(world)
    assert len(deploy_commits(world)) == 1 and pull.merged
    [record] = [r for r in history(world, "prod") if r.outcome == "committed"]
    assert record.gitops_commit == world.github.head(world.gitops_repo, "main") == pull.merge_commit_sha
    # The recovered record still links the pull request that carried the commit (history, notifications).
    assert record.pull_request_url == f"https://github.example/{world.gitops_repo}/pull/{pull.number}"
    assert world.github.calls.count("pull_request_for_commit") == 1  # one request, in the recovery only
