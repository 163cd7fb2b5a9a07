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

from collections.abc import Mapping
from dataclasses import dataclass

from ruamel.yaml.nodes import MappingNode, Node

from tagrelay.domain.tags import is_digest, is_valid_image_tag
from tagrelay.domain.yaml_splice import (
    PLAIN_STRING_HINT,
    InvalidEditRequest,
    Target,
    ValuesFileError,
    ValuesFileErrorCode,
    apply,
    checked_document,
    has_merge_key,
    is_alias,
    kind_of,
    line_of,
    matching_keys,
    replace_scalar,
    scalar_target,
    scalars_read_back,
    scan,
)

__all__ = [
    "InvalidEditRequest",
    "ValuesEdit",
    "ValuesFileError",
    "ValuesFileErrorCode",
    "ValuesPlan",
    "plan_values",
    "read_value",
    "read_values",
    "set_value",
]


@dataclass(frozen=True)
class ValuesEdit:
    text: str  # the new file content
    previous: str | None  # the value before (None when it was null or absent)
    changed: bool  # False when the value already was the tag; then text is the input, unchanged


@dataclass(frozen=True)
class ValuesPlan:
    """Several values set in one edit (per-image tag keys, digest keys)."""

    text: str  # the new file content
    previous: dict[str, str | None]  # key path -> the value before
    changed: tuple[str, ...]  # the key paths whose value changed, in the order asked


def read_value(text: str, key_path: str) -> str | None:
    """The scalar at ``key_path`` as written (None for a null or absent value).

    Raises ``ValuesFileError`` for every file that ``set_value`` would refuse.
    """
    return read_values(text, [key_path])[key_path]


def read_values(text: str, key_paths: list[str]) -> dict[str, str | None]:
    """The scalars at each key path, from one parse (refusals as for ``read_value``)."""
    return {path: target.previous for path, target in _locate_all(text, key_paths).items()}


def set_value(text: str, key_path: str, tag: str) -> ValuesEdit:
    """``text`` with the value at ``key_path`` replaced by ``"<tag>"``; every other byte unchanged."""
    _check_tag(tag)
    plan = plan_values(text, {key_path: tag})
    return ValuesEdit(text=plan.text, previous=plan.previous[key_path], changed=bool(plan.changed))


def plan_values(text: str, values: Mapping[str, str]) -> ValuesPlan:
    """``text`` with each key path's value replaced by the double-quoted value; every other byte unchanged.

    Each value must be an OCI tag or a ``sha256:<64 hex>`` digest. A value that already is the string
    asked for is left as it is; when none changes, the text is returned unchanged.
    """
    for value in values.values():
        if not (is_valid_image_tag(value) or is_digest(value)):
            _check_tag(value)
    targets = _locate_all(text, list(values))
    _refuse_shared_targets(targets)
    splices = []
    changed = []
    for path, value in values.items():
        target = targets[path]
        if target.previous == value and target.reads_as_string:
            continue
        splices.append(replace_scalar(target, value))
        changed.append(path)
    previous = {path: target.previous for path, target in targets.items()}
    if not splices:
        return ValuesPlan(text=text, previous=previous, changed=())
    new_text = apply(text, splices)
    # The splice is correct by construction; re-reading it guards against a YAML corner not foreseen.
    # The text outside the splices is unchanged and each new value is one double-quoted scalar where the
    # old one stood, so checking those scalars' tokens is enough (a scan up to the last one, not a second
    # parse of a file that may be a megabyte); if that check fails, the whole text is read again.
    if not scalars_read_back(new_text, splices) and (
        _safe_read(new_text, list(values)) != {path: values[path] for path in values}
    ):
        path = changed[0]
        raise ValuesFileError(
            "unsupported_value",
            f"{path} at line {targets[path].line}: tagrelay could not place the value there safely; "
            + PLAIN_STRING_HINT.format(key=_split_key_path(path)[-1]),
            line=targets[path].line,
        )
    return ValuesPlan(text=new_text, previous=previous, changed=tuple(changed))


