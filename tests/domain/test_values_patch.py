"""values_patch: a byte-exact tag edit over real values files, every refusal, and generated documents.

The guarantee under test: after ``set_value`` the file differs from the input in exactly one line,
and that line differs only where the old value stood, which now reads ``"<tag>"``.
"""

from __future__ import annotations

import difflib
import warnings
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from tagrelay.domain.values_patch import (
    InvalidEditRequest,
    ValuesEdit,
    ValuesFileError,
    read_value,
    set_value,
)

CORPUS_DIR = Path(__file__).resolve().parent.parent / "testdata" / "values"
REFUSED_DIR = CORPUS_DIR / "refused"
NEW_TAG = "prod-abc1234"


def read_exact(path: Path) -> str:
    # Not Path.read_text: text mode would turn CRLF into LF and hide exactly what is under test.
    return path.read_bytes().decode("utf-8")


def assert_only_value_changed(before: str, after: str, written: str, tag: str) -> None:
    """One line differs, and only in that ``written`` (the old value's characters) became ``"tag"``."""
    before_lines, after_lines = before.split("\n"), after.split("\n")
    diff = "".join(difflib.unified_diff(before.splitlines(True), after.splitlines(True), "before", "after"))
    changes = [
        opcode
        for opcode in difflib.SequenceMatcher(a=before_lines, b=after_lines, autojunk=False).get_opcodes()
        if opcode[0] != "equal"
    ]
    assert len(changes) == 1, diff
    kind, old_start, old_end, new_start, new_end = changes[0]
    assert (kind, old_end - old_start, new_end - new_start) == ("replace", 1, 1), diff
    assert old_start == new_start, diff
    assert len(before_lines) == len(after_lines)

    old_line, new_line = before_lines[old_start], after_lines[new_start]
    # An absent value (`imageTag:`) gains the separating blank as well as the value.
    new_value = f'"{tag}"' if written else f' "{tag}"'
    candidates = [index for index in range(len(new_line)) if new_line.startswith(new_value, index)]
    assert any(new_line[:index] + written + new_line[index + len(new_value) :] == old_line for index in candidates), (
        f"the changed line differs in more than the value:\n{old_line!r}\n{new_line!r}"
    )


# --- the corpus --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    key_path: str
    written: str  # the value's characters as they stand in the file ("" when there is none)
    previous: str | None  # what read_value reports for them


CORPUS: dict[str, Case] = {
    "seed-290cffc-prod-unquoted-tag.yaml": Case("global.imageTag", "prod-cf3124b", "prod-cf3124b"),
    "seed-4f831a8-staging-quoted-tag-header-comment.yaml": Case(
        "global.imageTag", '"staging-545ef16"', "staging-545ef16"
    ),
    "seed-84c71ec-prod-inline-trailing-comment.yaml": Case("global.imageTag", '"62b2d1c"', "62b2d1c"),
    "seed-8ba9f09-staging-empty-tag-blank-lines.yaml": Case("global.imageTag", '""', ""),
    "f716691-prod-float-looking-tag.yaml": Case("global.imageTag", "1e07581", "1e07581"),
    "998b498-docs-values-no-final-newline.yaml": Case("image.tag", '"latest"', "latest"),
    "crlf-line-endings.yaml": Case("global.imageTag", '"prod-1a2b3c4"', "prod-1a2b3c4"),
    "crlf-no-final-newline-tag-on-last-line.yaml": Case("global.imageTag", "staging-9f8e7d6", "staging-9f8e7d6"),
    "no-final-newline.yaml": Case("global.imageTag", '"prod-0c1d2e3"', "prod-0c1d2e3"),
    "flow-mapping-global.yaml": Case("global.imageTag", "abc1230", "abc1230"),
    "flow-style-json-values.yaml": Case("global.imageTag", '"prod-77aa1b2"', "prod-77aa1b2"),
    "anchors-and-aliases-elsewhere.yaml": Case("global.imageTag", '"prod-4d5e6f7"', "prod-4d5e6f7"),
    "anchored-tag-value.yaml": Case("global.imageTag", '"staging-1122aab"', "staging-1122aab"),
    "four-space-indent.yaml": Case("global.imageTag", '"prod-5566ccd"', "prod-5566ccd"),
    "unicode-comments-and-values.yaml": Case("global.imageTag", '"prod-8899eef"', "prod-8899eef"),
    "utf8-bom.yaml": Case("global.imageTag", '"staging-3344556"', "staging-3344556"),
    "null-value-bare.yaml": Case("global.imageTag", "", None),
    "null-value-with-comment.yaml": Case("global.imageTag", "", None),
    "single-quoted-tag.yaml": Case("global.imageTag", "'staging-a0b1c2d'", "staging-a0b1c2d"),
    "document-start-marker.yaml": Case("global.imageTag", '"prod-b0c0d0e"', "prod-b0c0d0e"),
    "trailing-whitespace-and-tabs.yaml": Case("global.imageTag", "prod-1f2f3f4", "prod-1f2f3f4"),
    "per-service-tags.yaml": Case("global.web.imageTag", '"prod-aa11bb2"', "prod-aa11bb2"),
}


