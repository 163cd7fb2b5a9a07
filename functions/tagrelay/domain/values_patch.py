"""Byte-exact edit of one scalar in a Helm values file: the image tag, and nothing else.

The seed's tooling loaded and re-dumped the whole file (yq), which stripped comments and quotes,
dropped blank lines and left tags unquoted (incident P3); a hand edit once added a second top-level
``web:`` key that YAML silently resolved by dropping the first (incident P5). So this module never
re-serialises the document. It parses the text only to *validate* it and to *locate* the value's
characters, then splices ``"<tag>"`` into the original string at that span. Anything it cannot edit
with certainty is refused with a ``ValuesFileError`` whose message says what to fix; it never
repairs someone else's file.

Locating uses ruamel.yaml's composer (node tree, for structure, duplicates and aliases) and its
scanner (tokens, for the exact characters of the scalar without its anchor, and for the ``:`` that
precedes an absent value). Their marks are character offsets into the given ``str``: a BOM and the
``\\r`` of CRLF line ends count as one character each, exactly as Python indexes the string.
"""

from __future__ import annotations

import bisect
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, ReusedAnchorWarning, YAMLError
from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from ruamel.yaml.resolver import VersionedResolver
from ruamel.yaml.tokens import AnchorToken, ScalarToken, TagToken, Token, ValueToken

from tagrelay.domain.tags import is_valid_image_tag

ValuesFileErrorCode = Literal[
    "unparsable", "multi_document", "duplicate_key", "key_missing", "not_a_mapping", "unsupported_value"
]

_STR_TAG = "tag:yaml.org,2002:str"
_NULL_TAG = "tag:yaml.org,2002:null"
_MERGE_TAG = "tag:yaml.org,2002:merge"
# A plain scalar counts as the string it spells only if neither YAML 1.1 (go-yaml v2, PyYAML) nor
# YAML 1.2 (go-yaml v3, ruamel) reads it as something else: `1e07581` is a float to both (P3).
_RESOLVERS = (VersionedResolver(version=(1, 1)), VersionedResolver(version=(1, 2)))
_PLAIN_STRING_HINT = 'write a plain string value there, e.g. {key}: "abc1234".'


class ValuesFileError(ValueError):
    """The values file cannot be edited safely; ``code`` says why, the message says what to do."""

    def __init__(self, code: ValuesFileErrorCode, message: str, *, line: int | None = None) -> None:
        super().__init__(message)
        self.code: ValuesFileErrorCode = code
        self.line = line  # 1-based line of the offending spot, when there is one


class InvalidEditRequest(ValueError):
    """The tag or the key path asked for is itself invalid (the file was not looked at)."""


@dataclass(frozen=True)
class ValuesEdit:
    text: str  # the new file content
    previous: str | None  # the value before (None when it was null or absent)
    changed: bool  # False when the value already was the tag; then text is the input, unchanged


def read_value(text: str, key_path: str) -> str | None:
    """The scalar at ``key_path`` as written (None for a null or absent value).

    Raises ``ValuesFileError`` for every file that ``set_value`` would refuse.
    """
    return _locate(text, _split_key_path(key_path)).previous


def set_value(text: str, key_path: str, tag: str) -> ValuesEdit:
    """``text`` with the value at ``key_path`` replaced by ``"<tag>"``; every other byte unchanged."""
    if not is_valid_image_tag(tag):
        raise InvalidEditRequest(
            f"{tag!r} is not a valid image tag: it must match [A-Za-z0-9_][A-Za-z0-9._-]{{0,127}} "
            "(the OCI distribution tag grammar)."
        )
    segments = _split_key_path(key_path)
    target = _locate(text, segments)
    if target.previous == tag and target.reads_as_string:
        return ValuesEdit(text=text, previous=target.previous, changed=False)

    # OCI tags never contain a quote or a backslash, so the double-quoted form needs no escaping.
    quoted = f'"{tag}"'
    replacement = quoted if target.start < target.end else f" {quoted}"
    new_text = text[: target.start] + replacement + text[target.end :]

    # The splice is correct by construction; re-reading it guards against a YAML corner not foreseen.
    # The text before the splice is unchanged and the new value is one double-quoted scalar where the
    # old one stood, so the scanner's tokens are the same but that one: checking it is enough (and
    # costs a scan up to the value, not a second parse of a file that may be a megabyte).
    if not _spliced_scalar_reads(new_text, target.start + len(replacement) - len(quoted), tag) and (
        _locate(new_text, segments).previous != tag
    ):
        raise ValuesFileError(
            "unsupported_value",
            f"{key_path} at line {target.line}: tagrelay could not place the tag there safely; "
            + _PLAIN_STRING_HINT.format(key=segments[-1]),
            line=target.line,
        )
    return ValuesEdit(text=new_text, previous=target.previous, changed=True)


