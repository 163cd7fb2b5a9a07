"""Release-tag immutability: may a repository's tag settings let a release tag be moved to another image?

tagrelay verifies the digest a release tag points at, but commits the *tag*; the cluster pulls the tag
later. That is only the same image if the tag cannot be re-pointed, so a repository must be ECR
``IMMUTABLE``, or ``IMMUTABLE_WITH_EXCLUSION`` whose exclusion filters exempt no tag of the app's
release-tag grammar (cosign's ``sha256-*`` signature tags and the branch tags may be exempt).

Whether a WILDCARD exclusion filter can match a release tag is decided exactly, as the emptiness of the
intersection of two regular languages: the app's ``tag_pattern`` (as ``re.match`` reads it) and the
filter, over the OCI tag grammar. AWS documents the filter's syntax (``^[0-9a-zA-Z._*-]{1,128}$``,
type WILDCARD) but not its matching rules; its other tag filters are read two ways (lifecycle
``tagPatternList``: ``*`` is zero or more characters and the pattern covers the whole tag; scanning
filters: a filter without ``*`` matches any name that contains it). tagrelay takes the union of both
readings, case-insensitively, so it may refuse a safe setting but never accepts an unsafe one. See
docs/integrity.md for the sources.

Pure: no I/O. The regular-expression side uses Python's own parser (``re._parser``); a construct it
cannot reason about (look-arounds, back-references, word boundaries) is reported as unanalysable and
the repository is treated as unsafe (fail closed).
"""

from __future__ import annotations

import re
import shlex
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

MUTABLE = "MUTABLE"
IMMUTABLE = "IMMUTABLE"
IMMUTABLE_WITH_EXCLUSION = "IMMUTABLE_WITH_EXCLUSION"
MUTABLE_WITH_EXCLUSION = "MUTABLE_WITH_EXCLUSION"
MUTABILITY_SETTINGS = (MUTABLE, IMMUTABLE, IMMUTABLE_WITH_EXCLUSION, MUTABLE_WITH_EXCLUSION)

# ECR API reference, ImageTagMutabilityExclusionFilter.filter; at most 5 filters per repository.
EXCLUSION_FILTER = re.compile(r"^[0-9a-zA-Z._*-]{1,128}$")
MAX_EXCLUSION_FILTERS = 5
# cosign's legacy signature tags (sha256-<hex>.sig) and the referrers-tag index (sha256-<hex>).
SIGNATURE_TAG_FILTER = "sha256-*"

# The OCI tag grammar, lower-cased (matching is case-insensitive): [A-Za-z0-9_][A-Za-z0-9._-]{0,127}.
_FIRST = frozenset("abcdefghijklmnopqrstuvwxyz0123456789_")
_ALPHABET = _FIRST | frozenset(".-")
_MAX_TAG = 128


class Unanalysable(ValueError):
    """The tag pattern uses a construct whose language tagrelay cannot compute."""


@dataclass(frozen=True)
class Exposure:
    """An exclusion filter that can exempt a release tag from immutability, with a tag it exempts."""

    filter: str
    example_tag: str


@dataclass(frozen=True)
class MutabilityVerdict:
    """Whether release tags of one repository are protected; ``problem`` says why not."""

    protected: bool
    problem: str | None = None
    exposure: Exposure | None = None


def filter_matches(pattern: str, tag: str) -> bool:
    """Whether an exclusion filter may exempt ``tag`` (the conservative union described above)."""
    return bool(_glob_regex(pattern).fullmatch(tag.lower()))


def _glob_regex(pattern: str) -> re.Pattern[str]:
    return re.compile("".join(".*" if char == "*" else re.escape(char) for char in _effective_glob(pattern)), re.DOTALL)


def _effective_glob(pattern: str) -> str:
    """The filter as a whole-tag glob, lower-cased: one without ``*`` may match any part of a tag."""
    return pattern.lower() if "*" in pattern else f"*{pattern.lower()}*"