def test_every_corpus_file_has_a_case_and_there_are_enough() -> None:
    assert {path.name for path in CORPUS_DIR.glob("*.yaml")} == set(CORPUS)
    assert len(CORPUS) >= 15


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_corpus_edit_changes_only_the_value(name: str) -> None:
    case = CORPUS[name]
    before = read_exact(CORPUS_DIR / name)

    edit = set_value(before, case.key_path, NEW_TAG)

    assert edit.changed
    assert edit.previous == case.previous
    assert_only_value_changed(before, edit.text, case.written, NEW_TAG)
    assert read_value(edit.text, case.key_path) == NEW_TAG
    # Spelled out although implied above: the properties the seed's tools destroyed.
    assert edit.text.count("\r\n") == before.count("\r\n")
    assert edit.text.endswith("\n") == before.endswith("\n")
    assert edit.text.startswith("\ufeff") == before.startswith("\ufeff")
    assert edit.text.count("#") == before.count("#")


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_corpus_edit_applied_twice_changes_nothing_the_second_time(name: str) -> None:
    case = CORPUS[name]
    first = set_value(read_exact(CORPUS_DIR / name), case.key_path, NEW_TAG)

    second = set_value(first.text, case.key_path, NEW_TAG)

    assert second == ValuesEdit(text=first.text, previous=NEW_TAG, changed=False)


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_corpus_read_value(name: str) -> None:
    case = CORPUS[name]
    assert read_value(read_exact(CORPUS_DIR / name), case.key_path) == case.previous


def test_seed_290cffc_keeps_the_int_that_yq_wrote_further_down() -> None:
    before = read_exact(CORPUS_DIR / "seed-290cffc-prod-unquoted-tag.yaml")
    after = set_value(before, "global.imageTag", "prod-0a1b2c3").text
    assert '  imageTag: "prod-0a1b2c3"\n' in after
    assert "      value: 1            # int written by yq env(); the template's | quote saves it\n" in after


# --- exact outputs for each value style ----------------------------------------------------------


