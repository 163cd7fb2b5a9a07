"""`tagrelay set-tag FILE --tag TAG`: the promoter's byte-exact values edit, on a local file.

It replaces the seed's `just gitops-update-tag`, whose `yq -yi` stripped comments and quotes from
prod values (incident P3). Same edit, same refusals as the promoter: see docs/values-edit.md.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import stat
import tempfile
from pathlib import Path

from tagrelay.cli.common import CommandError, new_parser
from tagrelay.domain.values_patch import InvalidEditRequest, ValuesFileError, set_value

DEFAULT_KEY = "global.imageTag"

DESCRIPTION = f"""\
Set the image tag in a local values file, changing nothing else: the value at the key path becomes
"TAG" (double-quoted), and every other byte of the file (comments, quotes, blank lines, key order,
indentation, CRLF line ends, a missing final newline, a byte order mark) stays as it was. This is
the edit the promoter makes through the GitHub API, for a local clone of the GitOps repository.

The file is refused, and left untouched, when it is not UTF-8, does not parse, holds more than one
YAML document, has a duplicate key anywhere, lacks the key path, or holds something other than a
plain value there (a mapping, list, alias, block scalar or tagged value). tagrelay never repairs a
file: the message says what to fix by hand. An invalid image tag is refused too.

The file is replaced atomically (a temporary file in the same directory, then rename) and keeps its
permissions. When the value already is TAG, the file is not written at all.

Exit status: 0 when the tag is set or already was; 1 when the file is refused or cannot be read or
written; 2 when the tag or the key path is invalid. The key path defaults to {DEFAULT_KEY}.
"""

EXAMPLE = """\
  $ tagrelay set-tag environments/prod/values.yaml --tag prod-cf3124b
  environments/prod/values.yaml: global.imageTag "prod-545ef16" -> "prod-cf3124b"
  $ tagrelay set-tag environments/prod/docs-values.yaml --key image.tag --tag prod-cf3124b
"""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = new_parser(
        subparsers,
        "set-tag",
        summary="set the image tag in a local values file, changing nothing else",
        description=DESCRIPTION,
        example=EXAMPLE,
    )
    parser.add_argument("file", metavar="FILE", help="the values file, e.g. environments/prod/values.yaml")
    parser.add_argument("--tag", required=True, help="the image tag to write, e.g. prod-cf3124b")
    parser.add_argument(
        "--key", default=DEFAULT_KEY, metavar="KEY_PATH", help=f"dotted key path of the tag (default: {DEFAULT_KEY})"
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    shown = args.file
    # Edit the file a symlink points to, and keep the link itself.
    path = Path(os.path.realpath(args.file))
    original = _read_bytes(path, shown)
    try:
        text = original.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CommandError(
            f"{shown}: not UTF-8 (byte 0x{original[exc.start]:02x} at offset {exc.start}); "
            "tagrelay edits UTF-8 values files only. Nothing was changed."
        ) from None

    try:
        edit = set_value(text, args.key, args.tag)
    except InvalidEditRequest as exc:
        raise CommandError(f"{exc} Nothing was changed.", exit_code=2) from None
    except ValuesFileError as exc:
        raise CommandError(f"{shown}: {exc} Nothing was changed.") from None

    if not edit.changed:
        print(f"{shown}: {args.key} already {_shown_value(edit.previous)}; nothing to do")
        return 0
    _replace_atomically(path, edit.text.encode("utf-8"), shown)
    print(f"{shown}: {args.key} {_shown_value(edit.previous)} -> {_shown_value(args.tag)}")
    return 0


def _shown_value(value: str | None) -> str:
    return "(no value)" if value is None else json.dumps(value, ensure_ascii=False)


def _read_bytes(path: Path, shown: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise CommandError(f"{shown}: cannot read the file ({exc.strerror})") from None


def _replace_atomically(path: Path, data: bytes, shown: str) -> None:
    """Write a sibling temporary file, then rename it over ``path``: readers never see half a file."""
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
        descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise CommandError(f"{shown}: cannot write next to the file ({exc.strerror}). Nothing was changed.") from None
    try:
        with os.fdopen(descriptor, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(temporary, mode)  # mkstemp creates 0600; keep the file's own permissions
        os.replace(temporary, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise CommandError(f"{shown}: cannot write the file ({exc.strerror}). Nothing was changed.") from None
