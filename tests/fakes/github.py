"""FakeGitHub: the SourceRepository, GitOpsStore, PullRequestHost and DeploymentRecords ports in
memory, with git's and GitHub's semantics where they matter to tagrelay (one object serves all four, as
the GitHub adapter does: one request count, one set of faults).

* commits have parents and a full tree; a SHA names its commit by any unique prefix, and a prefix
  that names several is not found (CommitNotFound), as GitHub answers it;
* compare(base, head) follows ancestry: identical, ahead (head contains base), behind, diverged; its
  commits are those head has that base has not, oldest first;
* read_file answers the bytes and the git blob SHA (``blob <size>\\0<bytes>``), at a branch or a
  commit; write_file is GitHub's compare-and-swap: it commits only if the file's blob is still the
  one the caller read, and raises WriteConflict otherwise;
* commits_touching lists the commits of a branch that changed a path, newest first;
* pull requests (the stand-in's rules, devstack/github_standin/collaboration.py): one open pull request
  per head and base, refused when its head has nothing the base lacks; an open pull request's head is
  its branch's head; a merge is a squash commit on the base, refused (``merged`` False, GitHub's reason)
  when the pull request is not open, its head moved from the SHA given, or the branches conflict (a
  three-way merge, tests/fakes/merge.py, as ``git merge-tree`` decides it);
* deployments: a ref resolved to a commit, statuses in order, and ``auto_inactive`` on a success marking
  the environment's earlier successful deployments inactive; listed newest first, 100 at most, as the
  adapter reads one page.

Test knobs: ``faults`` (fail a method, or lose its answer after it committed), ``before_write``
(callbacks run right before the next write checks its blob: a concurrent commit), ``merge_refusals``
(a protected branch: merges into the repository are refused with that reason, GitHub's 405), and helpers
to make commits and branches as a developer or another tool would.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from tagrelay.domain.facts import (
    CommitRef,
    CompareStatus,
    Comparison,
    FileVersion,
    MergeResult,
    PullRequestRef,
    SourceCommit,
)
from tagrelay.errors import CommitNotFound, FileNotFound, FileTooLarge, WriteConflict
from tests.fakes.faults import Faults
from tests.fakes.merge import merge_trees

WEB = "https://github.example"
COMPARE_PAGE = 250  # GitHub sends up to 250 commits with a comparison
DEPLOYMENTS_PAGE = 100  # the adapter reads one page of a commit's deployments to an environment
# GitHub's answers (docs.github.com/rest/pulls/pulls#merge-a-pull-request), as the stand-in gives them.
NOT_MERGEABLE = "Pull Request is not mergeable"
HEAD_MODIFIED = "Head branch was modified. Review and try the merge again."
MERGED = "Pull Request successfully merged"
DEPLOYMENT_STATES = frozenset({"error", "failure", "inactive", "in_progress", "queued", "pending", "success"})


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


@dataclass
class PullRequest:
    number: int
    head: str
    base: str
    title: str
    body: str
    head_sha: str
    state: str = "open"  # open, closed
    merge_commit_sha: str | None = None

    @property
    def merged(self) -> bool:
        return self.merge_commit_sha is not None


@dataclass(frozen=True)
class DeploymentStatus:
    state: str
    description: str
    log_url: str | None
    environment_url: str | None


@dataclass
class Deployment:
    id: int
    sha: str
    ref: str
    environment: str
    description: str
    payload: dict[str, Any]
    production: bool
    statuses: list[DeploymentStatus] = field(default_factory=list)

    @property
    def states(self) -> list[str]:
        """Its statuses' states, oldest first."""
        return [status.state for status in self.statuses]


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
        self.calls: list[str] = []  # each port method called, in order (what the stand-in's request log shows)
        self.faults = Faults("github")
        self.before_write: list[Callable[[], object]] = []
        self.pulls: dict[str, list[PullRequest]] = {}  # by repository, oldest first
        self.deployments: dict[str, list[Deployment]] = {}  # by repository, oldest first
        # repository -> why a merge into it is refused: a protected branch (review or checks required)
        self.merge_refusals: dict[str, str] = {}
        self.committer = committer
        self._ids = itertools.count(1)  # deployment ids are global on GitHub
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

    # --- PullRequestHost ---

    def branch_head(self, repo: str, branch: str) -> str | None:
        self._call("branch_head")
        store = self.repos.get(repo)
        return store.branches.get(branch) if store else None

    def reset_branch(self, repo: str, branch: str, sha: str, *, exists: bool) -> None:
        self._call("reset_branch")
        store = self._repo(repo)
        if sha not in store.commits:
            raise WriteConflict(f"Object does not exist: {sha}")
        if exists != (branch in store.branches):  # created or deleted since the caller looked: a race lost
            raise WriteConflict("Reference does not exist" if exists else "Reference already exists")
        store.branches[branch] = sha

    def open_pull_request(self, repo: str, head: str, base: str) -> PullRequestRef | None:
        self._call("open_pull_request")
        for pull in reversed(self.pulls.get(repo, [])):  # newest first
            if pull.state == "open" and (pull.head, pull.base) == (head, base):
                return self._pull_ref(repo, pull)
        return None

    def create_pull_request(self, repo: str, head: str, base: str, *, title: str, body: str) -> PullRequestRef:
        self._call("create_pull_request")
        store = self._repo(repo)
        head_sha, base_sha = store.branches.get(head), store.branches.get(base)
        pulls = self.pulls.setdefault(repo, [])
        if head_sha is None or base_sha is None:
            raise WriteConflict(f"Validation Failed: {'head' if head_sha is None else 'base'} is invalid")
        if any(p.state == "open" and (p.head, p.base) == (head, base) for p in pulls):
            owner = repo.split("/", 1)[0]
            raise WriteConflict(f"Validation Failed: A pull request already exists for {owner}:{head}.")
        if head_sha in self._ancestors(repo, base_sha):
            raise WriteConflict(f"Validation Failed: No commits between {base} and {head}")
        pull = PullRequest(len(pulls) + 1, head, base, title, body, head_sha)
        pulls.append(pull)
        return self._pull_ref(repo, pull)

    def update_pull_request(
        self, repo: str, number: int, *, title: str | None = None, body: str | None = None, close: bool = False
    ) -> None:
        self._call("update_pull_request")
        pull = self._pull(repo, number)
        pull.title = title if title is not None else pull.title
        pull.body = body if body is not None else pull.body
        if close and not pull.merged:
            pull.state = "closed"

    def merge_pull_request(self, repo: str, number: int, *, head_sha: str, title: str, message: str) -> MergeResult:
        self._call("merge_pull_request")
        pull = self._pull(repo, number)
        store = self._repo(repo)
        if repo in self.merge_refusals:
            return MergeResult(merged=False, sha=None, reason=self.merge_refusals[repo])
        head, base = store.branches.get(pull.head, pull.head_sha), store.branches.get(pull.base)
        if pull.state != "open" or base is None:
            return MergeResult(merged=False, sha=None, reason=NOT_MERGEABLE)
        if head_sha != head:
            return MergeResult(merged=False, sha=None, reason=HEAD_MODIFIED)
        merge_base = self._merge_base(repo, base, head)
        tree = merge_trees(merge_base.tree if merge_base else {}, store.commits[base].tree, store.commits[head].tree)
        if tree is None:
            return MergeResult(merged=False, sha=None, reason=NOT_MERGEABLE)
        sha = self._new_commit(
            repo, pull.base, (base,), tree, title + (f"\n\n{message}" if message else ""), store.commits[head].author
        )
        pull.head_sha, pull.state, pull.merge_commit_sha = head, "closed", sha
        self.faults.after("merge_pull_request")
        return MergeResult(merged=True, sha=sha, reason=MERGED)

    def pull_request_for_commit(self, repo: str, sha: str) -> PullRequestRef | None:
        self._call("pull_request_for_commit")
        store = self._repo(repo)
        if sha not in store.commits:
            return None
        # GitHub's association (the stand-in's, newest first): merged as ``sha``, or holding it in its head
        # (an open one only while its base lacks it).
        associated = [
            pull
            for pull in reversed(self.pulls.get(repo, []))
            if pull.merge_commit_sha == sha
            or (
                sha in self._ancestors(repo, self._pull(repo, pull.number).head_sha)
                and (pull.merged or not self._on_branch(repo, pull.base, sha))
            )
        ]
        merged_as_sha = [pull for pull in associated if pull.merge_commit_sha == sha]
        chosen = next(iter(merged_as_sha or associated), None)
        return self._pull_ref(repo, chosen) if chosen is not None else None

    # --- DeploymentRecords ---

    def find_deployment(self, repo: str, sha: str, environment: str, decision_id: str) -> int | None:
        self._call("find_deployment")
        listed = [d for d in reversed(self.deployments.get(repo, [])) if (d.sha, d.environment) == (sha, environment)]
        for deployment in listed[:DEPLOYMENTS_PAGE]:
            if deployment.payload.get("tagrelay_decision_id") == decision_id:
                return deployment.id
        return None

    def create_deployment(
        self, repo: str, *, sha: str, environment: str, description: str, payload: dict[str, Any], production: bool
    ) -> int:
        self._call("create_deployment")
        try:
            commit = self._commit(repo, sha)
        except CommitNotFound:
            raise CommitNotFound(f"No ref found for: {sha}") from None
        deployment = Deployment(
            next(self._ids), commit.sha, sha, environment, description[:140], dict(payload), production
        )
        self.deployments.setdefault(repo, []).append(deployment)
        self.faults.after("create_deployment")
        return deployment.id

    def create_deployment_status(
        self,
        repo: str,
        deployment_id: int,
        *,
        state: str,
        description: str,
        log_url: str | None,
        environment_url: str | None = None,
        auto_inactive: bool = False,
    ) -> None:
        self._call("create_deployment_status")
        if state not in DEPLOYMENT_STATES:
            raise ValueError(f"Validation Failed: deployment status state {state!r} is invalid")
        deployments = self.deployments.get(repo, [])
        deployment = self.deployment(repo, deployment_id)
        deployment.statuses.append(DeploymentStatus(state, description[:140], log_url, environment_url))
        if state == "success" and auto_inactive:
            for earlier in deployments[: deployments.index(deployment)]:
                if earlier.environment == deployment.environment and earlier.states[-1:] == ["success"]:
                    earlier.statuses.append(DeploymentStatus("inactive", "", None, None))
        self.faults.after("create_deployment_status")

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
        return self._new_commit(repo, branch, (parent.sha,) if parent else (), tree, message, author, at)

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

    def deployment(self, repo: str, deployment_id: int) -> Deployment:
        """A deployment by id (as ``GET /deployments/{id}``)."""
        found = [d for d in self.deployments.get(repo, []) if d.id == deployment_id]
        if not found:
            raise LookupError(f"deployment {deployment_id} of {repo}: Not Found")
        return found[0]

    def file(self, repo: str, path: str, ref: str) -> bytes | None:
        return self._commit(repo, ref).tree.get(path)

    def log(self, repo: str, ref: str) -> list[Commit]:
        """The commits reachable from ``ref``, newest first."""
        return list(self._history(repo, self._commit(repo, ref).sha))

    # --- internals ---

    def _call(self, method: str) -> None:
        self.request_count += 1
        self.calls.append(method)
        self.faults.before(method)

    def _new_commit(
        self,
        repo: str,
        branch: str,
        parents: tuple[str, ...],
        tree: Mapping[str, bytes],
        message: str,
        author: str,
        at: datetime | None = None,
    ) -> str:
        """A commit of ``tree`` on ``branch`` (moved to it); its SHA."""
        store = self.repos.setdefault(repo, Repo(repo))
        number = next(self._sequence)
        when = at or (self._clock() if self._clock else self._epoch + timedelta(seconds=number))
        sha = hashlib.sha1(f"{repo}\0{branch}\0{number}\0{message}".encode(), usedforsecurity=False).hexdigest()
        store.commits[sha] = Commit(sha, parents, dict(tree), message, author, when)
        store.branches[branch] = sha
        return sha

    def _pull(self, repo: str, number: int) -> PullRequest:
        found = [pull for pull in self.pulls.get(repo, []) if pull.number == number]
        if not found:
            raise LookupError(f"pull request #{number} of {repo}: Not Found")
        pull = found[0]
        if pull.state == "open":  # an open pull request's head is its branch's head
            pull.head_sha = self._repo(repo).branches.get(pull.head, pull.head_sha)
        return pull

    def _pull_ref(self, repo: str, pull: PullRequest) -> PullRequestRef:
        pull = self._pull(repo, pull.number)
        return PullRequestRef(
            number=pull.number,
            url=f"{WEB}/{repo}/pull/{pull.number}",
            head_sha=pull.head_sha,
            title=pull.title,
            merged=pull.merged,
        )

    def _merge_base(self, repo: str, base: str, head: str) -> Commit | None:
        """The nearest commit both reach: the first of ``base``'s ancestors, breadth first, that ``head`` has."""
        head_ancestors = self._ancestors(repo, head)
        store = self._repo(repo)
        seen: set[str] = set()
        pending = [base]
        while pending:
            current = pending.pop(0)
            if current in head_ancestors:
                return store.commits[current]
            if current not in seen:
                seen.add(current)
                pending.extend(store.commits[current].parents)
        return None

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

    def _on_branch(self, repo: str, branch: str, sha: str) -> bool:
        head = self._repo(repo).branches.get(branch)
        return head is not None and sha in self._ancestors(repo, head)

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