def _spliced_scalar_reads(text: str, start: int, tag: str) -> bool:
    """Whether the scanner reads a double-quoted scalar ``tag`` at ``start``, spanning exactly its quotes."""
    tokens = _scan(text, start)
    scalar = next((t for t in tokens.within(start, start + 1) if isinstance(t, ScalarToken)), None)
    return (
        scalar is not None
        and scalar.style == '"'
        and scalar.value == tag
        and int(scalar.end_mark.index) == start + len(tag) + 2
    )


@dataclass(frozen=True)
class _Target:
    start: int  # character span to replace; start == end means "insert after the ':'"
    end: int
    previous: str | None
    reads_as_string: bool  # the value already is a YAML string (not a number, bool or null)
    line: int  # 1-based


def _split_key_path(key_path: str) -> list[str]:
    segments = key_path.split(".")
    if not key_path or any(not segment for segment in segments):
        raise InvalidEditRequest(f"{key_path!r} is not a key path: write dotted keys, e.g. global.imageTag.")
    return segments


def _locate(text: str, segments: list[str]) -> _Target:
    root = _compose_single_document(text)
    _refuse_duplicate_keys(root, text)
    key_node, value_node = _walk(root, segments)
    # The tokens are only needed up to the value: stop scanning there (the image tag is usually near the top).
    stop_after = max(int(key_node.end_mark.index), int(value_node.end_mark.index))
    return _value_target(text, _scan(text, stop_after), segments, key_node, value_node)


def _line(node_or_token: Node | Token) -> int:
    return int(node_or_token.start_mark.line) + 1


def _unparsable(exc: YAMLError) -> ValuesFileError:
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


def _compose_single_document(text: str) -> Node:
    try:
        # A re-used anchor is legal YAML (aliases take the latest); keep the pure function silent.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ReusedAnchorWarning)
            documents: list[Node] = list(YAML(typ="rt", pure=True).compose_all(text))
    except YAMLError as exc:
        raise _unparsable(exc) from None
    except RecursionError:
        raise ValuesFileError("unparsable", "the YAML is nested too deeply to be a values file.") from None
    if not documents:
        raise ValuesFileError("key_missing", "the file holds no YAML content (empty or only comments).")
    if len(documents) > 1:
        second = _line(documents[1])
        raise ValuesFileError(
            "multi_document",
            f"the file holds {len(documents)} YAML documents (the second starts near line {second}); "
            "a values file must be exactly one document. Remove the extra '---' separator(s) and what follows, "
            "or split them into separate files.",
            line=second,
        )
    return documents[0]


def _key_identity(key: Node, text: str) -> tuple[str, str]:
    # Two keys collide when YAML would treat them as the same key: `web`, "web" and 'web' do.
    if isinstance(key, ScalarNode):
        return str(key.tag), str(key.value)
    return str(key.tag), text[key.start_mark.index : key.end_mark.index]


def _key_label(key: Node, text: str) -> str:
    return _key_identity(key, text)[1]


def _all_nodes(root: Node) -> Iterator[Node]:
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


def _refuse_duplicate_keys(root: Node, text: str) -> None:
    # Anywhere in the file, not only on the key path: P5's duplicate `web:` silently dropped the
    # ingress block and external-dns deleted a DNS record. Report them all, in file order.
    duplicates: list[tuple[int, int, str]] = []
    for node in _all_nodes(root):
        if not isinstance(node, MappingNode):
            continue
        first_seen: dict[tuple[str, str], Node] = {}
        for key, _ in node.value:
            identity = _key_identity(key, text)
            if identity in first_seen:
                duplicates.append((_line(key), _line(first_seen[identity]), _key_label(key, text)))
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


def _kind(node: Node) -> str:
    if isinstance(node, MappingNode):
        return "a mapping"
    if isinstance(node, SequenceNode):
        return "a list"
    if isinstance(node, ScalarNode) and str(node.tag) == _NULL_TAG and node.style is None:
        return "empty (null)"
    return f"a scalar ({str(node.value)[:40]!r})"