def _safe_read(text: str, key_paths: list[str]) -> dict[str, str | None]:
    try:
        return read_values(text, key_paths)
    except ValuesFileError:
        return {}


def _check_tag(tag: str) -> None:
    if not is_valid_image_tag(tag):
        raise InvalidEditRequest(
            f"{tag!r} is not a valid image tag: it must match [A-Za-z0-9_][A-Za-z0-9._-]{{0,127}} "
            "(the OCI distribution tag grammar)."
        )


def _refuse_shared_targets(targets: dict[str, Target]) -> None:
    seen: dict[tuple[int, int], str] = {}
    for path, target in targets.items():
        other = seen.setdefault((target.start, target.end), path)
        if other != path:
            raise InvalidEditRequest(
                f"{other} and {path} name the same value (line {target.line}); give distinct keys."
            )


def _split_key_path(key_path: str) -> list[str]:
    segments = key_path.split(".")
    if not key_path or any(not segment for segment in segments):
        raise InvalidEditRequest(f"{key_path!r} is not a key path: write dotted keys, e.g. global.imageTag.")
    return segments


def _locate_all(text: str, key_paths: list[str]) -> dict[str, Target]:
    split = {path: _split_key_path(path) for path in key_paths}
    root = checked_document(text)
    nodes = {path: _walk(root, segments) for path, segments in split.items()}
    # The tokens are only needed up to the last value: stop scanning there (tags are usually near the top).
    stop_after = max(max(int(key.end_mark.index), int(value.end_mark.index)) for key, value in nodes.values())
    tokens = scan(text, stop_after)
    return {
        path: scalar_target(text, tokens, key, value, label=path, hint_key=split[path][-1])
        for path, (key, value) in nodes.items()
    }


def _walk(root: Node, segments: list[str]) -> tuple[Node, Node]:
    node = root
    key_node: Node | None = None
    for depth, segment in enumerate(segments):
        here = ".".join(segments[:depth]) or "the document root"
        # An empty value's own mark may point at the next line, so name the line of its key.
        here_line = line_of(key_node if key_node is not None else node)
        if not isinstance(node, MappingNode):
            raise ValuesFileError(
                "not_a_mapping",
                f"key path {'.'.join(segments)} goes through {here} (line {here_line}), which is {kind_of(node)}, "
                "not a mapping. Fix the file's structure; tagrelay does not restructure it.",
                line=here_line,
            )
        matches = matching_keys(node, segment)
        if not matches:
            merged = has_merge_key(node)
            hint = " It may come through a merge key (<<), which tagrelay does not edit." if merged else ""
            raise ValuesFileError(
                "key_missing",
                f"key path {'.'.join(segments)} not found: {here} (line {here_line}) has no key {segment!r}.{hint} "
                f'Add it to the file (e.g. {segment}: ""); tagrelay never creates keys.',
                line=here_line,
            )
        if len(matches) > 1:  # `1:` and `"1":` differ to YAML but both spell the segment
            lines = ", ".join(str(line_of(key)) for key, _ in matches)
            raise ValuesFileError(
                "duplicate_key",
                f"key {segment!r} under {here} is written more than once (lines {lines}); keep one.",
                line=line_of(matches[1][0]),
            )
        key_node, node = matches[0]
        if is_alias(key_node, node):
            path = ".".join(segments[: depth + 1])
            raise ValuesFileError(
                "unsupported_value",
                f"{path} at line {line_of(key_node)} is an alias (*) of the node at line {line_of(node)}; editing "
                "through it would change that node too. Replace the alias with the value itself; for the tag, "
                + PLAIN_STRING_HINT.format(key=segments[-1]),
                line=line_of(key_node),
            )
    assert key_node is not None  # segments is never empty
    return key_node, node
