"""A bare git repository driven through git plumbing: the stand-in's only storage.

Every read and write is a ``git`` command (only ``HEAD``, a one-line file, is read directly), so what
the stand-in serves is exactly what ``git log`` shows. Branch moves use ``git update-ref <ref> <new> <old>``, which refuses when the ref is no longer
at ``<old>``: that is the compare-and-swap, whatever other writer (a test pushing with the git CLI)
touched the repository in between.

Speed (the stand-in serves thousands of requests per test run): a *persistent* ``BareRepo`` (the
server keeps one per repository) reads objects and refs through long-lived ``git cat-file --batch``
and ``--batch-check`` processes instead of one ``git`` process per question, and keeps what cannot
change in memory, keyed by full SHA: objects (content-addressed), a commit's file changes, and facts
about the history of fixed commits (merge base, ahead/behind, ancestry). Nothing that can move is
cached: refs, HEAD, and the expansion of a short SHA (a new commit can make it ambiguous) are asked of
git on every request. Git re-reads a ref's file on every lookup and re-scans the packs when an object
is not found, so a long-lived cat-file sees pushes from outside; short SHAs are never sent to it,
because git caches the loose-object listing it expands them from.
"""

from __future__ import annotations

import io
import os
import re
import subprocess
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Generic, TypeVar

EMPTY_TREE = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"  # git's well-known empty tree object
ZERO_SHA = "0" * 40
MIN_SHORT_SHA = 4

_HEX = re.compile(r"^[0-9a-f]+$")
_FULL_SHA = re.compile(r"^[0-9a-f]{40}$")
# Characters and sequences git refuses in ref names (git-check-ref-format); refusing them up front
# also keeps rev-parse from reading a name as an expression such as ``main~1`` or ``main@{1}``.
_BAD_REF = re.compile(r"[\x00-\x20\x7f~^:?*\[\\]|\.\.|@\{|//|/\.|\.lock(/|$)|^[-/.]|[/.]$")
_MAX_CACHED_BLOB = 1024 * 1024
_OBJECT_TYPES = frozenset({b"commit", b"tree", b"blob", b"tag"})
_DIFF_HEADER = re.compile(rb"^diff --git ", re.MULTILINE)

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


@dataclass(frozen=True)
class Comparison:
    """How ``head`` relates to ``base``: git's ``merge-base``, ``rev-list --reverse base..head``, ``head..base``."""

    merge_base: str | None
    ahead: tuple[str, ...]
    behind_by: int


@dataclass(frozen=True)
class _Object:
    sha: str
    type: str
    size: int
    data: bytes | None  # None when read with --batch-check


@dataclass(frozen=True)
class _RawEntry:
    """One entry of a tree object, its mode canonical as ``ls-tree`` prints it."""

    mode: str
    type: str
    sha: str
    name: str


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


K = TypeVar("K")
V = TypeVar("V")


class _Lru(Generic[K, V]):
    """A thread-safe least-recently-used map bounded by entry count and by total ``weigh(value)``."""

    def __init__(self, max_items: int, max_weight: int | None = None, weigh: Callable[[V], int] | None = None) -> None:
        self._items: OrderedDict[K, V] = OrderedDict()
        self._max_items = max_items
        self._max_weight = max_weight
        self._weigh = weigh or (lambda _value: 0)
        self._weight = 0
        self._lock = threading.Lock()

    def get(self, key: K) -> V | None:
        with self._lock:
            value = self._items.get(key)
            if value is not None:
                self._items.move_to_end(key)
            return value

    def put(self, key: K, value: V) -> None:
        weight = self._weigh(value)
        if self._max_weight is not None and weight > self._max_weight:
            return
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self._weight -= self._weigh(old)
            self._items[key] = value
            self._weight += weight
            while len(self._items) > self._max_items or (
                self._max_weight is not None and self._weight > self._max_weight
            ):
                _key, evicted = self._items.popitem(last=False)
                self._weight -= self._weigh(evicted)


