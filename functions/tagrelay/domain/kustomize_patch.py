"""Byte-exact edit of a kustomization's ``images:`` list: an entry's ``newTag`` and ``digest``, and nothing else.

kustomize's image transformer (kustomize docs, "images"; sigs.k8s.io/kustomize api/types/image.go:
``name``, ``newName``, ``newTag``, ``digest``) rewrites every container image whose name is an
entry's ``name``. tagrelay edits the entry whose ``name`` is the app's image, exactly as the values
edit does (domain/yaml_splice.py): the file is parsed only to validate it and to locate characters,
the new value is spliced in double-quoted (``"1e07581"`` stays a string), and every other byte stays
as it was. A ``newTag`` or ``digest`` field missing from an existing entry is added on a new line at
that entry's indentation (in a flow mapping ``{...}``, after its last value). An entry is never
created: a missing one is refused, so is a name listed twice (kustomize would apply the first and
leave the reader of the file guessing), and so is everything the values edit refuses.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from tagrelay.domain.tags import is_digest, is_valid_image_tag
from tagrelay.domain.yaml_splice import (
    InvalidEditRequest,
    Splice,
    Target,
    ValuesFileError,
    apply,
    checked_document,
    has_merge_key,
    is_alias,
    kind_of,
    line_of,
    matching_keys,
    quoted,
    replace_scalar,
    scalar_target,
    scan,
)

TAG_FIELD = "newTag"
DIGEST_FIELD = "digest"


@dataclass(frozen=True)
class ImageFields:
    """What one ``images:`` entry sets (None when the field is absent or null)."""

    tag: str | None
    digest: str | None


@dataclass(frozen=True)
class ImageChange:
    """What to write into the entry named ``name``; a field left None is not touched."""

    tag: str
    digest: str | None = None


@dataclass(frozen=True)
class KustomizeEdit:
    text: str  # the new file content (the input itself when nothing changed)
    previous: dict[str, ImageFields]  # entry name -> what it set before
    changed: tuple[str, ...]  # "<name> newTag", "<name> digest": the fields written, in the order asked


def read_images(text: str, names: list[str]) -> dict[str, ImageFields]:
    """``newTag`` and ``digest`` of the entries named ``names`` (refusals as for ``set_images``)."""
    located = _locate(text, names)
    return {name: entry.fields for name, entry in located.items()}


def set_images(text: str, changes: Mapping[str, ImageChange]) -> KustomizeEdit:
    """``text`` with each named entry's ``newTag`` (and ``digest`` when given) set, double-quoted."""
    for change in changes.values():
        if not is_valid_image_tag(change.tag):
            raise InvalidEditRequest(
                f"{change.tag!r} is not a valid image tag: it must match [A-Za-z0-9_][A-Za-z0-9._-]{{0,127}} "
                "(the OCI distribution tag grammar)."
            )
        if change.digest is not None and not is_digest(change.digest):
            raise InvalidEditRequest(f"{change.digest!r} is not a digest: write sha256:<64 lower-case hex digits>.")
    located = _locate(text, list(changes))
    splices: list[Splice] = []
    changed: list[str] = []
    for name, change in changes.items():
        entry = located[name]
        wanted = [(TAG_FIELD, change.tag)] + ([(DIGEST_FIELD, change.digest)] if change.digest is not None else [])
        missing: list[tuple[str, str]] = []
        for field, value in wanted:
            target = entry.targets.get(field)
            if target is None:
                missing.append((field, value))
                changed.append(f"{name} {field}")
            elif not (target.previous == value and target.reads_as_string):
                splices.append(replace_scalar(target, value))
                changed.append(f"{name} {field}")
        if missing:
            splices.append(_add_fields(text, entry, missing))
    previous = {name: entry.fields for name, entry in located.items()}
    if not splices:
        return KustomizeEdit(text=text, previous=previous, changed=())
    new_text = apply(text, splices)
    # Correct by construction; reading the result again guards against a YAML corner not foreseen.
    try:
        after = read_images(new_text, list(changes))
    except ValuesFileError:
        after = {}
    for name, change in changes.items():
        fields = after.get(name)
        if fields is None or fields.tag != change.tag or (change.digest is not None and fields.digest != change.digest):
            raise ValuesFileError(
                "unsupported_value",
                f"images entry {name!r} at line {located[name].line}: tagrelay could not place the values there "
                f'safely; write plain string values, e.g. newTag: "abc1234".',
                line=located[name].line,
            )
    return KustomizeEdit(text=new_text, previous=previous, changed=tuple(changed))