@pytest.mark.parametrize(
    ("before", "after"),
    [
        pytest.param("g:\n  imageTag: old\n", 'g:\n  imageTag: "abc1234"\n', id="plain"),
        pytest.param("g:\n  imageTag: 'old'\n", 'g:\n  imageTag: "abc1234"\n', id="single-quoted"),
        pytest.param('g:\n  imageTag: "old"\n', 'g:\n  imageTag: "abc1234"\n', id="double-quoted"),
        pytest.param('g:\n  imageTag: ""\n', 'g:\n  imageTag: "abc1234"\n', id="empty-string"),
        pytest.param("g:\n  imageTag:\n  x: 1\n", 'g:\n  imageTag: "abc1234"\n  x: 1\n', id="absent"),
        pytest.param("g:\n  imageTag:", 'g:\n  imageTag: "abc1234"', id="absent-at-end-of-file"),
        pytest.param("g:\n  imageTag: # CI\n", 'g:\n  imageTag: "abc1234" # CI\n', id="absent-with-comment"),
        pytest.param("g:\n  imageTag: ~\n", 'g:\n  imageTag: "abc1234"\n', id="tilde-null"),
        pytest.param("g:\n  imageTag: 1e07581\n", 'g:\n  imageTag: "abc1234"\n', id="float-looking"),
        pytest.param("g:\n  imageTag: &t old\n", 'g:\n  imageTag: &t "abc1234"\n', id="anchor-kept"),
        pytest.param("g:\n  imageTag: &t\n", 'g:\n  imageTag: &t "abc1234"\n', id="anchor-on-absent-value"),
        pytest.param(
            "g:\r\n  imageTag: old # c\r\n  x: 1\r\n", 'g:\r\n  imageTag: "abc1234" # c\r\n  x: 1\r\n', id="crlf"
        ),
        pytest.param("\ufeffg:\n  imageTag: old\n", '\ufeffg:\n  imageTag: "abc1234"\n', id="bom"),
        pytest.param("g:\n  imageTag: old   \n", 'g:\n  imageTag: "abc1234"   \n', id="trailing-blanks"),
        pytest.param(
            "g: {imageTag: old, environment: prod}\n",
            'g: {imageTag: "abc1234", environment: prod}\n',
            id="flow-mapping",
        ),
        pytest.param("g: {imageTag: , e: 1}\n", 'g: {imageTag: "abc1234" , e: 1}\n', id="flow-absent"),
        pytest.param('{"g":{"imageTag":"old"}}', '{"g":{"imageTag":"abc1234"}}', id="json-no-blanks"),
        pytest.param('{"g":{"imageTag":}}', '{"g":{"imageTag": "abc1234"}}', id="json-absent"),
        pytest.param("? g\n: ? imageTag\n  : old\n", '? g\n: ? imageTag\n  : "abc1234"\n', id="explicit-keys"),
        pytest.param("\"g\":\n  'imageTag': old\n", '"g":\n  \'imageTag\': "abc1234"\n', id="quoted-keys"),
        pytest.param("--- \ng:\n  imageTag: old\n...\n", '--- \ng:\n  imageTag: "abc1234"\n...\n', id="doc-markers"),
        pytest.param(
            "g:\n  imageTag: old # é 🚀\n  name: Mosaïc\n",
            'g:\n  imageTag: "abc1234" # é 🚀\n  name: Mosaïc\n',
            id="unicode",
        ),
    ],
)
def test_value_styles_become_one_double_quoted_value(before: str, after: str) -> None:
    assert set_value(before, "g.imageTag", "abc1234").text == after


def test_alias_of_the_anchored_tag_follows_it() -> None:
    edit = set_value("g:\n  imageTag: &t old\n  copy: *t\n", "g.imageTag", "abc1234")
    assert edit.text == 'g:\n  imageTag: &t "abc1234"\n  copy: *t\n'
    assert YAML(typ="safe", pure=True).load(edit.text)["g"]["copy"] == "abc1234"


def test_a_reused_anchor_elsewhere_is_accepted_silently() -> None:
    text = "a: &x 1\nb: &x 2\nc: *x\nglobal:\n  imageTag: old\n"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        edit = set_value(text, "global.imageTag", "abc1234")
    assert edit.text == text.replace("imageTag: old", 'imageTag: "abc1234"')


# --- when the value already is the tag ---------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        'g:\n  imageTag: "abc1234"\n',
        "g:\n  imageTag: 'abc1234'\n",
        "g:\n  imageTag: abc1234 # plain, and a string to every YAML reader\n",
    ],
)
def test_no_change_when_the_value_already_is_the_tag(text: str) -> None:
    assert set_value(text, "g.imageTag", "abc1234") == ValuesEdit(text=text, previous="abc1234", changed=False)


