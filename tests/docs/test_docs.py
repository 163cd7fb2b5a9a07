"""The documentation stays true: what README.md and docs/ name must exist, and nothing points outside.

- every relative link (and its #anchor) points at a file (and a heading) of this repository;
- every `tagrelay ...` command the docs name runs `--help`, and docs/cli.md has a section for every
  command the CLI has;
- every configuration key the docs name (`github.read_token_secret`, `apps.<app>.tag_pattern`, and the
  rows of docs/configuration.md's tables) exists in the schema (tagrelay.config);
- nothing in the repository points at documents outside it (the design notes and research the project
  started from): facts are carried into docs/ with their public sources instead.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from tagrelay.cli.main import build_parser, main
from tagrelay.config import REMOVED_SETTINGS, Config

REPO_ROOT = Path(__file__).resolve().parents[2]
DOCS = sorted([REPO_ROOT / "README.md", *(REPO_ROOT / "docs").glob("*.md")])
CLI_DOC = REPO_ROOT / "docs" / "cli.md"
CONFIG_DOC = REPO_ROOT / "docs" / "configuration.md"
_LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")
_CODE_BLOCK = re.compile(r"```.*?```", re.DOTALL)
_COMMAND = re.compile(r"\btagrelay ((?:[a-z][a-z-]*)(?: [a-z][a-z-]*)?)")
_SECTIONS = (
    "apps",
    "github",
    "argocd",
    "ledger",
    "promotion",
    "tracking",
    "deploy",
    "operators",
    "limits",
    "reconcile",
    "notifications",
)
_KEY = re.compile(r"`((?:%s)\.[A-Za-z0-9_.<>*-]+)`" % "|".join(_SECTIONS))  # noqa: UP031 - a regex
# What a document must not point at: the project's own notes outside the repository.
_OUTSIDE = re.compile(
    r"(/work/shared|\.\./shared|\bdesign\.md\b|wire-formats(\.md)?|reference-system(\.md)?|peers\.md"
    r"|reference/local-stack|\breference/)"
)
GITHUB_ACTIONS_CONTEXT = {"sha", "ref", "ref_name", "event_name", "repository", "actor", "workflow", "run_id"}


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"`|\*\*|\[|\]\([^)]*\)", "", heading.strip()).lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(document: Path) -> set[str]:
    text = _CODE_BLOCK.sub("", document.read_text(encoding="utf-8"))
    return {slug(h) for h in re.findall(r"^#{1,6} (.+)$", text, flags=re.MULTILINE)}


def prose(document: Path) -> str:
    return _CODE_BLOCK.sub("", document.read_text(encoding="utf-8"))


def relative_links() -> Iterator[tuple[Path, str]]:
    for document in DOCS:
        for target in _LINK.findall(prose(document)):
            if not re.match(r"^[a-z]+:", target):
                yield document, target


@pytest.mark.parametrize(("document", "target"), list(relative_links()), ids=str)
def test_relative_links_point_at_files_and_headings_that_exist(document: Path, target: str) -> None:
    path, _, anchor = target.partition("#")
    linked = (document.parent / path).resolve() if path else document
    assert linked.exists(), f"{document.name}: {target} does not exist"
    assert REPO_ROOT in linked.parents or linked == REPO_ROOT, f"{document.name}: {target} leaves the repository"
    if anchor and linked.suffix == ".md":
        assert anchor in anchors(linked), f"{document.name}: {linked.name} has no heading #{anchor}"


def cli_commands() -> dict[str, Any]:
    """Every command of the CLI, with subcommands as 'config check': their parsers."""
    import argparse

    def subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
        actions = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        return dict(actions[0].choices) if actions else {}

    commands: dict[str, Any] = {}
    for name, sub in subcommands(build_parser()).items():
        nested = subcommands(sub)
        commands.update({f"{name} {child}": parser for child, parser in nested.items()} if nested else {name: sub})
    return commands


def code(document: Path) -> str:
    """The command lines the document shows: lines of fenced blocks and inline code spans that start
    with `tagrelay` (or `$ tagrelay`); a block's other lines are output, not commands."""
    text = document.read_text(encoding="utf-8")
    lines = [line for block in _CODE_BLOCK.findall(text) for line in block.splitlines()]
    spans = re.findall(r"`([^`\n]+)`", _CODE_BLOCK.sub("", text))
    return "\n".join(c for c in (*lines, *spans) if re.match(r"^\s*(?:\$ )?tagrelay ", c))


def named_commands() -> set[str]:
    known = cli_commands()
    found = set()
    for document in DOCS:
        for match in _COMMAND.findall(code(document)):
            words = match.split()
            name = " ".join(words) if " ".join(words) in known else words[0]
            found.add(name)
    return found


