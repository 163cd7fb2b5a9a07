"""`tagrelay set-tag FILE --tag TAG`: the promoter's byte-exact GitOps edit, on a local file.

It replaces the seed's `just gitops-update-tag`, whose `yq -yi` stripped comments and quotes from
prod values (incident P3). Same edit, same refusals as the promoter (a Helm values key, a digest key,
or a kustomization's images: entry): see docs/formats.md and docs/values-edit.md.
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
from tagrelay.domain.gitops_format import GitOpsFormat, HelmValues, Kustomize
from tagrelay.domain.tags import is_digest
from tagrelay.domain.values_patch import InvalidEditRequest, ValuesFileError

DEFAULT_KEY = "global.imageTag"
_IMAGE = "image"  # the one image a Helm edit on the command line is about

DESCRIPTION = f"""\
Set the image tag in a local GitOps file, changing nothing else: the value becomes "TAG" (always
double-quoted), and every other byte of the file (comments, quotes, blank lines, key order,
indentation, CRLF line ends, a missing final newline, a byte order mark) stays as it was. This is
the edit the promoter makes through the GitHub API, for a local clone of the GitOps repository.

Helm values (the default): the value at --key (default {DEFAULT_KEY}); with --digest-key K and
--digest sha256:<64 hex>, the digest at K as well. Kustomize (--format kustomize): the newTag of the
images: entry whose name is --image NAME, and its digest with --digest. A newTag or digest field
missing from that entry is added at the entry's indentation; an entry is never created.

The file is refused, and left untouched, when it is not UTF-8, does not parse, holds more than one
YAML document, has a duplicate key anywhere, lacks the key path (or the images: entry), lists an
image name twice, or holds something other than a plain value there (a mapping, list, alias, block
scalar or tagged value). tagrelay never repairs a file: the message says what to fix by hand. An
invalid image tag or digest is refused too.

The file is replaced atomically (a temporary file in the same directory, then rename) and keeps its
permissions. When the values already are the ones asked for, the file is not written at all.

Exit status: 0 when the values are set or already were; 1 when the file is refused or cannot be read
or written; 2 when the tag, digest, key path or option combination is invalid.
"""

EXAMPLE = """\
  $ tagrelay set-tag environments/prod/values.yaml --tag prod-cf3124b
  environments/prod/values.yaml: global.imageTag "prod-545ef16" -> "prod-cf3124b"
  $ tagrelay set-tag environments/prod/values.yaml --key web.image.tag --tag prod-cf3124b \\
        --digest-key web.image.digest --digest sha256:3f3f...3f
  $ tagrelay set-tag environments/prod/kustomization.yaml --format kustomize \\
        --image 123456789012.dkr.ecr.eu-west-1.amazonaws.com/mosaic-life/web --tag prod-cf3124b
"""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = new_parser(
        subparsers,
        "set-tag",
        summary="set the image tag (and digest) in a local values file or kustomization, changing nothing else",
        description=DESCRIPTION,
        example=EXAMPLE,
    )
    parser.add_argument("file", metavar="FILE", help="the file, e.g. environments/prod/values.yaml")
    parser.add_argument("--tag", required=True, help="the image tag to write, e.g. prod-cf3124b")
    parser.add_argument(
        "--format", choices=("helm", "kustomize"), default="helm", help="the file's format (default: helm)"
    )
    parser.add_argument(
        "--key", default=None, metavar="KEY_PATH", help=f"helm: dotted key path of the tag (default: {DEFAULT_KEY})"
    )
    parser.add_argument("--digest-key", metavar="KEY_PATH", help="helm: dotted key path of the digest (with --digest)")
    parser.add_argument("--image", metavar="NAME", help="kustomize: the name of the images: entry to edit (required)")
    parser.add_argument("--digest", metavar="sha256:HEX", help="the image digest to write beside the tag")
    parser.set_defaults(handler=run)


def _format(args: argparse.Namespace) -> tuple[GitOpsFormat, dict[str, str]]:
    """The edit the options ask for, and the digests to give it; CommandError (exit 2) for a bad combination."""
    if args.digest is not None and not is_digest(args.digest):
        raise CommandError(f"--digest {args.digest!r} is not a digest: write sha256:<64 lower-case hex digits>.", 2)
    if args.format == "kustomize":
        if args.key is not None or args.digest_key is not None:
            raise CommandError("--key and --digest-key are for Helm values; a kustomization takes --image NAME.", 2)
        if not args.image:
            raise CommandError("--format kustomize needs --image NAME: the name of the images: entry to edit.", 2)
        digests = {args.image: args.digest} if args.digest else {}
        return Kustomize(names={args.image: args.image}, pin=args.digest is not None), digests
    if args.image is not None:
        raise CommandError("--image is for --format kustomize; for Helm values, name the key path with --key.", 2)
    if (args.digest_key is None) != (args.digest is None):
        raise CommandError("--digest-key K and --digest sha256:<64 hex> go together for Helm values.", 2)
    tag_keys = {_IMAGE: args.key or DEFAULT_KEY}
    digest_keys = {_IMAGE: args.digest_key} if args.digest_key else {}
    return HelmValues(tag_keys=tag_keys, digest_keys=digest_keys), ({_IMAGE: args.digest} if args.digest else {})


def run(args: argparse.Namespace) -> int:
    shown = args.file
    gitops_format, digests = _format(args)
    # Edit the file a symlink points to, and keep the link itself.
    path = Path(os.path.realpath(args.file))
    original = _read_bytes(path, shown)
    try:
        text = original.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CommandError(
            f"{shown}: not UTF-8 (byte 0x{original[exc.start]:02x} at offset {exc.start}); "
            "tagrelay edits UTF-8 files only. Nothing was changed."
        ) from None

    try:
        edit = gitops_format.plan(text, args.tag, digests)
    except InvalidEditRequest as exc:
        raise CommandError(f"{exc} Nothing was changed.", exit_code=2) from None
    except ValuesFileError as exc:
        raise CommandError(f"{shown}: {exc} Nothing was changed.") from None

    labels = _labels(args)
    before = {
        **{labels[(image, "tag")]: tag for image, tag in edit.previous.tags.items()},
        **{labels[(image, "digest")]: digest for image, digest in edit.previous.digests.items()},
    }
    after = {label: (args.digest if what == "digest" else args.tag) for (_, what), label in labels.items()}
    if not edit.changed:
        settled = ", ".join(f"{label} already {_shown_value(value)}" for label, value in before.items())
        print(f"{shown}: {settled}; nothing to do")
        return 0
    _replace_atomically(path, edit.text.encode("utf-8"), shown)
    # edit.fields names what was written as the labels do: the key path, or "<image> newTag|digest".
    moves = ", ".join(
        f"{label} {_shown_value(before[label])} -> {_shown_value(after[label])}"
        for label in before
        if label in edit.fields
    )
    print(f"{shown}: {moves}")
    return 0


def _labels(args: argparse.Namespace) -> dict[tuple[str, str], str]:
    """How each written value is named in the output: the key path, or "<image> newTag|digest"."""
    if args.format == "kustomize":
        labels = {(args.image, "tag"): f"{args.image} newTag"}
        if args.digest:
            labels[(args.image, "digest")] = f"{args.image} digest"
        return labels
    labels = {(_IMAGE, "tag"): args.key or DEFAULT_KEY}
    if args.digest_key:
        labels[(_IMAGE, "digest")] = args.digest_key
    return labels


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
