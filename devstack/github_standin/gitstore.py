"""A bare git repository driven through git plumbing: the stand-in's only storage.

Every read and write is a ``git`` command, so what the stand-in serves is exactly what ``git log``
shows. Branch moves use ``git update-ref <ref> <new> <old>``, which refuses when the ref is no longer
at ``<old>``: that is the compare-and-swap, whatever other writer (a test pushing with the git CLI)
touched the repository in between.
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

EMPTY_TREE = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"  # git's well-known empty tree object
ZERO_SHA = "0" * 40
MIN_SHORT_SHA = 4

_HEX = re.compile(r"^[0-9a-f]+$")
_FULL_SHA = re.compile(r"^[0-9a-f]{40}$")
# Characters and sequences git refuses in ref names (git-check-ref-format); refusing them up front
# also keeps rev-parse from reading a name as an expression such as ``main~1`` or ``main@{1}``.
_BAD_REF = re.compile(r"[\x00-\x20\x7f~^:?*\[\\]|\.\.|@\{|//|/\.|\.lock(/|$)|^[-/.]|[/.]$")

# Git must behave the same on every machine: no user or system configuration, C locale, no prompts.
_GIT_ENV = {
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_TERMINAL_PROMPT": "0",
    "GIT_LITERAL_PATHSPECS": "1",
    "LC_ALL": "C",
}


class GitCommandError(RuntimeError):
    """A git command failed unexpectedly; the message carries its stderr."""


class ObjectNotFound(LookupError):
    """A ref, commit, path or object that the repository does not have."""


class AmbiguousShortSha(LookupError):
    """A short SHA that is a prefix of more than one commit."""

    def __init__(self, prefix: str, candidates: Sequence[str]) -> None:
        super().__init__(f"short SHA {prefix} is ambiguous: {', '.join(candidates)}")
        self.prefix = prefix
        self.candidates = list(candidates)


@dataclass(frozen=True)
class Identity:
    """Author or committer of a commit; ``date`` is anything git accepts (ISO 8601 here), or None for now."""

    name: str
    email: str
    date: str | None = None


@dataclass(frozen=True)
class Signature:
    name: str
    email: str
    timestamp: int  # seconds since the epoch, UTC


@dataclass(frozen=True)
class CommitInfo:
    sha: str
    tree: str
    parents: tuple[str, ...]
    author: Signature
    committer: Signature
    message: str


@dataclass(frozen=True)
class TreeEntry:
    mode: str
    type: str  # blob | tree | commit
    sha: str
    size: int | None  # blobs only
    path: str

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[-1]


@dataclass(frozen=True)
class TreeChange:
    """One entry of a tree edit: ``sha=None`` deletes ``path`` (and everything under it)."""

    path: str
    mode: str
    type: str
    sha: str | None


@dataclass(frozen=True)
class FileChange:
    status: str  # added | modified | removed
    path: str
    sha: str  # blob after the change (before it, for removals)
    additions: int
    deletions: int
    patch: str | None


def git_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment every git call of the stand-in and the seeding helper runs with."""
    return {**os.environ, **_GIT_ENV, **(extra or {})}


def is_valid_ref_name(name: str) -> bool:
    return bool(name) and _BAD_REF.search(name) is None


def normalise_path(path: str) -> str:
    """A repository path without leading/trailing slashes; refuses ``..``, ``.git`` and empty parts."""
    clean = path.strip("/")
    parts = clean.split("/") if clean else []
    if any(part in ("", ".", "..", ".git") or "\x00" in part for part in parts):
        raise ValueError(f"invalid path {path!r}")
    return clean