def assess(mutability: str, filters: Sequence[str], tag_regex: re.Pattern[str]) -> MutabilityVerdict:
    """Are the release tags of a repository with these settings immutable?"""
    if mutability == IMMUTABLE and not filters:
        return MutabilityVerdict(protected=True)
    if mutability == IMMUTABLE_WITH_EXCLUSION or (mutability == IMMUTABLE and filters):
        try:
            exposure = exposed_release_tag(tag_regex, filters)
        except Unanalysable as exc:
            return MutabilityVerdict(
                protected=False,
                problem=f"tagrelay cannot prove that its exclusion filters exempt no release tag ({exc})",
            )
        if exposure is None:
            return MutabilityVerdict(protected=True)
        return MutabilityVerdict(
            protected=False,
            problem=f"its exclusion filter {exposure.filter!r} lets release tags such as "
            f"{exposure.example_tag!r} be overwritten",
            exposure=exposure,
        )
    if mutability == MUTABLE_WITH_EXCLUSION:
        return MutabilityVerdict(
            protected=False,
            problem="it is MUTABLE_WITH_EXCLUSION: tags are overwritable unless a filter names them "
            "(tagrelay needs IMMUTABLE_WITH_EXCLUSION, which is the safe default for every other tag)",
        )
    return MutabilityVerdict(protected=False, problem=f"it is {mutability}: any tag can be pushed again")


def exposed_release_tag(tag_regex: re.Pattern[str], filters: Iterable[str]) -> Exposure | None:
    """The first filter that can exempt a tag the grammar accepts (with such a tag), or None."""
    for pattern in filters:
        example = _example_tag(tag_regex.pattern, tag_regex.flags, pattern)
        if example is not None:
            return Exposure(filter=pattern, example_tag=example)
    return None


@lru_cache(maxsize=256)
def _example_tag(tag_pattern: str, flags: int, exclusion_filter: str) -> str | None:
    # Pure, and asked on every evaluation for the same few settings: computed once per process.
    return _shortest_common_tag(_Nfa.from_pattern(re.compile(tag_pattern, flags)), exclusion_filter)


def safe_exclusions(filters: Sequence[str], tag_regex: re.Pattern[str], required: Sequence[str]) -> list[str]:
    """The filters a fixed repository should have: the existing ones that exempt no release tag, then
    those tagrelay's own tags need (``required``), without duplicates; at most ECR's five."""
    kept: list[str] = []
    for pattern in [*filters, *required]:
        if pattern in kept:
            continue
        try:
            if exposed_release_tag(tag_regex, [pattern]) is None:
                kept.append(pattern)
        except Unanalysable:
            continue
    return kept[:MAX_EXCLUSION_FILTERS]


def fix_command(repository: str, *, account: str, region: str, exclusions: Sequence[str]) -> str:
    """The AWS CLI command that makes a repository's release tags immutable, keeping ``exclusions``."""
    words = ["aws", "ecr", "put-image-tag-mutability", "--registry-id", account, "--region", region]
    words += ["--repository-name", repository]
    if exclusions:
        words += ["--image-tag-mutability", IMMUTABLE_WITH_EXCLUSION, "--image-tag-mutability-exclusion-filters"]
        words += [f"filterType=WILDCARD,filter={pattern}" for pattern in exclusions]
    else:
        words += ["--image-tag-mutability", IMMUTABLE]
    return shlex.join(words)


# --------------------------------------------------------------------------------------------------
# The automaton side: the tag pattern as an NFA over the lower-cased tag alphabet, and a breadth-first
# search of its product with the filter's glob for the shortest tag both accept.

_BOL = "bol"  # epsilon edge allowed only before the first character (^, \A)
_EOL = "eol"  # epsilon edge after which no character may follow ($, \Z)


