"""A three-way merge of trees, line by line, as FakeGitHub merges a pull request (the stand-in runs
``git merge-tree`` for the same answer).

Like git: a path changed on one side only takes that side; a file changed on both sides merges its
lines when the two sides' changes are apart, and conflicts when they overlap or touch (an edit on the
line next to another side's edit is a conflict in git too). Identical changes on both sides are one.
A file deleted on one side and changed on the other conflicts. The line diff is difflib's, not git's
Myers diff: the two can place an ambiguous hunk differently, which tagrelay's one-line edits never are.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from difflib import SequenceMatcher

# A change to the base's lines [start, end) replacing them with ``lines``.
_Hunk = tuple[int, int, tuple[bytes, ...]]


def merge_trees(
    base: Mapping[str, bytes], ours: Mapping[str, bytes], theirs: Mapping[str, bytes]
) -> dict[str, bytes] | None:
    """The merged tree, or None when a path conflicts."""
    merged: dict[str, bytes] = {}
    for path in sorted({*base, *ours, *theirs}):
        original, mine, other = base.get(path), ours.get(path), theirs.get(path)
        if other in (mine, original):
            result = mine
        elif mine == original:
            result = other
        elif original is None or mine is None or other is None:
            return None  # added differently on both sides, or deleted on one and changed on the other
        else:
            result = merge_lines(original, mine, other)
            if result is None:
                return None
        if result is not None:
            merged[path] = result
    return merged


def merge_lines(base: bytes, ours: bytes, theirs: bytes) -> bytes | None:
    """``base`` with both sides' line changes, or None when they overlap or touch."""
    lines = base.splitlines(keepends=True)
    hunks = sorted({*_hunks(lines, ours), *_hunks(lines, theirs)})
    for earlier, later in itertools.pairwise(hunks):
        if later[0] <= earlier[1]:  # overlapping, or adjacent (the later one starts where the earlier ends)
            return None
    out: list[bytes] = []
    at = 0
    for start, end, replacement in hunks:
        out.extend(lines[at:start])
        out.extend(replacement)
        at = end
    out.extend(lines[at:])
    return b"".join(out)


def _hunks(base: list[bytes], side: bytes) -> list[_Hunk]:
    changed = side.splitlines(keepends=True)
    matcher = SequenceMatcher(None, base, changed, autojunk=False)
    return [(i1, i2, tuple(changed[j1:j2])) for op, i1, i2, j1, j2 in matcher.get_opcodes() if op != "equal"]