@pytest.mark.parametrize(
    ("written", "why"),
    [
        ("1e07581", "a float to YAML 1.1 and 1.2 readers (P3)"),
        ("1234567", "an int"),
        ("on", "a bool to YAML 1.1 readers (go-yaml v2)"),
        ("true", "a bool"),
    ],
)
def test_a_plain_value_that_only_looks_like_the_tag_is_rewritten_quoted(written: str, why: str) -> None:
    edit = set_value(f"g:\n  imageTag: {written}\n", "g.imageTag", written)
    assert edit.changed, why
    assert edit.text == f'g:\n  imageTag: "{written}"\n'


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("g:\n  imageTag:\n", None),
        ("g:\n  imageTag: # c\n", None),
        ("g:\n  imageTag: ~\n", None),
        ("g:\n  imageTag: null\n", None),
        ('g:\n  imageTag: "null"\n', "null"),
        ('g:\n  imageTag: ""\n', ""),
        ("g:\n  imageTag: 1e07581\n", "1e07581"),
        ("g:\n  imageTag: 'it''s'\n", "it's"),
    ],
)
def test_read_value(text: str, expected: str | None) -> None:
    assert read_value(text, "g.imageTag") == expected


# --- the tag and key path asked for ------------------------------------------------------------


@pytest.mark.parametrize(
    "tag", ["", "has space", "a:b", '"quoted"', "back\\slash", ".dot-first", "-dash-first", "x" * 129, "é"]
)
def test_an_invalid_tag_is_refused(tag: str) -> None:
    with pytest.raises(InvalidEditRequest, match="not a valid image tag"):
        set_value("g:\n  imageTag: old\n", "g.imageTag", tag)


def test_the_longest_valid_tag_is_accepted() -> None:
    tag = "_" + "x" * 127
    assert read_value(set_value("g:\n  imageTag: old\n", "g.imageTag", tag).text, "g.imageTag") == tag


@pytest.mark.parametrize("key_path", ["", ".", "global.", ".imageTag", "global..imageTag"])
def test_a_malformed_key_path_is_refused(key_path: str) -> None:
    with pytest.raises(InvalidEditRequest, match="not a key path"):
        set_value("global:\n  imageTag: old\n", key_path, "abc1234")


# --- refusals, one test each -------------------------------------------------------------------


def refusal(name_or_text: str, key_path: str = "global.imageTag") -> ValuesFileError:
    """The error set_value *and* read_value raise for a refused file (from refused/ or inline)."""
    path = REFUSED_DIR / name_or_text
    text = read_exact(path) if name_or_text.endswith(".yaml") else name_or_text
    with pytest.raises(ValuesFileError) as from_set:
        set_value(text, key_path, "abc1234")
    with pytest.raises(ValuesFileError) as from_read:
        read_value(text, key_path)
    assert (from_read.value.code, str(from_read.value)) == (from_set.value.code, str(from_set.value))
    return from_set.value


def test_refuses_the_3dd1a81_duplicate_top_level_web_key() -> None:
    error = refusal("seed-3dd1a81-staging-duplicate-web-key.yaml")
    assert error.code == "duplicate_key"
    assert error.line == 113
    assert "'web' at line 113 (first at line 8)" in str(error)
    assert "by hand" in str(error)


def test_refuses_a_duplicate_nested_key_away_from_the_key_path() -> None:
    error = refusal("duplicate-nested-env-array.yaml")
    assert error.code == "duplicate_key"
    assert "'env' at line 13 (first at line 6)" in str(error)


def test_refuses_a_duplicate_key_in_a_list_item() -> None:
    error = refusal("global:\n  imageTag: old\nenv:\n  - name: A\n    value: x\n    name: B\n")
    assert error.code == "duplicate_key"
    assert "'name' at line 6 (first at line 4)" in str(error)


def test_refuses_duplicates_spelled_with_different_quotes_and_lists_them_all() -> None:
    error = refusal("web: 1\n'web': 2\nglobal:\n  imageTag: old\n  \"imageTag\": older\n")
    assert error.code == "duplicate_key"
    assert "'web' at line 2 (first at line 1); 'imageTag' at line 5 (first at line 4)" in str(error)