@dataclass
class _State:
    chars: list[tuple[frozenset[str], int]] = field(default_factory=list)
    epsilons: list[tuple[str | None, int]] = field(default_factory=list)


class _Nfa:
    """Thompson construction from ``re._parser``'s tree. State ``accept`` means "re.match succeeded";
    the rest of the tag is then unconstrained, as ``re.match`` only anchors at the start."""

    def __init__(self) -> None:
        self.states: list[_State] = []
        self.start = self._new()
        self.accept = -1

    @classmethod
    def from_pattern(cls, pattern: re.Pattern[str]) -> _Nfa:
        import re._parser as sre_parse  # type: ignore[import-not-found]  # the stdlib's own parser

        nfa = cls()
        # Case is ignored throughout (see the module's docstring), so re.IGNORECASE changes nothing.
        tree: Any = sre_parse.parse(pattern.pattern, pattern.flags)
        end = nfa._sequence(list(tree), nfa.start)
        nfa.accept = end
        return nfa

    def _new(self) -> int:
        self.states.append(_State())
        return len(self.states) - 1

    def _sequence(self, items: Sequence[Any], start: int) -> int:
        current = start
        for op, value in items:
            current = self._item(str(op), value, current)
        return current

    def _char_edge(self, start: int, chars: frozenset[str]) -> int:
        end = self._new()
        self.states[start].chars.append((chars & _ALPHABET, end))
        return end

    def _item(self, op: str, value: Any, start: int) -> int:  # noqa: PLR0911 - one return per regular-expression opcode
        if op == "LITERAL":
            return self._char_edge(start, frozenset(chr(value).lower()))
        if op == "NOT_LITERAL":
            return self._char_edge(start, _ALPHABET - {chr(value).lower()})
        if op == "ANY":
            return self._char_edge(start, _ALPHABET)
        if op == "IN":
            return self._char_edge(start, _charset(value))
        if op in ("SUBPATTERN", "ATOMIC_GROUP"):
            items = value[-1] if op == "SUBPATTERN" else value
            return self._sequence(list(items), start)
        if op == "BRANCH":
            end = self._new()
            for alternative in value[1]:
                branch_start = self._new()
                self.states[start].epsilons.append((None, branch_start))
                branch_end = self._sequence(list(alternative), branch_start)
                self.states[branch_end].epsilons.append((None, end))
            return end
        if op in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"):
            return self._repeat(value, start)
        if op == "AT":
            return self._anchor(str(value), start)
        raise Unanalysable(f"the pattern uses {op.lower().replace('_', ' ')}")

    def _repeat(self, value: Any, start: int) -> int:
        low, high, items = value
        current = start
        for _ in range(low):
            current = self._sequence(list(items), current)
        if high == low:
            return current
        end = self._new()
        self.states[current].epsilons.append((None, end))
        if high > _MAX_TAG:  # unbounded (MAXREPEAT), or more than a tag can hold: a loop
            loop_start = self._new()
            self.states[current].epsilons.append((None, loop_start))
            loop_end = self._sequence(list(items), loop_start)
            self.states[loop_end].epsilons.append((None, loop_start))
            self.states[loop_end].epsilons.append((None, end))
            return end
        for _ in range(high - low):
            current = self._sequence(list(items), current)
            self.states[current].epsilons.append((None, end))
        return end

    def _anchor(self, code: str, start: int) -> int:
        end = self._new()
        if code in ("AT_BEGINNING", "AT_BEGINNING_STRING"):
            self.states[start].epsilons.append((_BOL, end))
        elif code in ("AT_END", "AT_END_STRING"):
            self.states[start].epsilons.append((_EOL, end))
        else:
            raise Unanalysable(f"the pattern uses the anchor {code.lower()}")
        return end


