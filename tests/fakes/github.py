"""FakeGitHub: the SourceRepository and GitOpsStore ports in memory, with git's semantics where they
matter to tagrelay.

* commits have parents and a full tree; a SHA names its commit by any unique prefix, and a prefix
  that names several is not found (CommitNotFound), as GitHub answers it;
* compare(base, head) follows ancestry: identical, ahead (head contains base), behind, diverged; its
  commits are those head has that base has not, oldest first;
* read_file answers the bytes and the git blob SHA (``blob <size>\\0<bytes>``), at a branch or a
  commit; write_file is GitHub's compare-and-swap: it commits only if the file's blob is still the
  one the caller read, and raises WriteConflict otherwise;
* commits_touching lists the commits of a branch that changed a path, newest first.

Test knobs: ``faults`` (fail a method, or lose its answer after it committed), ``before_write``
(callbacks run right before the next write checks its blob: a concurrent commit), and helpers to make
commits and branches as a developer or another tool would.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from tagrelay.domain.facts import CommitRef, CompareStatus, Comparison, FileVersion, SourceCommit
from tagrelay.errors import CommitNotFound, FileNotFound, FileTooLarge, WriteConflict
from tests.fakes.faults import Faults

WEB = "https://github.example"
COMPARE_PAGE = 250  # GitHub sends up to 250 commits with a comparison


@dataclass(frozen=True)
class Commit:
    sha: str
    parents: tuple[str, ...]
    tree: Mapping[str, bytes]
    message: str
    author: str
    committed_at: datetime


@dataclass
class Repo:
    name: str
    commits: dict[str, Commit] = field(default_factory=dict)
    branches: dict[str, str] = field(default_factory=dict)


def git_blob_sha(content: bytes) -> str:
    """The git blob SHA-1 of ``content``: what GitHub answers as a file's ``sha``."""
    return hashlib.sha1(b"blob %d\0" % len(content) + content, usedforsecurity=False).hexdigest()