class _CatFile:
    """A long-lived ``git cat-file --batch`` (``contents``) or ``--batch-check`` of one repository.

    One exchange at a time (a lock); the process starts on first use, is restarted once if it died,
    and after ``close()`` each query runs a one-shot cat-file instead (a request still holding the
    repository when the server forgets it keeps working).
    """

    _CHUNK = 64  # names written before reading their answers: well under a pipe's buffer, so no deadlock

    def __init__(self, git_dir: Path, *, contents: bool) -> None:
        self._git_dir = git_dir
        self._contents = contents
        self._lock = threading.Lock()
        self._process: subprocess.Popen[bytes] | None = None
        self._closed = False

    def query(self, names: Sequence[str]) -> list[_Object | None]:
        with self._lock:
            if self._closed:
                return _cat_file_once(self._git_dir, names, contents=self._contents)
            for attempt in (1, 2):
                process = self._process or self._start()
                try:
                    return self._exchange(process, names)
                except (OSError, EOFError) as error:  # the process died (or was killed): start afresh once
                    self._stop()
                    if attempt == 2:
                        raise GitCommandError(f"git cat-file in {self._git_dir} failed: {error}") from error
                except BaseException:
                    self._stop()  # a half-read answer would shift every later one
                    raise
            raise AssertionError("unreachable")

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._stop()

    def _start(self) -> subprocess.Popen[bytes]:
        mode = "--batch" if self._contents else "--batch-check"
        self._process = subprocess.Popen(
            ["git", f"--git-dir={self._git_dir}", "cat-file", mode],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,  # warnings only; nobody would drain a pipe
            cwd=self._git_dir,
            env=git_env(),
        )
        return self._process

    def _exchange(self, process: subprocess.Popen[bytes], names: Sequence[str]) -> list[_Object | None]:
        assert process.stdin is not None and process.stdout is not None
        found: list[_Object | None] = []
        for start in range(0, len(names), self._CHUNK):
            chunk = names[start : start + self._CHUNK]
            process.stdin.write("".join(f"{name}\n" for name in chunk).encode())
            process.stdin.flush()
            found += [_read_answer(process.stdout, contents=self._contents) for _ in chunk]
        return found

    def _stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        for stream in (process.stdin, process.stdout):
            try:
                if stream is not None:
                    stream.close()
            except OSError:
                pass
        try:
            process.wait(timeout=2)  # cat-file exits at end of input
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _check_name(name: str) -> str:
    if "\n" in name or not name:
        raise ValueError(f"object name {name!r} cannot be sent to cat-file")
    return name


def _read_answer(stream: IO[bytes], *, contents: bool) -> _Object | None:
    """One answer of cat-file: ``<sha> <type> <size>`` (then the object and a newline), or ``<name> missing``."""
    header = stream.readline()
    if not header.endswith(b"\n"):
        raise EOFError("cat-file closed its output")
    fields = header[:-1].split(b" ")
    if len(fields) != 3 or fields[1] not in _OBJECT_TYPES:
        return None  # missing, ambiguous
    size = int(fields[2])
    data = None
    if contents:
        data = stream.read(size + 1)
        if len(data) != size + 1:
            raise EOFError("cat-file closed its output mid-object")
        data = data[:-1]
    return _Object(fields[0].decode(), fields[1].decode(), size, data)


def _cat_file_once(git_dir: Path, names: Sequence[str], *, contents: bool) -> list[_Object | None]:
    if not names:
        return []
    mode = "--batch" if contents else "--batch-check"
    out = _run(
        ["git", f"--git-dir={git_dir}", "cat-file", mode],
        stdin="".join(f"{name}\n" for name in names).encode(),
        cwd=git_dir,
    ).stdout
    stream = io.BytesIO(out)
    return [_read_answer(stream, contents=contents) for _ in names]