def test_refuses_a_missing_key() -> None:
    error = refusal("base-values-without-image-tag.yaml")
    assert error.code == "key_missing"
    assert "global.imageTag" in str(error)
    assert "has no key 'imageTag'" in str(error)
    assert "never creates keys" in str(error)


def test_refuses_a_missing_top_level_key() -> None:
    error = refusal("web:\n  replicaCount: 1\n")
    assert error.code == "key_missing"
    assert "the document root (line 1) has no key 'global'" in str(error)


def test_a_key_reached_only_through_a_merge_key_is_missing_and_says_so() -> None:
    error = refusal("base: &b\n  imageTag: old\nglobal:\n  <<: *b\n")
    assert error.code == "key_missing"
    assert "merge key" in str(error)


@pytest.mark.parametrize("text", ["", "# only a comment\n", "---\n"])
def test_refuses_a_file_without_content(text: str) -> None:
    assert refusal(text).code in {"key_missing", "not_a_mapping"}


def test_refuses_a_path_through_a_list() -> None:
    error = refusal("global-is-a-list.yaml")
    assert error.code == "not_a_mapping"
    assert "global (line 1), which is a list" in str(error)


def test_refuses_a_path_through_a_scalar() -> None:
    error = refusal("global-is-a-scalar.yaml")
    assert error.code == "not_a_mapping"
    assert "which is a scalar ('prod')" in str(error)


def test_refuses_a_path_through_an_empty_value() -> None:
    error = refusal("global:\nweb:\n  replicaCount: 1\n")
    assert error.code == "not_a_mapping"
    assert "global (line 1), which is empty (null)" in str(error)


def test_refuses_a_root_that_is_not_a_mapping() -> None:
    error = refusal("- global\n")
    assert error.code == "not_a_mapping"
    assert "the document root" in str(error)


def test_refuses_unparsable_yaml() -> None:
    error = refusal("merge-conflict-markers.yaml")
    assert error.code == "unparsable"
    assert error.line == 3
    assert "not valid YAML at line 3" in str(error)


def test_refuses_characters_yaml_does_not_allow() -> None:
    error = refusal("global:\n  imageTag: old\x00\n")
    assert error.code == "unparsable"


def test_a_tab_before_a_comment_is_refused_by_the_parser() -> None:
    # YAML 1.2 allows it, ruamel.yaml does not: such a file is refused (fail closed), never mangled.
    # If this starts passing after a ruamel.yaml upgrade, update docs/values-edit.md.
    error = refusal("global:\n  imageTag: old\t# set by CI\n")
    assert error.code == "unparsable"


def test_refuses_more_than_one_document() -> None:
    error = refusal("two-documents.yaml")
    assert error.code == "multi_document"
    assert "2 YAML documents" in str(error)
    assert "line 6" in str(error)


def test_refuses_an_alias_value() -> None:
    error = refusal("alias-tag-value.yaml")
    assert error.code == "unsupported_value"
    assert "global.imageTag at line 3 is an alias" in str(error)
    assert 'write a plain string value there, e.g. imageTag: "abc1234"' in str(error)


def test_refuses_a_path_through_an_alias() -> None:
    # Editing through `global: *base` would change the anchored mapping, and every other alias of it.
    error = refusal("base: &base\n  imageTag: old\nglobal: *base\n")
    assert error.code == "unsupported_value"
    assert "global at line 3 is an alias" in str(error)


def test_refuses_a_mapping_value() -> None:
    error = refusal("mapping-tag-value.yaml")
    assert error.code == "unsupported_value"
    assert "is a mapping" in str(error)


def test_refuses_a_list_value() -> None:
    error = refusal("global:\n  imageTag: [old]\n")
    assert error.code == "unsupported_value"
    assert "is a list" in str(error)


def test_refuses_a_block_scalar() -> None:
    error = refusal("block-scalar-tag-value.yaml")
    assert error.code == "unsupported_value"
    assert "block scalar (|)" in str(error)


def test_refuses_a_folded_block_scalar() -> None:
    error = refusal("global:\n  imageTag: >-\n    old\n")
    assert error.code == "unsupported_value"
    assert "block scalar (>)" in str(error)


