"""Contract of the PullRequestHost port: FakeGitHub and the GitHub adapter (PyGithub against the GitHub
stand-in, whose merges are real git merges) answer the same way. Branches created and reset (even
backwards), one open pull request per head and base, a squash merge onto the base with the title as
its subject, and each refusal a merge can meet: a head that moved, a conflict (an edit on the line next
to the pull request's), a closed pull request and a protected branch; an edit far from it merges."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

import pytest

from tagrelay.errors import TransientError, WriteConflict
from tagrelay.ports import PullRequestHost, SourceRepository
from tests.contract.test_github import FakeSide, Repositories, stack_github, standin_get
from tests.fakes.github import HEAD_MODIFIED, NOT_MERGEABLE, FakeGitHub

REVIEW_REQUIRED = "At least 1 approving review is required by reviewers with write access."
VALUES = b'# prod\nglobal:\n  imageTag: "aaaaaaa"\n  replicas: 2\n\nnotes:\n  a: 1\n  b: 2\n  c: 3\n'
BRANCH = "tagrelay/app/prod"


class Host(PullRequestHost, SourceRepository, Protocol):
    """The port, and the commits the assertions read (one GitHub client serves both)."""


@dataclass
class Side:
    github: Host
    repos: Repositories
    pull: Callable[[int], dict[str, Any]]  # number -> {"state": ..., "merged": ...} as GitHub shows it
    protect: Callable[[str | None], None]  # reason: merges are refused so (None: allowed again)
    outage: Callable[[], None]  # the next merge requests fail with a 5xx


@pytest.fixture(params=["fake", pytest.param("stack", marks=pytest.mark.stack)])
def side(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Side]:
    if request.param == "fake":
        fake = FakeGitHub()
        fake_repos = FakeSide(fake)

        def fake_pull(number: int) -> dict[str, Any]:
            [pull] = [p for p in fake.pulls[fake_repos.repo] if p.number == number]
            return {"state": pull.state, "merged": pull.merged}

        def fake_protect(reason: str | None) -> None:
            if reason is None:
                fake.merge_refusals.clear()
            else:
                fake.merge_refusals[fake_repos.repo] = reason

        yield Side(fake, fake_repos, fake_pull, fake_protect, lambda: fake.faults.fail("merge_pull_request", times=5))
        return
    stack, github, repos = stack_github(request, tmp_path_factory)
    control = stack.github_control

    def stack_pull(number: int) -> dict[str, Any]:
        body = standin_get(stack, f"/repos/{repos.repo}/pulls/{number}")
        return {"state": body["state"], "merged": body["merged"]}

    def stack_protect(reason: str | None) -> None:
        control.clear_faults()
        if reason is not None:
            control.inject(
                method="PUT", path_regex=r"/pulls/\d+/merge$", status=405, count=100, body={"message": reason}
            )

    def stack_outage() -> None:
        control.inject(method="PUT", path_regex=r"/pulls/\d+/merge$", status=502, count=5)

    try:
        yield Side(github, repos, stack_pull, stack_protect, stack_outage)
    finally:
        control.clear_faults()


def propose(side: Side, content: bytes, *, title: str = "deploy(prod): update image tag to bbbbbbb") -> str:
    """What the promoter does before opening a pull request: the branch reset to main's head, the file
    written on it (compare-and-swap on main's blob). Returns the branch's new head."""
    github, repo = side.github, side.repos.repo
    base_head = github.branch_head(repo, "main")
    assert base_head is not None
    github.reset_branch(repo, BRANCH, base_head, exists=github.branch_head(repo, BRANCH) is not None)
    blob = github.read_file(repo, "values.yaml", "main").blob_sha
    return github.write_file(repo, "values.yaml", BRANCH, content=content, blob_sha=blob, message=title).sha


def test_a_branch_is_created_and_reset_even_backwards_and_a_lost_race_is_a_conflict(side: Side) -> None:
    github, repo = side.github, side.repos.repo
    first = side.repos.commit({"values.yaml": VALUES}, "seed")
    second = side.repos.commit({"values.yaml": VALUES + b"# more\n"}, "more")
    assert github.branch_head(repo, BRANCH) is None
    github.reset_branch(repo, BRANCH, second, exists=False)
    assert github.branch_head(repo, BRANCH) == second
    github.reset_branch(repo, BRANCH, first, exists=True)  # not a fast-forward: forced
    assert github.branch_head(repo, BRANCH) == first
    with pytest.raises(WriteConflict):  # created by someone else since we looked
        github.reset_branch(repo, BRANCH, second, exists=False)
    with pytest.raises(WriteConflict):  # deleted since we looked
        github.reset_branch(repo, "tagrelay/app/gone", second, exists=True)
    assert github.branch_head(repo, BRANCH) == first


def test_one_open_pull_request_per_head_and_base_whose_head_follows_its_branch(side: Side) -> None:
    github, repo = side.github, side.repos.repo
    side.repos.commit({"values.yaml": VALUES}, "seed")
    head = propose(side, VALUES.replace(b"aaaaaaa", b"bbbbbbb"))
    assert github.open_pull_request(repo, BRANCH, "main") is None

    created = github.create_pull_request(repo, BRANCH, "main", title="deploy(prod): bbbbbbb", body="Commit: b")
    assert (created.head_sha, created.title) == (head, "deploy(prod): bbbbbbb")
    assert created.url.endswith(f"/{repo}/pull/{created.number}")
    assert github.open_pull_request(repo, BRANCH, "main") == created
    assert github.open_pull_request(repo, BRANCH, "develop") is None
    with pytest.raises(WriteConflict, match="already exists"):  # a concurrent evaluation opened it first
        github.create_pull_request(repo, BRANCH, "main", title="again", body="")

    moved = propose(side, VALUES.replace(b"aaaaaaa", b"ccccccc"))
    found = github.open_pull_request(repo, BRANCH, "main")
    assert found is not None and (found.number, found.head_sha) == (created.number, moved)

    github.update_pull_request(repo, created.number, title="deploy(prod): ccccccc", body="Commit: c")
    retitled = github.open_pull_request(repo, BRANCH, "main")
    assert retitled is not None and retitled.title == "deploy(prod): ccccccc"
    github.update_pull_request(repo, created.number, close=True)
    assert github.open_pull_request(repo, BRANCH, "main") is None
    assert side.pull(created.number) == {"state": "closed", "merged": False}


def test_a_pull_request_with_nothing_to_merge_is_refused(side: Side) -> None:
    github, repo = side.github, side.repos.repo
    main = side.repos.commit({"values.yaml": VALUES}, "seed")
    github.reset_branch(repo, BRANCH, main, exists=False)
    with pytest.raises(WriteConflict, match="No commits between"):
        github.create_pull_request(repo, BRANCH, "main", title="empty", body="")


def test_a_merge_squashes_onto_the_base_with_the_title_as_its_subject(side: Side) -> None:
    github, repo = side.github, side.repos.repo
    side.repos.commit({"values.yaml": VALUES, "other.txt": b"kept\n"}, "seed")
    wanted = VALUES.replace(b"aaaaaaa", b"bbbbbbb")
    head = propose(side, wanted)
    pull = github.create_pull_request(repo, BRANCH, "main", title="deploy(prod): bbbbbbb", body="Commit: b")

    merged = github.merge_pull_request(
        repo, pull.number, head_sha=head, title="deploy(prod): bbbbbbb", message="Commit: b"
    )

    assert merged.merged and merged.sha is not None
    assert github.branch_head(repo, "main") == merged.sha
    assert github.resolve_commit(repo, merged.sha).subject == "deploy(prod): bbbbbbb"
    assert github.read_file(repo, "values.yaml", "main").content == wanted
    assert github.read_file(repo, "other.txt", "main").content == b"kept\n"
    assert github.compare(repo, head, "main") == "diverged"  # a squash: the branch's commit is not on main
    assert side.pull(pull.number) == {"state": "closed", "merged": True}
    assert github.open_pull_request(repo, BRANCH, "main") is None
    again = github.merge_pull_request(repo, pull.number, head_sha=head, title="x", message="")
    assert (again.merged, again.sha, again.reason) == (False, None, NOT_MERGEABLE)


def test_a_merge_is_refused_for_a_moved_head_and_a_protected_branch_and_the_pull_request_stays_open(
    side: Side,
) -> None:
    github, repo = side.github, side.repos.repo
    side.repos.commit({"values.yaml": VALUES}, "seed")
    first = propose(side, VALUES.replace(b"aaaaaaa", b"bbbbbbb"))
    pull = github.create_pull_request(repo, BRANCH, "main", title="t", body="")
    head = propose(side, VALUES.replace(b"aaaaaaa", b"ccccccc"))

    stale = github.merge_pull_request(repo, pull.number, head_sha=first, title="t", message="")
    assert (stale.merged, stale.reason) == (False, HEAD_MODIFIED)

    side.protect(REVIEW_REQUIRED)
    refused = github.merge_pull_request(repo, pull.number, head_sha=head, title="t", message="")
    assert (refused.merged, refused.sha, refused.reason) == (False, None, REVIEW_REQUIRED)
    assert side.pull(pull.number) == {"state": "open", "merged": False}

    side.protect(None)  # reviewed
    assert github.merge_pull_request(repo, pull.number, head_sha=head, title="t", message="").merged


def test_an_edit_next_to_the_proposed_line_conflicts_and_one_far_from_it_merges(side: Side) -> None:
    github, repo = side.github, side.repos.repo
    side.repos.commit({"values.yaml": VALUES}, "seed")
    head = propose(side, VALUES.replace(b"aaaaaaa", b"bbbbbbb"))
    pull = github.create_pull_request(repo, BRANCH, "main", title="t", body="")

    far = VALUES.replace(b"  c: 3\n", b"  c: 4\n")
    side.repos.commit({"values.yaml": far}, "ops: far from the tag line")
    merged = github.merge_pull_request(repo, pull.number, head_sha=head, title="t", message="")
    assert merged.merged
    assert github.read_file(repo, "values.yaml", "main").content == far.replace(b"aaaaaaa", b"bbbbbbb")

    head = propose(side, github.read_file(repo, "values.yaml", "main").content.replace(b"bbbbbbb", b"ccccccc"))
    pull = github.create_pull_request(repo, BRANCH, "main", title="t2", body="")
    lines = github.read_file(repo, "values.yaml", "main").content.splitlines(keepends=True)
    lines.insert(3, b"  # hand edit: next to the tag line\n")
    side.repos.commit({"values.yaml": b"".join(lines)}, "ops: next to the tag line")
    conflict = github.merge_pull_request(repo, pull.number, head_sha=head, title="t2", message="")
    assert (conflict.merged, conflict.reason) == (False, NOT_MERGEABLE)
    assert side.pull(pull.number) == {"state": "open", "merged": False}


def test_an_outage_is_transient_and_each_call_is_one_request(side: Side) -> None:
    github, repo = side.github, side.repos.repo
    side.repos.commit({"values.yaml": VALUES}, "seed")
    before = github.request_count
    head = propose(side, VALUES.replace(b"aaaaaaa", b"bbbbbbb"))  # 2 branch heads, reset, read, write
    pull = github.create_pull_request(repo, BRANCH, "main", title="t", body="")
    github.open_pull_request(repo, BRANCH, "main")
    assert github.request_count - before == 7

    side.outage()
    with pytest.raises(TransientError):
        github.merge_pull_request(repo, pull.number, head_sha=head, title="t", message="")
    assert side.pull(pull.number) == {"state": "open", "merged": False}


def test_the_pull_request_a_commit_came_through_open_then_squash_merged_or_none(side: Side) -> None:
    github, repo = side.github, side.repos.repo
    seed = side.repos.commit({"values.yaml": VALUES}, "seed")
    head = propose(side, VALUES.replace(b"aaaaaaa", b"bbbbbbb"))
    pull = github.create_pull_request(repo, BRANCH, "main", title="deploy(prod): bbbbbbb", body="Commit: b")
    before = github.request_count

    assert github.pull_request_for_commit(repo, head) == pull  # open, holding the commit in its head
    assert github.pull_request_for_commit(repo, seed) is None  # on main before any pull request
    assert github.request_count - before == 2

    merged = github.merge_pull_request(repo, pull.number, head_sha=head, title="deploy(prod): bbbbbbb", message="")
    assert merged.sha is not None
    found = github.pull_request_for_commit(repo, merged.sha)  # the squash commit: GitHub's merge_commit_sha
    assert found is not None and (found.number, found.url, found.merged) == (pull.number, pull.url, True)
    assert github.pull_request_for_commit(repo, "0" * 40) is None  # a commit GitHub does not know
