"""What every byte-exact GitOps file edit shares: parse only to validate and locate, then splice.

tagrelay never re-serialises a YAML document (a re-dump stripped comments and quotes and left
``imageTag: 1e07581`` a float: incident P3). The edits (values_patch for Helm values, kustomize_patch
for a kustomization's ``images:``) compose the text with ruamel.yaml to validate it and to find nodes,
scan it for the exact characters of a scalar, and replace only those characters with a double-quoted
value. Anything that cannot be edited with certainty is refused with a ``ValuesFileError`` whose
message says what to fix by hand.

ruamel.yaml's marks are character offsets into the given ``str``: a BOM and the ``\\r`` of a CRLF
line end count as one character each, exactly as Python indexes the string.
"""

from __future__ import annotations

import bisect
import functools
import itertools
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Literal

from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, ReusedAnchorWarning, YAMLError
from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from ruamel.yaml.resolver import VersionedResolver
from ruamel.yaml.tokens import AnchorToken, ScalarToken, TagToken, Token, ValueToken

ValuesFileErrorCode = Literal[
    "unparsable",
    "multi_document",
    "duplicate_key",
    "key_missing",
    "not_a_mapping",
    "unsupported_value",
    # kustomize images:
    "duplicate_image",
    "image_missing",
]

STR_TAG = "tag:yaml.org,2002:str"
NULL_TAG = "tag:yaml.org,2002:null"
MERGE_TAG = "tag:yaml.org,2002:merge"
# A plain scalar counts as the string it spells only if neither YAML 1.1 (go-yaml v2, PyYAML) nor
# YAML 1.2 (go-yaml v3, ruamel) reads it as something else: `1e07581` is a float to both (P3).
_RESOLVERS = (VersionedResolver(version=(1, 1)), VersionedResolver(version=(1, 2)))
PLAIN_STRING_HINT = 'write a plain string value there, e.g. {key}: "abc1234".'


class ValuesFileError(ValueError):
    """The GitOps file cannot be edited safely; ``code`` says why, the message says what to do."""

    def __init__(self, code: ValuesFileErrorCode, message: str, *, line: int | None = None) -> None:
        super().__init__(message)
        self.code: ValuesFileErrorCode = code
        self.line = line  # 1-based line of the offending spot, when there is one


class InvalidEditRequest(ValueError):
    """The value or the key path asked for is itself invalid (the file was not looked at)."""


@dataclass(frozen=True)
class Target:
    """Where a scalar's characters are; start == end means "insert after the ':'"."""

    start: int
    end: int
    previous: str | None  # the value as written (None when it is null or absent)
    reads_as_string: bool  # the value already is a YAML string (not a number, bool or null)
    line: int  # 1-based line of its key


@dataclass(frozen=True)
class Splice:
    """Replace ``text[start:end]`` with ``replacement``; ``value_at`` is where the new scalar starts."""

    start: int
    end: int
    replacement: str


def line_of(node_or_token: Node | Token) -> int:
    return int(node_or_token.start_mark.line) + 1


def unparsable(exc: YAMLError) -> ValuesFileError:
    if isinstance(exc, MarkedYAMLError) and exc.problem_mark is not None:
        mark = exc.problem_mark
        context = f" ({exc.context})" if exc.context else ""
        return ValuesFileError(
            "unparsable",
            f"not valid YAML at line {mark.line + 1}, column {mark.column + 1}: {exc.problem}{context}. "
            "Fix the syntax in the file; tagrelay does not guess what was meant.",
            line=mark.line + 1,
        )
    summary = " ".join(str(exc).split())
    return ValuesFileError("unparsable", f"not valid YAML: {summary}. Fix the file first.")


def compose_single_document(text: str, *, what: str = "a values file") -> Node:
    try:
        # A re-used anchor is legal YAML (aliases take the latest); keep the pure function silent.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ReusedAnchorWarning)
            documents: list[Node] = list(YAML(typ="rt", pure=True).compose_all(text))
    except YAMLError as exc:
        raise unparsable(exc) from None
    except RecursionError:
        raise ValuesFileError("unparsable", f"the YAML is nested too deeply to be {what}.") from None
    if not documents:
        raise ValuesFileError("key_missing", "the file holds no YAML content (empty or only comments).")
    if len(documents) > 1:
        second = line_of(documents[1])
        raise ValuesFileError(
            "multi_document",
            f"the file holds {len(documents)} YAML documents (the second starts near line {second}); "
            f"{what} must be exactly one document. Remove the extra '---' separator(s) and what follows, "
            "or split them into separate files.",
            line=second,
        )
    return documents[0]