def test_refuses_an_explicitly_tagged_value() -> None:
    error = refusal("explicitly-tagged-value.yaml")
    assert error.code == "unsupported_value"
    assert "explicit YAML tag" in str(error)


def test_refuses_a_value_written_over_several_lines() -> None:
    error = refusal("global:\n  imageTag: prod-\n    cf3124b\n")
    assert error.code == "unsupported_value"
    assert "several lines" in str(error)


def test_refuses_a_flow_key_without_a_value_indicator() -> None:
    error = refusal("global: {environment: prod, imageTag}\n")
    assert error.code == "unsupported_value"


def test_errors_are_value_errors() -> None:
    assert issubclass(ValuesFileError, ValueError)
    assert issubclass(InvalidEditRequest, ValueError)


# --- generated documents -----------------------------------------------------------------------

KEYS = st.from_regex(r"[a-z][a-zA-Z0-9_]{0,9}", fullmatch=True)
PLAIN = st.from_regex(r"[a-z0-9][a-z0-9._-]{0,14}", fullmatch=True)
# Printable for YAML, single-line, and free of the quote the style would need to escape.
FREE_TEXT = st.text(
    alphabet=st.characters(
        codec="utf-8",
        exclude_categories=("Cc", "Cs", "Cn", "Zl", "Zp"),
        exclude_characters="\ufeff\\\"'",
    ),
    max_size=12,
)
TAGS = st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,40}", fullmatch=True)


@dataclass(frozen=True)
class Generated:
    text: str
    key_path: str
    written: str
    previous: str | None


@st.composite
def target_values(draw: st.DrawFn) -> tuple[str, str | None]:
    """(the value's characters as written, what read_value reports)."""
    style = draw(st.sampled_from(["plain", "single", "double", "empty-string", "absent"]))
    if style == "plain":
        written = draw(PLAIN)
        return written, None if written == "null" else written
    if style == "single":
        text = draw(FREE_TEXT)
        return f"'{text}'", text
    if style == "double":
        text = draw(FREE_TEXT)
        return f'"{text}"', text
    if style == "empty-string":
        return '""', ""
    return "", None


@st.composite
def other_scalars(draw: st.DrawFn) -> str:
    style = draw(st.sampled_from(["plain", "single", "double"]))
    if style == "plain":
        return draw(PLAIN)
    quote = "'" if style == "single" else '"'
    return f"{quote}{draw(FREE_TEXT)}{quote}"


def comment(draw: st.DrawFn) -> str:
    return draw(st.sampled_from([" ", "   "])) + "# " + draw(FREE_TEXT)