def _charset(items: Sequence[Any]) -> frozenset[str]:
    chars: set[str] = set()
    negate = False
    for op, value in items:
        kind = str(op)
        if kind == "NEGATE":
            negate = True
        elif kind == "LITERAL":
            chars.add(chr(value).lower())
        elif kind == "RANGE":
            chars.update(
                c for c in _ALPHABET | frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ") if value[0] <= ord(c) <= value[1]
            )
            chars = {c.lower() for c in chars}
        elif kind == "CATEGORY":
            chars.update(_category(str(value)))
        else:
            raise Unanalysable(f"the character class uses {kind.lower()}")
    lowered = frozenset(c.lower() for c in chars)
    return _ALPHABET - lowered if negate else lowered


def _category(code: str) -> frozenset[str]:
    digits = frozenset("0123456789")
    word = _FIRST
    table = {
        "CATEGORY_DIGIT": digits,
        "CATEGORY_NOT_DIGIT": _ALPHABET - digits,
        "CATEGORY_WORD": word,
        "CATEGORY_NOT_WORD": _ALPHABET - word,
        "CATEGORY_SPACE": frozenset(),
        "CATEGORY_NOT_SPACE": _ALPHABET,
    }
    if code not in table:
        raise Unanalysable(f"the pattern uses {code.lower()}")
    return table[code]


_DONE = -2  # the pattern has matched (re.match): any characters may follow


def _glob_steps(glob: str, position: int) -> set[int]:
    """Positions reachable from ``position`` without consuming (a ``*`` may match nothing)."""
    reached = {position}
    while position < len(glob) and glob[position] == "*":
        position += 1
        reached.add(position)
    return reached


def _shortest_common_tag(nfa: _Nfa, pattern: str) -> str | None:
    """The shortest OCI tag that the pattern accepts (re.match) and the filter may exempt, or None.

    Breadth-first over configurations (nfa state or _DONE, glob position, ended by ``$``), one layer
    per tag length, each configuration with the first tag spelt to reach it.
    """
    glob = _effective_glob(pattern)
    seen: set[tuple[int, int, bool]] = set()

    def closure(layer: dict[tuple[int, int, bool], str], at_start: bool) -> dict[tuple[int, int, bool], str]:
        result: dict[tuple[int, int, bool], str] = {}
        queue = deque(layer.items())
        while queue:
            config, spelt = queue.popleft()
            if config in result:
                continue
            result[config] = spelt
            state, position, ended = config
            if state == _DONE:
                continue
            if state == nfa.accept:
                queue.append(((_DONE, position, ended), spelt))
            for condition, target in nfa.states[state].epsilons:
                if condition == _BOL and not at_start:
                    continue
                queue.append(((target, position, ended or condition == _EOL), spelt))
        return result

    layer = closure({(nfa.start, p, False): "" for p in _glob_steps(glob, 0)}, at_start=True)
    for length in range(1, _MAX_TAG + 1):
        alphabet = _FIRST if length == 1 else _ALPHABET
        following: dict[tuple[int, int, bool], str] = {}
        for (state, position, ended), spelt in layer.items():
            if ended:
                continue
            moves = [(_ALPHABET, _DONE)] if state == _DONE else nfa.states[state].chars
            for chars, target in moves:
                for char in sorted(chars & alphabet):
                    for next_position in _glob_advance(glob, position, char):
                        config = (target, next_position, False)
                        if config not in seen and config not in following:
                            following[config] = spelt + char
        layer = {config: spelt for config, spelt in closure(following, at_start=False).items() if config not in seen}
        if not layer:
            return None
        seen.update(layer)
        for (state, position, _), spelt in layer.items():
            if state == _DONE and position == len(glob):
                return spelt
    return None


def _glob_advance(glob: str, position: int, char: str) -> set[int]:
    reached: set[int] = set()
    for current in _glob_steps(glob, position):
        if current < len(glob):
            if glob[current] == "*":
                reached |= _glob_steps(glob, current)  # the star consumes the character and may go on
            elif glob[current] == char:
                reached |= _glob_steps(glob, current + 1)
    return reached