@dataclass(frozen=True)
class _Entry:
    node: MappingNode
    line: int
    targets: dict[str, Target]  # present fields among newTag / digest

    @property
    def fields(self) -> ImageFields:
        tag, digest = self.targets.get(TAG_FIELD), self.targets.get(DIGEST_FIELD)
        return ImageFields(tag.previous if tag else None, digest.previous if digest else None)


def _locate(text: str, names: list[str]) -> dict[str, _Entry]:
    root = checked_document(text, "a kustomization")
    entries = _image_entries(root)
    by_name = _entries_by_name(entries, text)
    found: dict[str, tuple[MappingNode, dict[str, tuple[Node, Node]]]] = {}
    for name in names:
        if name not in by_name:
            listed = ", ".join(repr(listed) for listed in by_name) or "none"
            raise ValuesFileError(
                "image_missing",
                f"images has no entry with name {name!r} (names listed: {listed}). Add one, e.g. "
                f'"- name: {name}" with newTag: "", to the kustomization; tagrelay never creates entries.',
                line=line_of(entries) if entries is not None else None,
            )
        node = by_name[name]
        fields: dict[str, tuple[Node, Node]] = {}
        for field in (TAG_FIELD, DIGEST_FIELD):
            matches = matching_keys(node, field)
            if matches:  # duplicates were refused above
                key, value = matches[0]
                if is_alias(key, value):
                    raise ValuesFileError(
                        "unsupported_value",
                        f"images entry {name!r}: {field} at line {line_of(key)} is an alias (*) of the node at line "
                        f'{line_of(value)}; write the value itself, e.g. {field}: "abc1234".',
                        line=line_of(key),
                    )
                fields[field] = (key, value)
            elif has_merge_key(node):
                raise ValuesFileError(
                    "unsupported_value",
                    f"images entry {name!r} at line {line_of(node)} has no {field} of its own but a merge key (<<), "
                    f"which tagrelay does not edit; write {field} in the entry itself.",
                    line=line_of(node),
                )
        found[name] = (node, fields)
    stop_after = max((int(node.end_mark.index) for node, _ in found.values()), default=0)
    tokens = scan(text, stop_after)
    return {
        name: _Entry(
            node=node,
            line=line_of(node),
            targets={
                field: scalar_target(text, tokens, key, value, label=f"images entry {name!r}: {field}", hint_key=field)
                for field, (key, value) in fields.items()
            },
        )
        for name, (node, fields) in found.items()
    }


def _image_entries(root: Node) -> SequenceNode | None:
    if not isinstance(root, MappingNode):
        raise ValuesFileError(
            "not_a_mapping",
            f"the kustomization is {kind_of(root)}, not a mapping with an images: list. Fix the file's structure.",
            line=line_of(root),
        )
    matches = matching_keys(root, "images")
    if not matches:
        hint = " It may come through a merge key (<<), which tagrelay does not edit." if has_merge_key(root) else ""
        raise ValuesFileError(
            "key_missing",
            f"the kustomization has no images: list.{hint} Add one with an entry per image "
            '(- name: <image>, newTag: ""); tagrelay never creates it.',
            line=None,
        )
    key, value = matches[0]
    if isinstance(value, ScalarNode) and value.value in ("", None):
        return None  # `images:` with nothing under it: no entries
    if not isinstance(value, SequenceNode) or is_alias(key, value):
        what = "an alias (*) of another node" if is_alias(key, value) else kind_of(value)
        raise ValuesFileError(
            "not_a_mapping",
            f"images at line {line_of(key)} is {what}, not a list of entries. Fix the file's structure.",
            line=line_of(key),
        )
    return value