def _is_alias(key: Node, value: Node) -> bool:
    # The composer hands back the anchored node itself for `*name`, with the anchor's marks; an
    # anchor always precedes its aliases, so an alias value sits before its own key in the text.
    return bool(value.start_mark.index < key.end_mark.index)


def _walk(root: Node, segments: list[str]) -> tuple[Node, Node]:
    node = root
    key_node: Node | None = None
    for depth, segment in enumerate(segments):
        here = ".".join(segments[:depth]) or "the document root"
        # An empty value's own mark may point at the next line, so name the line of its key.
        here_line = _line(key_node if key_node is not None else node)
        if not isinstance(node, MappingNode):
            raise ValuesFileError(
                "not_a_mapping",
                f"key path {'.'.join(segments)} goes through {here} (line {here_line}), which is {_kind(node)}, "
                "not a mapping. Fix the file's structure; tagrelay does not restructure it.",
                line=here_line,
            )
        matches = [
            (key, value)
            for key, value in node.value
            if isinstance(key, ScalarNode) and str(key.tag) != _MERGE_TAG and key.value == segment
        ]
        if not matches:
            merged = any(isinstance(key, ScalarNode) and str(key.tag) == _MERGE_TAG for key, _ in node.value)
            hint = " It may come through a merge key (<<), which tagrelay does not edit." if merged else ""
            raise ValuesFileError(
                "key_missing",
                f"key path {'.'.join(segments)} not found: {here} (line {here_line}) has no key {segment!r}.{hint} "
                f'Add it to the file (e.g. {segment}: ""); tagrelay never creates keys.',
                line=here_line,
            )
        if len(matches) > 1:  # `1:` and `"1":` differ to YAML but both spell the segment
            lines = ", ".join(str(_line(key)) for key, _ in matches)
            raise ValuesFileError(
                "duplicate_key",
                f"key {segment!r} under {here} is written more than once (lines {lines}); keep one.",
                line=_line(matches[1][0]),
            )
        key_node, node = matches[0]
        if _is_alias(key_node, node):
            path = ".".join(segments[: depth + 1])
            raise ValuesFileError(
                "unsupported_value",
                f"{path} at line {_line(key_node)} is an alias (*) of the node at line {_line(node)}; editing "
                "through it would change that node too. Replace the alias with the value itself; for the tag, "
                + _PLAIN_STRING_HINT.format(key=segments[-1]),
                line=_line(key_node),
            )
    assert key_node is not None  # segments is never empty
    return key_node, node


class _Tokens:
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


def _scan(text: str, stop_after: int) -> _Tokens:
    """The scanner's tokens up to the first token with characters that starts after ``stop_after``."""
    tokens: list[Token] = []
    try:
        for token in YAML(typ="rt", pure=True).scan(text):
            tokens.append(token)
            start, end = int(token.start_mark.index), int(token.end_mark.index)
            if start > stop_after and end > start:
                break
    except YAMLError as exc:  # pragma: no cover - the composer already parsed the same text
        raise _unparsable(exc) from None
    return _Tokens(tokens)


def _reads_as_string(node: ScalarNode) -> bool:
    if node.style is not None:  # quoted: a string to every parser
        return True
    implicit = (True, False)
    return all(str(resolver.resolve(ScalarNode, node.value, implicit)) == _STR_TAG for resolver in _RESOLVERS)


def _value_target(text: str, tokens: _Tokens, segments: list[str], key: Node, value: Node) -> _Target:
    path = ".".join(segments)
    line = _line(key)
    hint = _PLAIN_STRING_HINT.format(key=segments[-1])

    def refuse(what: str) -> ValuesFileError:
        return ValuesFileError("unsupported_value", f"{path} at line {line} {what}; {hint}", line=line)

    if not isinstance(value, ScalarNode):
        raise refuse(f"is {_kind(value)}, not a single value")
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
        is_null = value.style is None and str(value.tag) == _NULL_TAG  # `~`, `null`
        return _Target(
            start=start,
            end=end,
            previous=None if is_null else str(value.value),
            reads_as_string=_reads_as_string(value),
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
    return _Target(start=insert_at, end=insert_at, previous=None, reads_as_string=False, line=line)