class FakeGitHub:
    """Both GitHub ports over in-memory repositories."""

    def __init__(
        self,
        *,
        clock: Callable[[], datetime] | None = None,
        committer: str = "tagrelay[bot]",
    ) -> None:
        self.repos: dict[str, Repo] = {}
        self.request_count = 0
        self.faults = Faults("github")
        self.before_write: list[Callable[[], object]] = []
        self.committer = committer
        self._clock = clock
        self._sequence = itertools.count(1)
        self._epoch = datetime(2025, 1, 1, tzinfo=UTC)

    # --- SourceRepository ---

    def resolve_commit(self, repo: str, short_sha: str) -> SourceCommit:
        self._call("resolve_commit")
        try:
            commit = self._commit(repo, short_sha, by_prefix_only=True)
        except CommitNotFound as unknown:
            if len(short_sha) == 40:
                raise
            # The adapter's hint: GitHub answers a prefix several commits share as an unknown one.
            raise CommitNotFound(
                f"{unknown}; GitHub answers so too when more than one commit starts with "
                f"{short_sha}: a longer SHA settles it"
            ) from None
        return SourceCommit(
            sha=commit.sha,
            author=commit.author,
            committed_at=commit.committed_at,
            subject=commit.message.splitlines()[0] if commit.message else "",
            url=f"{WEB}/{repo}/commit/{commit.sha}",
        )

    def compare(self, repo: str, base: str, head: str) -> CompareStatus:
        self._call("compare")
        return self._compare(repo, base, head).status

    def comparison(self, repo: str, base: str, head: str) -> Comparison:
        self._call("comparison")
        return self._compare(repo, base, head)

    # --- GitOpsStore ---

    def read_file(self, repo: str, path: str, branch: str, *, max_bytes: int | None = None) -> FileVersion:
        self._call("read_file")
        try:
            commit = self._commit(repo, branch)
        except CommitNotFound:
            raise FileNotFound(f"{path} does not exist on {repo}@{branch}") from None
        content = commit.tree.get(path)
        if content is None:
            raise FileNotFound(f"{path} does not exist on {repo}@{branch}")
        if max_bytes is not None and len(content) > max_bytes:
            raise FileTooLarge(
                f"{path} on {repo}@{branch} is {len(content)} bytes, more than {max_bytes}", len(content)
            )
        return FileVersion(content=content, blob_sha=git_blob_sha(content))

    def write_file(
        self, repo: str, path: str, branch: str, *, content: bytes, blob_sha: str, message: str
    ) -> CommitRef:
        self._call("write_file")
        # Each callback runs once, before this write (one may plan another for the next write).
        callbacks, self.before_write = self.before_write, []
        for callback in callbacks:
            callback()
        head = self._repo(repo).commits.get(self._repo(repo).branches.get(branch, ""))
        current = head.tree.get(path) if head else None
        if current is None or git_blob_sha(current) != blob_sha:
            raise WriteConflict(f"{path} does not match {blob_sha}")
        sha = self.commit(repo, branch, {path: content}, message, author=self.committer)
        self.faults.after("write_file")
        return CommitRef(sha=sha, url=f"{WEB}/{repo}/commit/{sha}", message=message)

    def commits_touching(self, repo: str, path: str, branch: str, *, limit: int) -> list[CommitRef]:
        self._call("commits_touching")
        found: list[CommitRef] = []
        for commit in self._history(repo, self._commit(repo, branch).sha):
            parent = self._repo(repo).commits[commit.parents[0]] if commit.parents else None
            if commit.tree.get(path) != (parent.tree.get(path) if parent else None):
                found.append(
                    CommitRef(
                        sha=commit.sha,
                        url=f"{WEB}/{repo}/commit/{commit.sha}",
                        message=commit.message,
                        author=commit.author,
                    )
                )
                if len(found) >= limit:
                    break
        return found

    # --- what developers and other tools do (not part of the ports) ---

    def commit(
        self,
        repo: str,
        branch: str,
        files: Mapping[str, bytes | str | None],
        message: str,
        *,
        author: str = "dev",
        at: datetime | None = None,
    ) -> str:
        """A commit on ``branch`` (created if new) changing ``files`` (None deletes); returns its SHA."""
        store = self.repos.setdefault(repo, Repo(repo))
        parent = store.commits.get(store.branches.get(branch, ""))
        tree = dict(parent.tree) if parent else {}
        for path, content in files.items():
            if content is None:
                tree.pop(path, None)
            else:
                tree[path] = content.encode() if isinstance(content, str) else content
        number = next(self._sequence)
        when = at or (self._clock() if self._clock else self._epoch + timedelta(seconds=number))
        sha = hashlib.sha1(f"{repo}\0{branch}\0{number}\0{message}".encode(), usedforsecurity=False).hexdigest()
        store.commits[sha] = Commit(sha, (parent.sha,) if parent else (), tree, message, author, when)
        store.branches[branch] = sha
        return sha

    def create_branch(self, repo: str, branch: str, start: str) -> str:
        """``branch`` at the commit ``start`` (a branch or a SHA) names."""
        sha = self._commit(repo, start).sha
        self._repo(repo).branches[branch] = sha
        return sha

    def add_commit_with_sha(self, repo: str, sha: str, branch: str, message: str) -> None:
        """A commit whose SHA is chosen: to make two commits share a prefix (then not found, as on GitHub)."""
        store = self._repo(repo)
        parent = store.commits[store.branches[branch]]
        store.commits[sha] = Commit(sha, (parent.sha,), dict(parent.tree), message, "dev", self._epoch)
        store.branches[branch] = sha

    def head(self, repo: str, branch: str) -> str:
        return self._repo(repo).branches[branch]

    def file(self, repo: str, path: str, ref: str) -> bytes | None:
        return self._commit(repo, ref).tree.get(path)

    def log(self, repo: str, ref: str) -> list[Commit]:
        """The commits reachable from ``ref``, newest first."""
        return list(self._history(repo, self._commit(repo, ref).sha))

    # --- internals ---

    def _call(self, method: str) -> None:
        self.request_count += 1
        self.faults.before(method)

    def _repo(self, repo: str) -> Repo:
        store = self.repos.get(repo)
        if store is None:
            raise CommitNotFound(f"repository {repo} not found")
        return store

    def _commit(self, repo: str, ref: str, *, by_prefix_only: bool = False) -> Commit:
        store = self._repo(repo)
        if not by_prefix_only and ref in store.branches:
            return store.commits[store.branches[ref]]
        matches = [commit for sha, commit in store.commits.items() if sha.startswith(ref.lower())] if ref else []
        if len(matches) != 1:  # none, or several: GitHub answers both alike
            raise CommitNotFound(f"no commit found for SHA: {ref}")
        return matches[0]

    def _ancestors(self, repo: str, sha: str) -> set[str]:
        return {commit.sha for commit in self._history(repo, sha)}

    def _history(self, repo: str, sha: str) -> Iterator[Commit]:
        """Every commit reachable from ``sha``, newest first (by time, then by walk order)."""
        store = self._repo(repo)
        seen: dict[str, int] = {}
        pending = [sha]
        while pending:
            current = pending.pop(0)
            if current in seen:
                continue
            seen[current] = len(seen)
            pending.extend(store.commits[current].parents)
        commits = [store.commits[s] for s in seen]
        yield from sorted(commits, key=lambda c: (c.committed_at, -seen[c.sha]), reverse=True)

    def _compare(self, repo: str, base: str, head: str) -> Comparison:
        base_commit, head_commit = self._commit(repo, base), self._commit(repo, head)
        base_ancestors = self._ancestors(repo, base_commit.sha)
        head_ancestors = self._ancestors(repo, head_commit.sha)
        status: CompareStatus
        if base_commit.sha == head_commit.sha:
            status = "identical"
        elif base_commit.sha in head_ancestors:
            status = "ahead"
        elif head_commit.sha in base_ancestors:
            status = "behind"
        else:
            status = "diverged"
        ahead = [c.sha for c in reversed(list(self._history(repo, head_commit.sha))) if c.sha not in base_ancestors]
        return Comparison(status, tuple(ahead[:COMPARE_PAGE]), len(ahead))