class BareRepo:
    """One bare repository on disk; writers take ``write_lock`` so concurrent API writes queue up.

    ``persistent=True`` keeps cat-file processes and caches for the life of the object (call
    ``close()``); otherwise every question is a short-lived git process, as suits a one-off helper.
    """

    _locks: dict[Path, threading.Lock] = {}
    _locks_guard = threading.Lock()

    def __init__(self, git_dir: Path, *, persistent: bool = False) -> None:
        self.git_dir = git_dir
        self._batch = _CatFile(git_dir, contents=True) if persistent else None
        self._batch_check = _CatFile(git_dir, contents=False) if persistent else None
        self._write_lock: threading.Lock | None = None
        # Content-addressed, so never stale; bounded so a long benchmark cannot grow without limit.
        self._kinds: _Lru[str, tuple[str, int]] = _Lru(200_000)  # sha → (type, size)
        self._commits: _Lru[str, CommitInfo] = _Lru(50_000)
        self._trees: _Lru[str, tuple[_RawEntry, ...]] = _Lru(20_000)
        self._blobs: _Lru[str, bytes] = _Lru(10_000, 64 * 1024 * 1024, len)
        self._changes: _Lru[tuple[str, int], tuple[FileChange, ...]] = _Lru(5_000)
        self._history: _Lru[tuple[str, str, str], object] = _Lru(20_000)  # facts about fixed commits
        self._has_files: _Lru[str, bool] = _Lru(20_000)

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

    def close(self) -> None:
        """End the cat-file processes; later questions fall back to one git process each."""
        for reader in (self._batch, self._batch_check):
            if reader is not None:
                reader.close()

    @property
    def write_lock(self) -> threading.Lock:
        if self._write_lock is None:
            key = self.git_dir.resolve()
            with self._locks_guard:
                self._write_lock = self._locks.setdefault(key, threading.Lock())
        return self._write_lock

    # -- plumbing -------------------------------------------------------------------------------

    def git(
        self, *args: str, stdin: bytes | None = None, env: Mapping[str, str] | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[bytes]:
        return _run(["git", f"--git-dir={self.git_dir}", *args], stdin=stdin, env=env, cwd=self.git_dir, check=check)

    def output(self, *args: str, stdin: bytes | None = None, env: Mapping[str, str] | None = None) -> str:
        return self.git(*args, stdin=stdin, env=env).stdout.decode().strip()

    def _objects(self, names: Sequence[str], *, contents: bool) -> list[_Object | None]:
        """cat-file's answer per name (None: missing); every object read is remembered by SHA."""
        if not names:
            return []
        names = [_check_name(name) for name in names]
        reader = self._batch if contents else self._batch_check
        found = reader.query(names) if reader is not None else _cat_file_once(self.git_dir, names, contents=contents)
        for obj in found:
            if obj is not None:
                self._remember(obj)
        return found

    def _remember(self, obj: _Object) -> None:
        self._kinds.put(obj.sha, (obj.type, obj.size))
        if obj.data is None:
            return
        if obj.type == "commit":
            self._commits.put(obj.sha, _parse_commit_object(obj.sha, obj.data))
        elif obj.type == "tree":
            self._trees.put(obj.sha, _parse_tree_object(obj.data))
        elif obj.type == "blob" and len(obj.data) <= _MAX_CACHED_BLOB:
            self._blobs.put(obj.sha, obj.data)

    # -- refs and names -------------------------------------------------------------------------

    def default_branch(self) -> str:
        # A bare repository's HEAD is the file "ref: refs/heads/<branch>"; reading it saves a git process.
        # Anything else (detached, a reftable placeholder) is left to git, which fails as before.
        try:
            head = (self.git_dir / "HEAD").read_text()
        except (OSError, UnicodeDecodeError):
            head = ""
        if head.startswith("ref: refs/heads/") and head.endswith("\n"):
            branch = head[len("ref: refs/heads/") : -1]
            if is_valid_ref_name(branch):
                return branch
        ref = self.output("symbolic-ref", "HEAD")
        return ref.removeprefix("refs/heads/")

    def is_empty(self) -> bool:
        return not self.output("for-each-ref", "--count=1", "--format=%(refname)")

    def ref_target(self, full_ref: str) -> str | None:
        """The commit a ref points to (tags peeled), or None."""
        if not is_valid_ref_name(full_ref.removeprefix("refs/")):
            return None
        return self._peeled_commits([full_ref])[0]

    def _peeled_commits(self, refs: Sequence[str]) -> list[str | None]:
        """What ``git rev-parse --verify <ref>^{commit}`` names, per ref, asked of cat-file in one go."""
        found = self._objects([f"{ref}^{{commit}}" for ref in refs], contents=True)
        return [obj.sha if obj is not None and obj.type == "commit" else None for obj in found]

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
        for sha in self._peeled_commits(_ref_candidates(name)):
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
        # Asked of git every time: a commit written since (by us or a push) can make the prefix ambiguous.
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
        return {sha: kind for sha, (kind, _size) in self._kinds_of(shas).items()}

    def _kinds_of(self, shas: Iterable[str]) -> dict[str, tuple[str, int]]:
        wanted = [sha for sha in dict.fromkeys(shas) if _FULL_SHA.match(sha)]
        known = {sha: kind for sha in wanted if (kind := self._kinds.get(sha)) is not None}
        unknown = [sha for sha in wanted if sha not in known]
        for obj in self._objects(unknown, contents=False):
            if obj is not None:
                known[obj.sha] = (obj.type, obj.size)
        return known

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
        """The commits among ``shas``, in order (missing ones left out)."""
        wanted = [sha for sha in shas if _FULL_SHA.match(sha)]
        unknown = [sha for sha in dict.fromkeys(wanted) if self._commits.get(sha) is None]
        fetched = {obj.sha: obj for obj in self._objects(unknown, contents=True) if obj is not None}
        found: list[CommitInfo] = []
        for sha in wanted:
            info = self._commits.get(sha)
            if info is None and (obj := fetched.get(sha)) is not None and obj.type == "commit" and obj.data is not None:
                info = _parse_commit_object(sha, obj.data)  # evicted meanwhile
            if info is not None:
                found.append(info)
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
        key = ("merge-base", first, second)
        if (known := self._history.get(key)) is not None:
            return known if isinstance(known, str) else None
        result = self.git("merge-base", first, second, check=False)
        base = result.stdout.decode().strip() or None
        if result.returncode in (0, 1) and _FULL_SHA.match(first) and _FULL_SHA.match(second):
            self._history.put(key, base or False)  # exit 1: no common ancestor, as final as an answer
        return base

    def is_ancestor(self, ancestor: str, descendant: str) -> bool:
        key = ("is-ancestor", ancestor, descendant)
        if (known := self._history.get(key)) is not None:
            return known is True
        code = self.git("merge-base", "--is-ancestor", ancestor, descendant, check=False).returncode
        if code in (0, 1) and _FULL_SHA.match(ancestor) and _FULL_SHA.match(descendant):
            self._history.put(key, code == 0)
        return code == 0

    def compare(self, base: str, head: str) -> Comparison:
        """Merge base, commits in ``head`` not in ``base`` (oldest first), and the count the other way.

        For two full SHAs the answer depends only on history that cannot change, so it is kept.
        """
        key = ("compare", base, head)
        if isinstance(known := self._history.get(key), Comparison):
            return known
        merge_base = self.merge_base(base, head)
        if merge_base is None:
            comparison = Comparison(None, (), 0)  # unrelated histories: the API answers 404
        else:
            ahead = tuple(self.output("rev-list", "--reverse", f"{base}..{head}").split())
            comparison = Comparison(merge_base, ahead, self.count([f"{head}..{base}"]))
        if _FULL_SHA.match(base) and _FULL_SHA.match(head):
            self._history.put(key, comparison)
        return comparison

    def changed_files(self, commit: CommitInfo, *, max_patches: int = 100) -> list[FileChange]:
        """Files a commit changed against its first parent (the root commit: against the empty tree).

        One ``diff-tree`` gives the raw entries, the line counts and the patches. A file's patch is
        what ``git diff <parent> <commit> -- <path>`` shows from its first hunk on; where that command
        would show more than the file's own section (a path that also became a directory), it is run.
        """
        key = (commit.sha, max_patches)
        if (known := self._changes.get(key)) is not None:
            return list(known)
        parent = commit.parents[0] if commit.parents else EMPTY_TREE
        out = self.git(
            "diff-tree", "-r", "-z", "--no-renames", "--raw", "--numstat", "-p", "--no-color", "--no-ext-diff",
            parent, commit.sha,
        ).stdout  # fmt: skip
        meta, _, patch_text = out.partition(b"\0\0")  # -z puts an empty record before the patches
        fields = [field.decode(errors="replace") for field in meta.split(b"\0")] if meta else []
        index = 0  # raw entries (":<modes> <shas> <letter>", path) come first, then numstat records
        raw: list[tuple[str, str]] = []
        while index + 1 < len(fields) and fields[index].startswith(":"):
            raw.append((fields[index], fields[index + 1]))
            index += 2
        counts = _parse_numstat("\0".join(fields[index:]))
        sections = _split_patch(patch_text)
        # A typechange is shown as a deletion and an addition: two sections for one raw entry.
        per_entry = [2 if meta_field.rsplit(" ", 1)[-1][:1] == "T" else 1 for meta_field, _path in raw]
        aligned = sum(per_entry) == len(sections)
        directories = {path[:slash] for _meta, path in raw for slash in _slashes(path)}
        changes: list[FileChange] = []
        cacheable = aligned
        position = 0
        for (meta_field, path), taken in zip(raw, per_entry, strict=True):
            _old_mode, _new_mode, old_sha, new_sha, letter = meta_field[1:].split(" ")
            status = {"A": "added", "D": "removed"}.get(letter[:1], "modified")
            additions, deletions = counts.get(path, (0, 0))
            own = b"".join(sections[position : position + taken])
            position += taken
            patch = None
            if len(changes) < max_patches:
                if aligned and path not in directories:
                    patch = _hunks(own.decode(errors="replace"))
                    # Several sections carry "index" lines, whose abbreviations git may lengthen later.
                    cacheable = cacheable and taken == 1
                else:
                    patch = self._patch(parent, commit.sha, path)
                    cacheable = False
            sha = old_sha if status == "removed" else new_sha
            changes.append(FileChange(status, path, sha, additions, deletions, patch))
        if cacheable:
            self._changes.put(key, tuple(changes))
        return changes

    def _patch(self, old: str, new: str, path: str) -> str | None:
        diff = self.git("diff", "--no-color", "--no-ext-diff", old, new, "--", path).stdout.decode(errors="replace")
        return _hunks(diff)

    # -- trees and blobs ------------------------------------------------------------------------

    def entry(self, commit: str, path: str) -> TreeEntry | None:
        """The tree entry at ``path`` in ``commit`` (a file, a directory, a submodule), or None."""
        root = self._root_tree(commit)
        if not path:
            return TreeEntry("040000", "tree", root, None, "")
        found = self._walk(root, path)
        return self._with_sizes([(found, path)])[0] if found is not None else None

    def list_directory(self, commit: str, path: str) -> list[TreeEntry]:
        """What ``git ls-tree <commit> -- <path>/`` lists: the directory's entries (nothing for a file)."""
        tree = self._root_tree(commit)
        if path:
            found = self._walk(tree, path)
            if found is not None and found.type == "commit":
                return self._with_sizes([(found, path)])  # "sub/" matches a submodule as a directory
            if found is None or found.type != "tree":
                return []
            tree = found.sha
        prefix = f"{path}/" if path else ""
        return self._with_sizes([(item, prefix + item.name) for item in self._tree(tree)])

    def list_tree(self, tree: str, *, recursive: bool = False) -> list[TreeEntry]:
        """What ``git ls-tree -l [-r -t] <tree>`` lists (``-t``: a directory before its contents)."""
        items: list[tuple[_RawEntry, str]] = []

        def visit(sha: str, prefix: str) -> None:
            for item in self._tree(sha):
                items.append((item, prefix + item.name))
                if recursive and item.type == "tree":
                    visit(item.sha, f"{prefix}{item.name}/")

        visit(self._root_tree(tree), "")
        return self._with_sizes(items)

    def _root_tree(self, treeish: str) -> str:
        """The tree of a commit, or the tree itself (``<treeish>^{tree}``)."""
        if (info := self._commits.get(treeish)) is not None:
            return info.tree
        if self._trees.get(treeish) is not None:
            return treeish
        obj = self._objects([treeish], contents=True)[0] if _FULL_SHA.match(treeish) else None
        if obj is not None and obj.type == "tree":
            return treeish
        if obj is not None and obj.type == "commit" and obj.data is not None:
            return _parse_commit_object(treeish, obj.data).tree
        raise GitCommandError(f"not a tree-ish: {treeish}")

    def _tree(self, sha: str) -> tuple[_RawEntry, ...]:
        if (entries := self._trees.get(sha)) is not None:
            return entries
        obj = self._objects([sha], contents=True)[0]
        if obj is None or obj.type != "tree" or obj.data is None:
            raise GitCommandError(f"not a tree: {sha}")
        return _parse_tree_object(obj.data)

    def _walk(self, tree: str, path: str) -> _RawEntry | None:
        """The entry at ``path`` below ``tree``, following directories only (not submodules)."""
        found: _RawEntry | None = None
        for part in path.split("/"):
            if found is not None:
                if found.type != "tree":
                    return None
                tree = found.sha
            found = next((item for item in self._tree(tree) if item.name == part), None)
            if found is None:
                return None
        return found

    def _with_sizes(self, items: Sequence[tuple[_RawEntry, str]]) -> list[TreeEntry]:
        kinds = self._kinds_of(item.sha for item, _path in items if item.type == "blob")
        entries = []
        for item, path in items:
            size = kinds[item.sha][1] if item.type == "blob" and item.sha in kinds else None
            if item.type == "blob" and size is None:
                raise GitCommandError(f"blob {item.sha} at {path} is missing")
            entries.append(TreeEntry(item.mode, item.type, item.sha, size, path))
        return entries

    def read_blob(self, sha: str) -> bytes:
        if (data := self._blobs.get(sha)) is not None:
            return data
        if not _FULL_SHA.match(sha):
            raise ObjectNotFound(sha)
        obj = self._objects([sha], contents=True)[0]
        if obj is None or obj.type != "blob" or obj.data is None:
            raise ObjectNotFound(sha)
        return obj.data

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

    def _tree_with_file(self, base_tree: str | None, path: str, mode: str, blob: str) -> str:
        """``write_tree(base_tree, [TreeChange(path, mode, "blob", blob)])`` in one ``git mktree``.

        Only the directories along ``path`` are rewritten, deepest first, each from its old entries with
        the one on the path replaced (a file in the way of a directory, or a directory where the file
        goes, is dropped), as writing from an index does. An index holds files only, so a rewritten
        directory also loses subdirectories without files: they are dropped here too.
        """
        parts = path.split("/")
        levels: list[tuple[_RawEntry, ...]] = []
        tree = base_tree
        for part in parts:
            entries = self._tree(tree) if tree is not None else ()
            levels.append(entries)
            below = next((item for item in entries if item.name == part), None)
            tree = below.sha if below is not None and below.type == "tree" else None
        with subprocess.Popen(
            ["git", f"--git-dir={self.git_dir}", "mktree", "-z", "--batch"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=self.git_dir,
            env=git_env(),
        ) as process:
            assert process.stdin is not None and process.stdout is not None and process.stderr is not None
            child = _RawEntry(mode, "blob", blob, parts[-1])
            for depth in range(len(parts) - 1, -1, -1):
                kept = [
                    item
                    for item in levels[depth]
                    if item.name != parts[depth] and (item.type != "tree" or self._tree_has_files(item.sha))
                ]
                records = [f"{item.mode} {item.type} {item.sha}\t{item.name}" for item in [*kept, child]]
                try:
                    process.stdin.write(
                        b"".join(record.encode(errors="surrogateescape") + b"\x00" for record in records)
                    )
                    process.stdin.write(b"\x00")  # an empty record ends one tree
                    process.stdin.flush()
                except BrokenPipeError:
                    pass  # mktree refused an entry: its stderr says which
                sha = process.stdout.readline().decode().strip()
                if not _FULL_SHA.match(sha):
                    process.stdin.close()
                    error = process.stderr.read().decode(errors="replace")
                    raise GitCommandError(f"git mktree failed: {error}")
                child = _RawEntry("040000", "tree", sha, parts[depth - 1]) if depth else child
            process.stdin.close()
            if process.wait() != 0:
                raise GitCommandError(f"git mktree failed: {process.stderr.read().decode(errors='replace')}")
        return sha

    def _tree_has_files(self, tree: str) -> bool:
        """Whether a file or submodule lies anywhere below ``tree`` (else an index cannot hold it)."""
        if (known := self._has_files.get(tree)) is not None:
            return known
        entries = self._tree(tree)
        found = any(item.type != "tree" for item in entries) or any(
            self._tree_has_files(item.sha) for item in entries if item.type == "tree"
        )
        self._has_files.put(tree, found)
        return found

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
        tree = self._tree_with_file(base_tree, path, mode, blob)
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


def _parse_tree_object(raw: bytes) -> tuple[_RawEntry, ...]:
    """Entries ``<octal mode> <name>\\0<20-byte SHA>``, with modes made canonical as git's ``canon_mode``."""
    entries = []
    position = 0
    while position < len(raw):
        space = raw.index(b" ", position)
        nul = raw.index(b"\0", space)
        mode, kind = _canonical_mode(int(raw[position:space], 8))
        name = raw[space + 1 : nul].decode(errors="surrogateescape")
        entries.append(_RawEntry(mode, kind, raw[nul + 1 : nul + 21].hex(), name))
        position = nul + 21
    return tuple(entries)


def _canonical_mode(mode: int) -> tuple[str, str]:
    kind = mode & 0o170000
    if kind == 0o100000:
        return ("100755" if mode & 0o100 else "100644"), "blob"
    if kind == 0o120000:
        return "120000", "blob"
    if kind == 0o040000:
        return "040000", "tree"
    return "160000", "commit"


def _slashes(path: str) -> list[int]:
    return [position for position, char in enumerate(path) if char == "/"]


def _split_patch(text: bytes) -> list[bytes]:
    """A ``diff-tree -p`` output cut into its ``diff --git`` sections."""
    starts = [found.start() for found in _DIFF_HEADER.finditer(text)]
    return [text[start:end] for start, end in zip(starts, [*starts[1:], len(text)][: len(starts)], strict=True)]


def _hunks(diff: str) -> str | None:
    """A file's diff from its first hunk on, as GitHub's ``patch`` (None: binary or mode-only)."""
    hunk_start = diff.find("\n@@")
    return diff[hunk_start + 1 :].rstrip("\n") if hunk_start >= 0 else None


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