class BareRepo:
    """One bare repository on disk; writers take ``write_lock`` so concurrent API writes queue up."""

    _locks: dict[Path, threading.Lock] = {}
    _locks_guard = threading.Lock()

    def __init__(self, git_dir: Path) -> None:
        self.git_dir = git_dir

    @classmethod
    def init(cls, git_dir: Path, default_branch: str = "main") -> BareRepo:
        """Create an empty bare repository (no-op if it exists) whose HEAD names ``default_branch``."""
        if not is_valid_ref_name(default_branch):
            raise ValueError(f"invalid branch name {default_branch!r}")
        if not (git_dir / "HEAD").exists():
            git_dir.parent.mkdir(parents=True, exist_ok=True)
            _run(["git", "init", "--quiet", "--bare", f"--initial-branch={default_branch}", str(git_dir)])
        return cls(git_dir)

    def exists(self) -> bool:
        return (self.git_dir / "HEAD").is_file() and (self.git_dir / "objects").is_dir()

    @property
    def write_lock(self) -> threading.Lock:
        key = self.git_dir.resolve()
        with self._locks_guard:
            return self._locks.setdefault(key, threading.Lock())

    # -- plumbing -------------------------------------------------------------------------------

    def git(
        self, *args: str, stdin: bytes | None = None, env: Mapping[str, str] | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[bytes]:
        return _run(["git", f"--git-dir={self.git_dir}", *args], stdin=stdin, env=env, cwd=self.git_dir, check=check)

    def output(self, *args: str, stdin: bytes | None = None, env: Mapping[str, str] | None = None) -> str:
        return self.git(*args, stdin=stdin, env=env).stdout.decode().strip()

    # -- refs and names -------------------------------------------------------------------------

    def default_branch(self) -> str:
        ref = self.output("symbolic-ref", "HEAD")
        return ref.removeprefix("refs/heads/")

    def is_empty(self) -> bool:
        return not self.output("for-each-ref", "--count=1", "--format=%(refname)")

    def ref_target(self, full_ref: str) -> str | None:
        """The commit a ref points to (tags peeled), or None."""
        if not is_valid_ref_name(full_ref.removeprefix("refs/")):
            return None
        result = self.git("rev-parse", "--quiet", "--verify", f"{full_ref}^{{commit}}", check=False)
        return result.stdout.decode().strip() if result.returncode == 0 else None

    def branch_head(self, branch: str) -> str | None:
        return self.ref_target(f"refs/heads/{branch}")

    def refs(self, prefix: str = "refs/") -> list[tuple[str, str]]:
        """``(full ref name, commit sha)`` for every branch and tag under ``prefix``, sorted by name."""
        out = self.output("for-each-ref", "--format=%(refname)%00%(objectname)", prefix)
        pairs = [tuple(line.split("\0", 1)) for line in out.splitlines() if line]
        return [(name, sha) for name, sha in pairs if name.startswith(("refs/heads/", "refs/tags/"))]

    def resolve_commit(self, name: str) -> str:
        """A branch, tag, ``heads/x``/``refs/heads/x``, full SHA or unique short SHA → full commit SHA.

        Raises ObjectNotFound, or AmbiguousShortSha when a short SHA names several commits.
        """
        for candidate in _ref_candidates(name):
            sha = self.ref_target(candidate)
            if sha is not None:
                return sha
        lowered = name.lower()
        if not (MIN_SHORT_SHA <= len(lowered) <= 40 and _HEX.match(lowered)):
            raise ObjectNotFound(name)
        if len(lowered) == 40:
            if self.object_type(lowered) == "commit":
                return lowered
            raise ObjectNotFound(name)
        return self._resolve_short_sha(lowered)

    def _resolve_short_sha(self, prefix: str) -> str:
        listed = self.git("rev-parse", f"--disambiguate={prefix}", check=False).stdout.decode().split()
        types = self.object_types(listed)
        commits = sorted(sha for sha in listed if types.get(sha) == "commit")
        if not commits:
            raise ObjectNotFound(prefix)
        if len(commits) > 1:
            raise AmbiguousShortSha(prefix, commits)
        return commits[0]

    def object_type(self, sha: str) -> str | None:
        return self.object_types([sha]).get(sha)

    def object_types(self, shas: Iterable[str]) -> dict[str, str]:
        """Type of each existing object among ``shas``; missing or malformed names are left out."""
        wanted = [sha for sha in shas if _FULL_SHA.match(sha)]
        if not wanted:
            return {}
        out = self.output("cat-file", "--batch-check=%(objectname) %(objecttype)", stdin="\n".join(wanted).encode())
        types: dict[str, str] = {}
        for line in out.splitlines():
            sha, _, kind = line.partition(" ")
            if kind and kind != "missing":
                types[sha] = kind
        return types

    def update_ref(self, full_ref: str, new: str, old: str | None) -> bool:
        """Move ``full_ref`` to ``new`` only if it is still at ``old`` (None: only if it does not exist yet)."""
        expected = old if old is not None else ZERO_SHA
        return self.git("update-ref", full_ref, new, expected, check=False).returncode == 0

    def delete_ref(self, full_ref: str, old: str) -> bool:
        return self.git("update-ref", "-d", full_ref, old, check=False).returncode == 0

    # -- history --------------------------------------------------------------------------------

    def commit(self, sha: str) -> CommitInfo:
        found = self.commits([sha])
        if not found:
            raise ObjectNotFound(sha)
        return found[0]

    def commits(self, shas: Sequence[str]) -> list[CommitInfo]:
        """The commits among ``shas``, in order, read with one ``cat-file --batch`` (missing ones left out)."""
        wanted = [sha for sha in shas if _FULL_SHA.match(sha)]
        if not wanted:
            return []
        out = self.git("cat-file", "--batch", stdin="\n".join(wanted).encode()).stdout
        found: list[CommitInfo] = []
        position = 0
        while position < len(out):
            header_end = out.index(b"\n", position)
            header = out[position:header_end].decode().split(" ")
            position = header_end + 1
            if len(header) != 3:  # "<name> missing"
                continue
            sha, kind, size = header[0], header[1], int(header[2])
            if kind == "commit":
                found.append(_parse_commit_object(sha, out[position : position + size]))
            position += size + 1  # the object, then a newline
        return found

    def log(
        self,
        revisions: Sequence[str],
        *,
        path: str | None = None,
        skip: int = 0,
        max_count: int | None = None,
        since: str | None = None,
        until: str | None = None,
        reverse: bool = False,
    ) -> list[CommitInfo]:
        """Commits reachable as ``git log`` walks them (newest first unless ``reverse``)."""
        args = ["log", "--format=%H", f"--skip={skip}"]
        if max_count is not None:
            args.append(f"--max-count={max_count}")
        if since:
            args.append(f"--since={since}")
        if until:
            args.append(f"--until={until}")
        if reverse:
            args.append("--reverse")
        args += [*revisions, "--"]
        if path:
            args.append(path)
        return self.commits(self.output(*args).split())

    def count(self, revisions: Sequence[str], *, path: str | None = None) -> int:
        args = ["rev-list", "--count", *revisions, "--"]
        if path:
            args.append(path)
        return int(self.output(*args))

    def merge_base(self, first: str, second: str) -> str | None:
        result = self.git("merge-base", first, second, check=False)
        return result.stdout.decode().strip() or None

    def is_ancestor(self, ancestor: str, descendant: str) -> bool:
        return self.git("merge-base", "--is-ancestor", ancestor, descendant, check=False).returncode == 0

    def changed_files(self, commit: CommitInfo, *, max_patches: int = 100) -> list[FileChange]:
        """Files a commit changed against its first parent (the root commit: against the empty tree)."""
        parent = commit.parents[0] if commit.parents else EMPTY_TREE
        raw = self.git("diff-tree", "-r", "-z", "--no-renames", "--raw", parent, commit.sha).stdout.decode(
            errors="replace"
        )
        numstat = self.git("diff-tree", "-r", "-z", "--no-renames", "--numstat", parent, commit.sha).stdout.decode(
            errors="replace"
        )
        counts = _parse_numstat(numstat)
        changes: list[FileChange] = []
        fields = raw.split("\0")
        for index in range(0, len(fields) - 1, 2):
            meta, path = fields[index], fields[index + 1]
            if not meta.startswith(":"):
                continue
            _old_mode, _new_mode, old_sha, new_sha, letter = meta[1:].split(" ")
            status = {"A": "added", "D": "removed"}.get(letter[:1], "modified")
            additions, deletions = counts.get(path, (0, 0))
            patch = self._patch(parent, commit.sha, path) if len(changes) < max_patches else None
            sha = old_sha if status == "removed" else new_sha
            changes.append(FileChange(status, path, sha, additions, deletions, patch))
        return changes

    def _patch(self, old: str, new: str, path: str) -> str | None:
        diff = self.git("diff", "--no-color", "--no-ext-diff", old, new, "--", path).stdout.decode(errors="replace")
        hunk_start = diff.find("\n@@")
        return diff[hunk_start + 1 :].rstrip("\n") if hunk_start >= 0 else None

    # -- trees and blobs ------------------------------------------------------------------------

    def entry(self, commit: str, path: str) -> TreeEntry | None:
        """The tree entry at ``path`` in ``commit`` (a file, a directory, a submodule), or None."""
        if not path:
            return TreeEntry("040000", "tree", self.output("rev-parse", f"{commit}^{{tree}}"), None, "")
        entries = self._ls_tree(commit, path)
        return next((item for item in entries if item.path == path), None)

    def list_directory(self, commit: str, path: str) -> list[TreeEntry]:
        return self._ls_tree(commit, f"{path}/" if path else None)

    def list_tree(self, tree: str, *, recursive: bool = False) -> list[TreeEntry]:
        return self._ls_tree(tree, None, recursive=recursive)

    def _ls_tree(self, treeish: str, path: str | None, *, recursive: bool = False) -> list[TreeEntry]:
        args = ["ls-tree", "-l", "-z", "--full-tree"]
        if recursive:
            args += ["-r", "-t"]
        args.append(treeish)
        if path is not None:
            args += ["--", path]
        out = self.git(*args).stdout.decode(errors="surrogateescape")
        entries = []
        for record in out.split("\0"):
            if not record:
                continue
            meta, entry_path = record.split("\t", 1)
            mode, kind, sha, size = meta.split()
            entries.append(TreeEntry(mode, kind, sha, None if size == "-" else int(size), entry_path))
        return entries

    def read_blob(self, sha: str) -> bytes:
        if self.object_type(sha) != "blob":
            raise ObjectNotFound(sha)
        return self.git("cat-file", "blob", sha).stdout

    def write_blob(self, data: bytes) -> str:
        return self.output("hash-object", "-w", "--stdin", stdin=data)

    def write_tree(self, base_tree: str | None, changes: Sequence[TreeChange]) -> str:
        """A new tree: ``base_tree`` (or empty) with ``changes`` applied; nested paths create directories.

        Raises ObjectNotFound when an entry names an object the repository does not have.
        """
        referenced = [change.sha for change in changes if change.sha and change.type != "commit"]
        known = self.object_types([*referenced, *([base_tree] if base_tree else [])])
        for change in changes:
            if change.sha and change.type != "commit" and known.get(change.sha) != change.type:
                raise ObjectNotFound(change.sha)
        if base_tree and known.get(base_tree) not in ("tree", "commit"):
            raise ObjectNotFound(base_tree)
        with tempfile.TemporaryDirectory(prefix="standin-index-") as scratch:
            env = {"GIT_INDEX_FILE": str(Path(scratch) / "index")}
            if base_tree:
                self.git("read-tree", base_tree, env=env)
            else:
                self.git("read-tree", "--empty", env=env)
            for change in changes:
                self._apply_change(change, env)
            return self.output("write-tree", env=env)

    def _apply_change(self, change: TreeChange, env: Mapping[str, str]) -> None:
        # Whatever was at the path goes first: a file, a whole directory being replaced or deleted, or a
        # file standing where the new path needs a directory (git would keep both and write a broken tree).
        parts = change.path.split("/")
        ancestors = {"/".join(parts[:depth]) for depth in range(1, len(parts))}
        present = self.output("ls-files", "-z", "--", change.path, *ancestors, env=env).split("\0")
        stale = [
            path
            for path in present
            if path and (path in ancestors or path == change.path or path.startswith(change.path + "/"))
        ]
        if stale:
            lines = "".join(f"0 {ZERO_SHA}\t{path}\n" for path in stale)
            self.git("update-index", "--index-info", stdin=lines.encode(), env=env)
        if change.sha is None:
            return
        if change.type == "tree":  # graft the subtree's files (read-tree --prefix needs a work tree)
            files = [item for item in self.list_tree(change.sha, recursive=True) if item.type != "tree"]
            entries = [(item.mode, item.sha, f"{change.path}/{item.path}") for item in files]
        else:
            entries = [(change.mode, change.sha, change.path)]
        lines = "".join(f"{mode} {sha}\t{path}\n" for mode, sha, path in entries)
        self.git("update-index", "--add", "--replace", "--index-info", stdin=lines.encode(), env=env)

    def write_commit(
        self, tree: str, parents: Sequence[str], message: str, author: Identity, committer: Identity
    ) -> str:
        args = ["commit-tree", tree]
        for parent in parents:
            args += ["-p", parent]
        env = {
            "GIT_AUTHOR_NAME": author.name,
            "GIT_AUTHOR_EMAIL": author.email,
            "GIT_COMMITTER_NAME": committer.name,
            "GIT_COMMITTER_EMAIL": committer.email,
        }
        if author.date:
            env["GIT_AUTHOR_DATE"] = author.date
        if committer.date:
            env["GIT_COMMITTER_DATE"] = committer.date
        return self.output(*args, stdin=message.encode(), env=env)

    def commit_file_change(
        self,
        *,
        parent: str | None,
        path: str,
        data: bytes,
        message: str,
        author: Identity,
        committer: Identity,
    ) -> str:
        """A new commit on top of ``parent`` (None: a root commit) with ``path`` set to ``data``."""
        base_tree = self.commit(parent).tree if parent else None
        current = self.entry(parent, path) if parent else None
        mode = current.mode if current is not None and current.type == "blob" else "100644"
        blob = self.write_blob(data)
        tree = self.write_tree(base_tree, [TreeChange(path, mode, "blob", blob)])
        return self.write_commit(tree, [parent] if parent else [], message, author, committer)


def _ref_candidates(name: str) -> list[str]:
    if not is_valid_ref_name(name):
        return []
    if name.startswith("refs/"):
        return [name]
    if name.startswith(("heads/", "tags/")):
        return [f"refs/{name}"]
    return [f"refs/heads/{name}", f"refs/tags/{name}"]


def _parse_signature(value: str) -> Signature:
    # "Name <email> 1700000000 +0000"
    name_part, _, rest = value.partition(" <")
    email, _, when = rest.partition("> ")
    timestamp = when.split(" ", 1)[0]
    return Signature(name_part, email, int(timestamp) if timestamp.lstrip("-").isdigit() else 0)


def _parse_commit_object(sha: str, raw: bytes) -> CommitInfo:
    header, _, body = raw.partition(b"\n\n")
    tree = ""
    parents: list[str] = []
    author = committer = Signature("", "", 0)
    for line in header.decode(errors="replace").split("\n"):
        if line.startswith(" "):  # continuation of a multi-line header such as gpgsig
            continue
        key, _, value = line.partition(" ")
        if key == "tree":
            tree = value
        elif key == "parent":
            parents.append(value)
        elif key == "author":
            author = _parse_signature(value)
        elif key == "committer":
            committer = _parse_signature(value)
    message = body.decode(errors="replace")
    return CommitInfo(sha, tree, tuple(parents), author, committer, message.removesuffix("\n"))


def _parse_numstat(text: str) -> dict[str, tuple[int, int]]:
    counts: dict[str, tuple[int, int]] = {}
    for record in text.split("\0"):
        parts = record.split("\t", 2)
        if len(parts) != 3:
            continue
        added, deleted, path = parts
        counts[path] = (int(added) if added.isdigit() else 0, int(deleted) if deleted.isdigit() else 0)
    return counts


def _run(
    argv: Sequence[str],
    *,
    stdin: bytes | None = None,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    check: bool = True,
) -> subprocess.CompletedProcess[bytes]:
    result = subprocess.run(list(argv), input=stdin, capture_output=True, env=git_env(env), cwd=cwd, check=False)
    if check and result.returncode != 0:
        command = " ".join(argv[:3])
        raise GitCommandError(f"{command} … failed ({result.returncode}): {result.stderr.decode(errors='replace')}")
    return result