@pytest.mark.parametrize("command", sorted(named_commands()))
def test_every_command_the_docs_name_runs_help(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main([*command.split(), "--help"])
    assert exited.value.code == 0, f"`tagrelay {command}` is named in the docs but is not a command"
    assert "usage: tagrelay" in capsys.readouterr().out


def test_cli_doc_has_a_section_for_every_command() -> None:
    headings = "\n".join(re.findall(r"^## (.+)$", CLI_DOC.read_text(encoding="utf-8"), re.MULTILINE))
    documented = set(re.findall(r"`tagrelay ([a-z-]+(?: [a-z-]+)?)`", headings))
    missing = [command for command in cli_commands() if command not in documented]
    assert missing == [], f"docs/cli.md has no section for: {missing}"
    text = CLI_DOC.read_text(encoding="utf-8")
    assert "TODO" not in text and "engineers add theirs" not in text


# --- configuration keys ---------------------------------------------------------------------------------


def schema_has(path: list[str], model: type[BaseModel] = Config) -> bool:
    """Whether a dotted key path exists in the schema; `<name>` and `*` stand for a key of a mapping."""
    if not path:
        return True
    field = model.model_fields.get(path[0])
    if field is None:
        return False
    return _type_has(path[1:], field.annotation)


def _type_has(rest: list[str], annotation: Any) -> bool:
    if not rest:
        return True
    for option in _options(annotation):
        origin = getattr(option, "__origin__", None)
        if isinstance(option, type) and issubclass(option, BaseModel):
            if schema_has(rest, option):
                return True
        elif origin is dict:
            key = rest[0]
            placeholder = (key.startswith("<") and key.endswith(">")) or key == "*"
            if (placeholder or re.fullmatch(r"[a-z0-9-]+", key)) and _type_has(rest[1:], option.__args__[1]):
                return True
        elif origin is list and _type_has(rest, option.__args__[0]):
            return True
    return False


def _options(annotation: Any) -> list[Any]:
    args = getattr(annotation, "__args__", None)
    if args is not None and getattr(annotation, "__origin__", None) not in (dict, list):
        return [a for arg in args for a in _options(arg)]
    return [annotation]


def documented_keys() -> Iterator[tuple[str, str]]:
    """(document, dotted key) for every key named in backticks, and every row of configuration.md."""
    for document in DOCS:
        for key in _KEY.findall(document.read_text(encoding="utf-8")):
            if key.split(".")[0] == "github" and key.split(".")[1] in GITHUB_ACTIONS_CONTEXT:
                continue  # `github.sha` in a workflow is GitHub Actions' context, not tagrelay's
            yield document.name, key.rstrip(".")
    section = None
    for line in CONFIG_DOC.read_text(encoding="utf-8").splitlines():
        heading = re.match(r"^## `([a-z_.<>]+)`", line)
        if heading:
            section = heading[1]
        elif line.startswith("## "):
            section = None
        row = re.match(r"^\| `([a-z_.<>]+)`", line)
        if section and row:
            for key in re.findall(r"`([a-z_.<>]+)`", line.split("|")[1]):
                full = key if key.split(".")[0] in _SECTIONS else f"{section}.{key}"
                yield CONFIG_DOC.name, full


@pytest.mark.parametrize(("document", "key"), sorted(set(documented_keys())))
def test_every_configuration_key_the_docs_name_exists(document: str, key: str) -> None:
    if document == CONFIG_DOC.name and key in REMOVED_SETTINGS:
        return  # its table of removed settings: what an old file may still have
    assert schema_has(key.split(".")), f"{document} names `{key}`, which the configuration schema does not have"


@pytest.mark.parametrize("key", sorted(REMOVED_SETTINGS))
def test_every_removed_setting_is_documented_and_really_gone(key: str) -> None:
    assert f"`{key}`" in CONFIG_DOC.read_text(encoding="utf-8"), f"configuration.md does not list removed `{key}`"
    assert not schema_has(key.split(".")), f"`{key}` is listed as removed but the schema still has it"


def test_the_key_check_can_fail() -> None:
    assert schema_has(["apps", "<app>", "signature", "keyless", "identity"])
    assert schema_has(["deploy", "tracker_vpc", "subnet_ids"])
    assert not schema_has(["github", "token"])
    assert not schema_has(["apps", "<app>", "signature", "keyless", "idnetity"])


# --- nothing points outside the repository ---------------------------------------------------------------


def tracked_text_files() -> list[Path]:
    listed = subprocess.run(["git", "ls-files"], cwd=REPO_ROOT, capture_output=True, text=True, check=True)
    files = [REPO_ROOT / name for name in listed.stdout.splitlines()]
    return [f for f in files if f.suffix in (".md", ".py", ".yaml", ".yml", ".json", ".cjs", ".toml") and f.is_file()]


def test_nothing_refers_to_documents_outside_the_repository() -> None:
    this_file = Path(__file__).resolve()
    offending = []
    for file in tracked_text_files():
        if file.resolve() == this_file or "testdata" in file.parts:
            continue
        for number, line in enumerate(file.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
            if _OUTSIDE.search(line):
                offending.append(f"{file.relative_to(REPO_ROOT)}:{number}: {line.strip()[:120]}")
    assert offending == [], "\n".join(offending)