@functools.lru_cache(maxsize=4)
def checked_document(text: str, what: str = "a values file") -> Node:
    """The one document of ``text``, composed, with duplicate keys refused anywhere in it.

    Cached by content: each event of a release reads the same unchanged file, and composing it again
    costs seconds for a file near the 1 MiB cap. Callers only read the node tree. A failure is not
    cached (it raises again); four documents at most stay in memory.
    """
    root = compose_single_document(text, what=what)
    refuse_duplicate_keys(root, text)
    return root


def key_identity(key: Node, text: str) -> tuple[str, str]:
    # Two keys collide when YAML would treat them as the same key: `web`, "web" and 'web' do.
    if isinstance(key, ScalarNode):
        return str(key.tag), str(key.value)
    return str(key.tag), text[key.start_mark.index : key.end_mark.index]


def all_nodes(root: Node) -> Iterator[Node]:
    # Aliases make the tree a graph (even a cyclic one): visit each node once.
    seen: set[int] = set()
    stack = [root]
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        yield node
        if isinstance(node, MappingNode):
            for key, value in node.value:
                stack.extend((key, value))
        elif isinstance(node, SequenceNode):
            stack.extend(node.value)


def refuse_duplicate_keys(root: Node, text: str) -> None:
    # Anywhere in the file, not only on the key path: P5's duplicate `web:` silently dropped the
    # ingress block and external-dns deleted a DNS record. Report them all, in file order.
    duplicates: list[tuple[int, int, str]] = []
    for node in all_nodes(root):
        if not isinstance(node, MappingNode):
            continue
        first_seen: dict[tuple[str, str], Node] = {}
        for key, _ in node.value:
            identity = key_identity(key, text)
            if identity in first_seen:
                duplicates.append((line_of(key), line_of(first_seen[identity]), identity[1]))
            else:
                first_seen[identity] = key
    if not duplicates:
        return
    duplicates.sort()
    listing = "; ".join(f"{label!r} at line {line} (first at line {first})" for line, first, label in duplicates)
    raise ValuesFileError(
        "duplicate_key",
        f"duplicate key{'s' if len(duplicates) > 1 else ''}: {listing}. YAML keeps only the last one and "
        "silently drops the other's content. Merge or remove the duplicates by hand; tagrelay will not pick one.",
        line=duplicates[0][0],
    )


def kind_of(node: Node) -> str:
    if isinstance(node, MappingNode):
        return "a mapping"
    if isinstance(node, SequenceNode):
        return "a list"
    if isinstance(node, ScalarNode) and str(node.tag) == NULL_TAG and node.style is None:
        return "empty (null)"
    return f"a scalar ({str(node.value)[:40]!r})"


def is_alias(key: Node, value: Node) -> bool:
    # The composer hands back the anchored node itself for `*name`, with the anchor's marks; an
    # anchor always precedes its aliases, so an alias value sits before its own key in the text.
    return bool(value.start_mark.index < key.end_mark.index)


def matching_keys(mapping: MappingNode, name: str) -> list[tuple[Node, Node]]:
    """The (key, value) pairs whose key spells ``name`` (merge keys excluded)."""
    return [
        (key, value)
        for key, value in mapping.value
        if isinstance(key, ScalarNode) and str(key.tag) != MERGE_TAG and key.value == name
    ]


def has_merge_key(mapping: MappingNode) -> bool:
    return any(isinstance(key, ScalarNode) and str(key.tag) == MERGE_TAG for key, _ in mapping.value)


class Tokens:
    """The scanner's tokens, searchable by character offset."""

    def __init__(self, tokens: list[Token]) -> None:
        self._tokens = sorted(tokens, key=lambda token: int(token.start_mark.index))
        self._starts = [int(token.start_mark.index) for token in self._tokens]

    def within(self, start: int, end: int) -> list[Token]:
        low = bisect.bisect_left(self._starts, start)
        high = bisect.bisect_left(self._starts, end)
        return self._tokens[low:high]

    def first_at_or_after(self, index: int) -> Token | None:
        # Zero-width tokens (block starts, implicit keys) carry no characters: skip them.
        position = bisect.bisect_left(self._starts, index)
        for token in self._tokens[position:]:
            if token.end_mark.index > token.start_mark.index:
                return token
        return None


def scan(text: str, stop_after: int) -> Tokens:
    """The scanner's tokens up to the first token with characters that starts after ``stop_after``."""
    tokens: list[Token] = []
    try:
        for token in YAML(typ="rt", pure=True).scan(text):
            tokens.append(token)
            start, end = int(token.start_mark.index), int(token.end_mark.index)
            if start > stop_after and end > start:
                break
    except YAMLError as exc:  # pragma: no cover - the composer already parsed the same text
        raise unparsable(exc) from None
    return Tokens(tokens)


