"""Contract of the SourceRepository and GitOpsStore ports: FakeGitHub and the GitHub adapter (PyGithub
against the GitHub stand-in, backed by real git) answer the same questions the same way."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import pytest
import requests

from devstack.gitrepo import GitWorkspace, make_ambiguous_short_sha
from devstack.stack import GITHUB_TOKEN, LocalStack
from tagrelay.config import parse_config
from tagrelay.errors import CommitNotFound, FileNotFound, FileTooLarge, WriteConflict
from tagrelay.ports import GitHost
from tests.fakes.github import FakeGitHub, git_blob_sha

if TYPE_CHECKING:
    from tagrelay.adapters.github import GitHub


class Repositories(Protocol):
    """How a test makes commits, whichever side serves them."""

    repo: str

    def commit(self, files: Mapping[str, str | bytes | None], message: str, branch: str = "main") -> str: ...
    def branch(self, name: str, start: str) -> None: ...
    def ambiguous_prefix(self) -> str: ...


@dataclass
class FakeSide:
    github: FakeGitHub
    repo: str = "acme/contract"

    def commit(self, files: Mapping[str, str | bytes | None], message: str, branch: str = "main") -> str:
        return self.github.commit(self.repo, branch, files, message)

    def branch(self, name: str, start: str) -> None:
        self.github.create_branch(self.repo, name, start)

    def ambiguous_prefix(self) -> str:
        head = self.github.head(self.repo, "main")
        for suffix in ("1", "2"):
            self.github.add_commit_with_sha(self.repo, "abcdef0" + suffix * 33, "main", f"collides {suffix}")
        self.github.create_branch(self.repo, "main", head)
        return "abcdef0"


@dataclass
class StackSide:
    workspace: GitWorkspace
    repo: str

    def commit(self, files: Mapping[str, str | bytes | None], message: str, branch: str = "main") -> str:
        return self.workspace.commit_files(files, message, branch=branch)

    def branch(self, name: str, start: str) -> None:
        self.workspace.create_branch(name, start)

    def ambiguous_prefix(self) -> str:
        return make_ambiguous_short_sha(self.workspace.bare_path)


def stack_github(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> tuple[LocalStack, GitHub, StackSide]:
    """The stack side: the GitHub adapter, and a fresh repository on the stand-in named after the test."""
    from github import Auth

    from tagrelay.adapters.github import GitHub

    stack: LocalStack = request.getfixturevalue("stack")
    repo = "contract/" + re.sub(r"[^a-z0-9]+", "-", request.node.name.lower())[:50].strip("-")
    workspace = GitWorkspace.create(stack.github_control.repo_path(repo), tmp_path_factory.mktemp("contract"))
    config = parse_config(stack.config_data()).github
    return stack, GitHub(config, lambda: Auth.Token(GITHUB_TOKEN)), StackSide(workspace, repo)


def standin_get(stack: LocalStack, path: str) -> Any:
    """What the stand-in answers to a GET of ``path`` (how the test sees what the adapter did)."""
    answer = requests.get(f"{stack.github.url}{path}", headers={"Authorization": f"token {GITHUB_TOKEN}"}, timeout=10)
    answer.raise_for_status()
    return answer.json()


@pytest.fixture(params=["fake", pytest.param("stack", marks=pytest.mark.stack)])
def side(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[GitHost, Repositories]]:
    if request.param == "fake":
        fake = FakeGitHub()
        yield fake, FakeSide(fake)
        return
    _, github, repos = stack_github(request, tmp_path_factory)
    yield github, repos


def test_a_short_sha_resolves_to_exactly_one_commit(side: tuple[GitHost, Repositories]) -> None:
    github, repos = side
    sha = repos.commit({"a.txt": "a\n"}, "feat: first line\n\nbody")
    commit = github.resolve_commit(repos.repo, sha[:7])
    assert (commit.sha, commit.subject) == (sha, "feat: first line")
    assert commit.author and commit.url
    with pytest.raises(CommitNotFound):
        github.resolve_commit(repos.repo, "0000000")
    # GitHub answers a prefix several commits share as an unknown one; the message says a longer SHA settles it.
    prefix = repos.ambiguous_prefix()
    with pytest.raises(CommitNotFound, match=f"more than one commit starts with {prefix}"):
        github.resolve_commit(repos.repo, prefix)


def test_compare_follows_ancestry_by_sha_and_by_branch(side: tuple[GitHost, Repositories]) -> None:
    github, repos = side
    base = repos.commit({"a.txt": "1\n"}, "one")
    repos.branch("develop", base)
    second = repos.commit({"a.txt": "2\n"}, "two")
    third = repos.commit({"a.txt": "3\n"}, "three")
    other = repos.commit({"b.txt": "x\n"}, "elsewhere", branch="develop")
    assert github.compare(repos.repo, base, base) == "identical"
    assert github.compare(repos.repo, base, third) == "ahead"
    assert github.compare(repos.repo, third, base[:7]) == "behind"
    assert github.compare(repos.repo, second, "main") == "ahead"
    assert github.compare(repos.repo, other, "main") == "diverged"
    comparison = github.comparison(repos.repo, base, third)
    assert (comparison.status, comparison.commits, comparison.total_commits) == ("ahead", (second, third), 2)
    assert comparison.complete
    with pytest.raises(CommitNotFound):
        github.compare(repos.repo, base, "f" * 40)


def test_a_file_is_read_with_its_blob_sha_at_a_branch_or_a_commit(side: tuple[GitHost, Repositories]) -> None:
    github, repos = side
    first = repos.commit({"env/values.yaml": b"tag: one\n"}, "one")
    repos.commit({"env/values.yaml": b"tag: two\n"}, "two")
    now = github.read_file(repos.repo, "env/values.yaml", "main")
    assert (now.content, now.blob_sha) == (b"tag: two\n", git_blob_sha(b"tag: two\n"))
    assert github.read_file(repos.repo, "env/values.yaml", first).content == b"tag: one\n"
    with pytest.raises(FileNotFound):
        github.read_file(repos.repo, "env/missing.yaml", "main")
    with pytest.raises(FileNotFound):
        github.read_file(repos.repo, "env/values.yaml", "no-such-branch")
    with pytest.raises(FileTooLarge) as too_large:
        github.read_file(repos.repo, "env/values.yaml", "main", max_bytes=4)
    assert too_large.value.size == len(b"tag: two\n")


def test_a_write_is_a_compare_and_swap_on_the_blob_read(side: tuple[GitHost, Repositories]) -> None:
    github, repos = side
    repos.commit({"values.yaml": b"tag: one\n", "other.txt": b"kept\n"}, "seed")
    read = github.read_file(repos.repo, "values.yaml", "main")
    written = github.write_file(
        repos.repo, "values.yaml", "main", content=b"tag: two\n", blob_sha=read.blob_sha, message="deploy: two"
    )
    assert github.resolve_commit(repos.repo, written.sha).subject == "deploy: two"
    assert github.read_file(repos.repo, "values.yaml", "main").content == b"tag: two\n"
    assert github.read_file(repos.repo, "other.txt", "main").content == b"kept\n"
    with pytest.raises(WriteConflict):  # the blob read before the write is stale now
        github.write_file(repos.repo, "values.yaml", "main", content=b"tag: x\n", blob_sha=read.blob_sha, message="x")
    assert github.read_file(repos.repo, "values.yaml", "main").content == b"tag: two\n"


def test_commits_touching_a_path_come_newest_first_up_to_the_limit(side: tuple[GitHost, Repositories]) -> None:
    github, repos = side
    first = repos.commit({"values.yaml": b"1\n"}, "one")
    repos.commit({"README.md": b"docs\n"}, "docs only")
    second = repos.commit({"values.yaml": b"2\n"}, "two")
    third = repos.commit({"values.yaml": b"3\n"}, "three")
    touching = github.commits_touching(repos.repo, "values.yaml", "main", limit=10)
    assert [c.sha for c in touching] == [third, second, first]
    assert [c.subject for c in touching] == ["three", "two", "one"]
    assert [c.sha for c in github.commits_touching(repos.repo, "values.yaml", "main", limit=2)] == [third, second]


def test_each_call_is_one_request(side: tuple[GitHost, Repositories]) -> None:
    github, repos = side
    sha = repos.commit({"values.yaml": b"1\n"}, "one")
    before = github.request_count
    github.resolve_commit(repos.repo, sha[:7])
    github.compare(repos.repo, sha, "main")
    github.read_file(repos.repo, "values.yaml", "main")
    assert github.request_count - before == 3
