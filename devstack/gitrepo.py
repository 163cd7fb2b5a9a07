"""Seed git repositories for the tests and the demo: a working clone of a bare repo, driven with the git CLI.

The bare repository is what the GitHub stand-in serves, so commits made here are what PyGithub sees,
and commits made through the API are what ``read_file``/``log`` show. Identity and dates are fixed
(unless ``fixed_dates=False``) so the same seed yields the same SHAs on every machine, and no user or
system git configuration is read.
"""

from __future__ import annotations

import hashlib
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from devstack.github_standin.gitstore import EMPTY_TREE, BareRepo, git_env, normalise_path

SEED_NAME = "tagrelay-seed"
SEED_EMAIL = "seed@users.noreply.github.com"
SEED_EPOCH = 1_735_689_600  # 2025-01-01T00:00:00Z; each seeded commit is one minute after the previous
COLLISIONS_REF = "refs/heads/collisions"


class GitWorkspace:
    """A clone of ``bare_path`` in ``workdir``; every commit is pushed straight back to the bare repo."""

    def __init__(self, bare_path: Path, workdir: Path, *, fixed_dates: bool = True) -> None:
        self.bare_path = bare_path
        self.workdir = workdir
        self._fixed_dates = fixed_dates
        self._commits = 0

    @classmethod
    def create(
        cls, bare_path: Path, workdir: Path, default_branch: str = "main", *, fixed_dates: bool = True
    ) -> GitWorkspace:
        """Init the bare repository if needed (HEAD → ``default_branch``) and clone it into ``workdir``."""
        BareRepo.init(bare_path, default_branch)
        workdir.parent.mkdir(parents=True, exist_ok=True)
        _git(["clone", "--quiet", str(bare_path), str(workdir)], cwd=workdir.parent)
        return cls(bare_path, workdir, fixed_dates=fixed_dates)

    # -- writing --------------------------------------------------------------------------------

    def commit_files(self, files: Mapping[str, str | bytes | None], message: str, *, branch: str = "main") -> str:
        """Write ``files`` (None deletes one) on ``branch``, commit, push; return the full commit SHA."""
        self._checkout(branch)
        for name, data in files.items():
            path = self.workdir / normalise_path(name)
            if data is None:
                self._run("rm", "--quiet", "--ignore-unmatch", "--", normalise_path(name))
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data.encode() if isinstance(data, str) else data)
            self._run("add", "--", normalise_path(name))
        return self._commit_and_push(message, branch, allow_empty=False)

    def commit_empty(self, message: str, *, branch: str) -> str:
        self._checkout(branch)
        return self._commit_and_push(message, branch, allow_empty=True)

    def create_branch(self, name: str, from_ref: str) -> None:
        """Create ``name`` in the bare repo at ``from_ref`` (a branch or SHA); refuses if it exists."""
        repo = BareRepo(self.bare_path)
        sha = repo.resolve_commit(from_ref)
        if not repo.update_ref(f"refs/heads/{name}", sha, None):
            raise ValueError(f"branch {name} already exists in {self.bare_path}")

    # -- reading (from the bare repo, so writes through the API are seen) ------------------------

    def head(self, branch: str) -> str:
        sha = BareRepo(self.bare_path).branch_head(branch)
        if sha is None:
            raise LookupError(f"no branch {branch} in {self.bare_path}")
        return sha

    def read_file(self, path: str, branch: str = "main") -> bytes:
        return self._bare("cat-file", "blob", f"{self.head(branch)}:{normalise_path(path)}").stdout

    def blob_sha(self, path: str, branch: str = "main") -> str:
        """The git blob SHA of ``path`` on ``branch``: what the Contents API calls ``sha``."""
        return self._bare("rev-parse", f"{self.head(branch)}:{normalise_path(path)}").stdout.decode().strip()

    def log(self, branch: str = "main", path: str | None = None) -> str:
        """``git log -p`` of ``branch`` (limited to ``path``), for the demo and for debugging tests."""
        args = ["log", "-p", "--no-color", self.head(branch), "--"]
        if path:
            args.append(normalise_path(path))
        return self._bare(*args).stdout.decode(errors="replace")

    def shas(self, branch: str = "main", path: str | None = None) -> list[str]:
        """Commit SHAs of ``branch`` newest first, as ``git log`` lists them (limited to ``path``)."""
        args = ["log", "--format=%H", self.head(branch), "--"]
        if path:
            args.append(normalise_path(path))
        return self._bare(*args).stdout.decode().split()

    # -- internals ------------------------------------------------------------------------------

    def _checkout(self, branch: str) -> None:
        self._run("fetch", "--quiet", "--prune", "origin")
        remote = f"refs/remotes/origin/{branch}"
        if self._run("rev-parse", "--quiet", "--verify", remote, check=False).returncode == 0:
            self._run("checkout", "--quiet", "--force", "-B", branch, remote)
            self._run("clean", "--quiet", "-fdx")
        elif BareRepo(self.bare_path).is_empty():
            self._run("symbolic-ref", "HEAD", f"refs/heads/{branch}")  # unborn branch, first commit
        else:
            raise ValueError(f"branch {branch} does not exist in {self.bare_path}; create it with create_branch()")

    def _commit_and_push(self, message: str, branch: str, *, allow_empty: bool) -> str:
        args = ["commit", "--quiet", "--no-verify", "-m", message]
        if allow_empty:
            args.append("--allow-empty")
        self._run(*args, env=self._identity_env())
        self._run("push", "--quiet", "origin", f"HEAD:refs/heads/{branch}")
        return self._run("rev-parse", "HEAD").stdout.decode().strip()

    def _identity_env(self) -> dict[str, str]:
        env = {
            "GIT_AUTHOR_NAME": SEED_NAME,
            "GIT_AUTHOR_EMAIL": SEED_EMAIL,
            "GIT_COMMITTER_NAME": SEED_NAME,
            "GIT_COMMITTER_EMAIL": SEED_EMAIL,
        }
        if self._fixed_dates:
            date = f"@{SEED_EPOCH + 60 * self._commits} +0000"
            env.update(GIT_AUTHOR_DATE=date, GIT_COMMITTER_DATE=date)
        self._commits += 1
        return env

    def _run(
        self, *args: str, env: Mapping[str, str] | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[bytes]:
        return _git(list(args), cwd=self.workdir, env=env, check=check)

    def _bare(self, *args: str) -> subprocess.CompletedProcess[bytes]:
        return _git([f"--git-dir={self.bare_path}", *args], cwd=self.bare_path)


def make_ambiguous_short_sha(bare_path: Path, length: int = 7) -> str:
    """Add two commits whose SHAs share their first ``length`` hex digits; return that prefix.

    Rather than writing ~20 000 commits until the birthday bound strikes, the candidate commit objects
    are hashed in Python (a commit SHA is ``sha1("commit <size>\\0" + body)``) and only the colliding pair
    is written, plus a merge commit on ``refs/heads/collisions`` that keeps both reachable. The search is
    deterministic (fixed identity and date): the same prefix every run, in well under a second for 7.
    """
    repo = BareRepo(bare_path)
    first, second = _colliding_commit_bodies(length)
    empty_tree = repo.output("mktree", stdin=b"")
    assert empty_tree == EMPTY_TREE
    shas = [repo.output("hash-object", "-t", "commit", "-w", "--stdin", stdin=body) for body in (first, second)]
    if shas[0][:length] != shas[1][:length]:
        raise RuntimeError(f"git hashed the candidates differently: {shas}")
    identity = f"{SEED_NAME} <{SEED_EMAIL}> {SEED_EPOCH} +0000"
    merge = (
        f"tree {EMPTY_TREE}\nparent {shas[0]}\nparent {shas[1]}\nauthor {identity}\ncommitter {identity}\n\n"
        f"keep the colliding commits {shas[0][:length]} reachable\n"
    )
    merge_sha = repo.output("hash-object", "-t", "commit", "-w", "--stdin", stdin=merge.encode())
    repo.git("update-ref", COLLISIONS_REF, merge_sha)
    return shas[0][:length]


def _colliding_commit_bodies(length: int) -> tuple[bytes, bytes]:
    identity = f"{SEED_NAME} <{SEED_EMAIL}> {SEED_EPOCH} +0000"
    head = f"tree {EMPTY_TREE}\nauthor {identity}\ncommitter {identity}\n\ncollision candidate ".encode()
    seen: dict[str, int] = {}
    number = 0
    while True:
        body = head + f"{number}\n".encode()
        prefix = hashlib.sha1(b"commit %d\0" % len(body) + body, usedforsecurity=False).hexdigest()[:length]
        if prefix in seen:
            return head + f"{seen[prefix]}\n".encode(), body
        seen[prefix] = number
        number += 1


def _git(
    args: Sequence[str], *, cwd: Path, env: Mapping[str, str] | None = None, check: bool = True
) -> subprocess.CompletedProcess[bytes]:
    result = subprocess.run(["git", *args], cwd=cwd, env=git_env(env), capture_output=True, check=False)
    if check and result.returncode != 0:
        raise RuntimeError(
            f"git {' '.join(args[:2])} failed ({result.returncode}): {result.stderr.decode(errors='replace')}"
        )
    return result