def reads_as_string(node: ScalarNode) -> bool:
    if node.style is not None:  # quoted: a string to every parser
        return True
    implicit = (True, False)
    return all(str(resolver.resolve(ScalarNode, node.value, implicit)) == STR_TAG for resolver in _RESOLVERS)


def scalar_target(text: str, tokens: Tokens, key: Node, value: Node, *, label: str, hint_key: str) -> Target:
    """The characters of ``value`` (the value of ``key``), or the insertion point when it has none.

    Refused: anything but one plain or quoted single-line scalar without an explicit tag.
    """
    line = line_of(key)
    hint = PLAIN_STRING_HINT.format(key=hint_key)

    def refuse(what: str) -> ValuesFileError:
        return ValuesFileError("unsupported_value", f"{label} at line {line} {what}; {hint}", line=line)

    if not isinstance(value, ScalarNode):
        raise refuse(f"is {kind_of(value)}, not a single value")
    own_tokens = tokens.within(int(value.start_mark.index), int(value.end_mark.index))
    if any(isinstance(token, TagToken) for token in own_tokens):
        raise refuse("carries an explicit YAML tag (like !!str)")
    if value.style in ("|", ">"):
        raise refuse(f"is a block scalar ({value.style})")

    scalar = next((token for token in own_tokens if isinstance(token, ScalarToken)), None)
    if scalar is not None:
        start, end = int(scalar.start_mark.index), int(scalar.end_mark.index)
        if "\n" in text[start:end] or "\r" in text[start:end]:
            raise refuse("spans several lines")
        is_null = value.style is None and str(value.tag) == NULL_TAG  # `~`, `null`
        return Target(
            start=start,
            end=end,
            previous=None if is_null else str(value.value),
            reads_as_string=reads_as_string(value),
            line=line,
        )

    # No characters at all (`imageTag:` or `imageTag: # comment`): the composer's mark for an empty
    # value is not reliably after the ':', so insert right after the ':' or after the value's anchor.
    anchor = next((token for token in own_tokens if isinstance(token, AnchorToken)), None)
    if anchor is not None:
        insert_at = int(anchor.end_mark.index)
    else:
        indicator = tokens.first_at_or_after(int(key.end_mark.index))
        if not isinstance(indicator, ValueToken):
            raise refuse("has no ':' after the key")
        insert_at = int(indicator.end_mark.index)
    return Target(start=insert_at, end=insert_at, previous=None, reads_as_string=False, line=line)


def quoted(value: str) -> str:
    """``"value"``: OCI tags and sha256 digests never contain a quote or a backslash (checked by callers)."""
    return f'"{value}"'


def replace_scalar(target: Target, value: str) -> Splice:
    replacement = quoted(value) if target.start < target.end else f" {quoted(value)}"
    return Splice(target.start, target.end, replacement)


def apply(text: str, splices: Sequence[Splice]) -> str:
    """Apply non-overlapping splices (given in any order) to ``text``."""
    ordered = sorted(splices, key=lambda splice: (splice.start, splice.end))
    for before, after in itertools.pairwise(ordered):
        if after.start < before.end or (after.start == before.start and after.end == before.end):
            raise AssertionError("overlapping edits")  # pragma: no cover - callers refuse shared targets
    pieces: list[str] = []
    position = 0
    for splice in ordered:
        pieces += [text[position : splice.start], splice.replacement]
        position = splice.end
    pieces.append(text[position:])
    return "".join(pieces)


def scalars_read_back(text: str, splices: Sequence[Splice]) -> bool:
    """Whether, in the spliced ``text``, the scanner reads each splice's value as one double-quoted scalar
    spanning exactly its quotes (the splices as given to ``apply``, whose offsets refer to the old text)."""
    expected: list[tuple[int, str]] = []
    shift = 0
    for splice in sorted(splices, key=lambda splice: (splice.start, splice.end)):
        value_at = splice.start + shift + splice.replacement.index('"')
        expected.append((value_at, splice.replacement.strip()[1:-1]))
        shift += len(splice.replacement) - (splice.end - splice.start)
    tokens = scan(text, expected[-1][0])
    for start, value in expected:
        scalar = next((t for t in tokens.within(start, start + 1) if isinstance(t, ScalarToken)), None)
        if not (
            scalar is not None
            and scalar.style == '"'
            and scalar.value == value
            and int(scalar.end_mark.index) == start + len(value) + 2
        ):
            return False
    return True