@st.composite
def values_documents(draw: st.DrawFn, duplicate: bool = False) -> Generated:  # noqa: PLR0915 - a Hypothesis strategy drawing each variation of a values file in turn
    """A one-document values file with a mapping at every step of a random key path.

    Varies indentation, line ends, final newline, BOM, `---`, comments (full-line and inline),
    blank lines, quoting styles, anchors, lists and flow mappings around the target. With
    ``duplicate``, one block mapping somewhere on the way repeats one of its keys.
    """
    unit = draw(st.sampled_from([2, 3, 4]))
    newline = draw(st.sampled_from(["\n", "\r\n"]))
    path = draw(st.lists(KEYS, min_size=1, max_size=3, unique=True))
    written, previous = draw(target_values())
    flow_parent = len(path) >= 2 and draw(st.booleans())
    block_depths = len(path) - 1 if flow_parent else len(path)
    duplicate_depth = draw(st.integers(0, block_depths - 1)) if duplicate else -1

    def target_line(pad: str, key: str) -> str:
        anchor = draw(st.sampled_from(["", " &anchored"]))
        value = f" {written}" if written else ""
        tail = comment(draw) if draw(st.booleans()) else draw(st.sampled_from(["", "  "]))
        return f"{pad}{key}:{anchor}{value}{tail}"

    def flow_line(pad: str, key: str, target_key: str) -> str:
        siblings = draw(st.lists(KEYS.filter(lambda k: k != target_key), max_size=3, unique=True))
        items = [f"{sibling}: {draw(PLAIN)}" for sibling in siblings]
        # An absent value in flow style is `key: ` followed by `,` or `}`.
        items.insert(draw(st.integers(0, len(items))), f"{target_key}: {written}")
        tail = comment(draw) if draw(st.booleans()) else ""
        return f"{pad}{key}: {{{', '.join(items)}}}{tail}"

    def sibling_lines(pad: str, inner: str, key: str) -> list[str]:
        shape = draw(st.sampled_from(["scalar", "scalar", "mapping", "list", "indentless-list", "empty"]))
        if shape == "scalar":
            tail = comment(draw) if draw(st.booleans()) else ""
            return [f"{pad}{key}: {draw(other_scalars())}{tail}"]
        if shape == "empty":
            return [f"{pad}{key}:"]
        items = draw(st.lists(other_scalars(), min_size=1, max_size=3))
        if shape == "mapping":
            return [f"{pad}{key}:"] + [f"{inner}k{index}: {item}" for index, item in enumerate(items)]
        item_pad = inner if shape == "list" else pad
        return [f"{pad}{key}:"] + [f"{item_pad}- {item}" for item in items]

    def block_mapping(depth: int) -> list[str]:
        pad, inner = " " * (unit * depth), " " * (unit * (depth + 1))
        key = path[depth]
        siblings = draw(st.lists(KEYS.filter(lambda k: k != key), max_size=3, unique=True))
        keys = list(siblings)
        keys.insert(draw(st.integers(0, len(keys))), key)
        if depth == duplicate_depth:
            keys.append(draw(st.sampled_from(keys)))
        lines: list[str] = []
        path_rendered = False
        for entry in keys:
            if draw(st.booleans()):
                lines.append(draw(st.sampled_from(["", pad + "#" + draw(FREE_TEXT)])))
            if entry != key or path_rendered:  # a sibling, or the path key repeated (duplicate case)
                lines.extend(sibling_lines(pad, inner, entry))
            elif depth == len(path) - 1:
                lines.append(target_line(pad, key))
            elif flow_parent and depth == len(path) - 2:
                lines.append(flow_line(pad, key, path[-1]))
            else:
                lines.append(f"{pad}{key}:")
                lines.extend(block_mapping(depth + 1))
            path_rendered = path_rendered or entry == key
        return lines

    lines: list[str] = []
    if draw(st.booleans()):
        lines.append("# " + draw(FREE_TEXT))
    if draw(st.booleans()):
        lines.append("---")
    lines.extend(block_mapping(0))
    text = draw(st.sampled_from(["", "\ufeff"])) + newline.join(lines)
    if draw(st.booleans()):
        text += newline
    return Generated(text=text, key_path=".".join(path), written=written, previous=previous)


# no_cover: its many repetitions walk paths the other tests cover; tracing them triples its time (docs/development.md)
@pytest.mark.no_cover
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(document=values_documents(), tag=TAGS)
def test_generated_documents_change_in_exactly_the_one_value(document: Generated, tag: str) -> None:
    assert read_value(document.text, document.key_path) == document.previous

    edit = set_value(document.text, document.key_path, tag)

    assert edit.previous == document.previous
    if not edit.changed:
        assert (edit.text, document.previous) == (document.text, tag)
        return
    assert_only_value_changed(document.text, edit.text, document.written, tag)
    assert read_value(edit.text, document.key_path) == tag
    again = set_value(edit.text, document.key_path, tag)
    assert (again.changed, again.text) == (False, edit.text)


# no_cover: its many repetitions walk paths the other tests cover; tracing them triples its time (docs/development.md)
@pytest.mark.no_cover
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(document=values_documents(duplicate=True), tag=TAGS)
def test_generated_documents_with_a_duplicate_key_anywhere_are_refused(document: Generated, tag: str) -> None:
    with pytest.raises(ValuesFileError) as refused:
        set_value(document.text, document.key_path, tag)
    assert refused.value.code == "duplicate_key"