def _entries_by_name(entries: SequenceNode | None, text: str) -> dict[str, MappingNode]:
    by_name: dict[str, MappingNode] = {}
    duplicates: list[tuple[int, int, str]] = []  # (line, first line, name)
    for entry in entries.value if entries is not None else []:
        if not isinstance(entry, MappingNode):
            raise ValuesFileError(
                "unsupported_value",
                f"images entry at line {line_of(entry)} is {kind_of(entry)}, not a mapping with a name; write each "
                "entry as a mapping (- name: <image>).",
                line=line_of(entry),
            )
        assert entries is not None
        if entry.start_mark.index < entries.start_mark.index:  # `- *base`: the anchored mapping stands before
            raise ValuesFileError(
                "unsupported_value",
                f"an images entry is an alias (*) of the mapping at line {line_of(entry)}; write the entry itself.",
                line=line_of(entry),
            )
        names = matching_keys(entry, "name")
        if not names or not isinstance(names[0][1], ScalarNode) or not str(names[0][1].value):
            raise ValuesFileError(
                "unsupported_value",
                f"images entry at line {line_of(entry)} has no name; add one (name: <image>): every entry needs one.",
                line=line_of(entry),
            )
        name = str(names[0][1].value)
        if name in by_name:
            duplicates.append((line_of(entry), line_of(by_name[name]), name))
        else:
            by_name[name] = entry
    if duplicates:
        listing = "; ".join(f"{name!r} at line {line} (first at line {first})" for line, first, name in duplicates)
        raise ValuesFileError(
            "duplicate_image",
            f"images lists a name more than once: {listing}. kustomize applies only one of them; merge the "
            "entries by hand, tagrelay will not pick one.",
            line=duplicates[0][0],
        )
    return by_name


def _add_fields(text: str, entry: _Entry, fields: list[tuple[str, str]]) -> Splice:
    """A splice that adds ``field: "value"`` pairs to the entry, in its own style."""
    node = entry.node
    last_key, last_value = node.value[-1]
    last_end = max(int(last_key.end_mark.index), _value_end(text, last_value))
    if node.flow_style:
        addition = "".join(f", {field}: {quoted(value)}" for field, value in fields)
        return Splice(last_end, last_end, addition)
    if not isinstance(last_value, ScalarNode):
        raise ValuesFileError(
            "unsupported_value",
            f"images entry {_name(node)!r} at line {entry.line} ends with {kind_of(last_value)}; tagrelay adds "
            "fields only after a plain value. Add the missing field (newTag or digest) by hand.",
            line=entry.line,
        )
    indent = " " * int(node.start_mark.column)
    line_end = text.find("\n", last_end)
    if line_end == -1:  # the entry ends the file, which has no final newline
        eol = "\r\n" if "\r\n" in text else "\n"
        return Splice(len(text), len(text), "".join(f"{eol}{indent}{field}: {quoted(v)}" for field, v in fields))
    eol = "\r\n" if line_end > 0 and text[line_end - 1] == "\r" else "\n"
    addition = "".join(f"{indent}{field}: {quoted(value)}{eol}" for field, value in fields)
    return Splice(line_end + 1, line_end + 1, addition)


def _value_end(text: str, value: Node) -> int:
    """Where a value's characters end; an empty value (``newName:``) has none, its key's end counts."""
    if isinstance(value, ScalarNode) and value.style is None and value.value == "":
        return 0
    return int(value.end_mark.index)


def _name(node: MappingNode) -> str:
    names = matching_keys(node, "name")
    return str(names[0][1].value) if names else "?"
