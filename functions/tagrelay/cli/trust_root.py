"""`tagrelay trust-root`: show a Sigstore trusted root, or refresh the pinned one through TUF."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from tagrelay.cli.common import CommandError, add_output_option, new_parser, print_json

DESCRIPTION = """\
Keyless verification trusts the Fulcio CAs, Rekor logs and CT logs of a Sigstore trusted root
(trusted_root.json). tagrelay ships the public-good root pinned in the package
(tagrelay/adapters/signatures/trust/public-good/), so that verification never needs the network;
an app may name its own with signature.keyless.trusted_root.

  show      what a trusted root contains (default: the pinned public-good root)
  refresh   update the pinned public-good root through Sigstore's TUF repository, starting from the
            pinned TUF root.json, then review and commit the change (it ships with the next deploy)
"""

EXAMPLE = """\
  tagrelay trust-root show
  tagrelay trust-root show --file sigstore/trusted_root.json -o json
  tagrelay trust-root refresh
  tagrelay trust-root refresh --tuf-url https://tuf-repo-cdn.sigstore.dev --dir functions/tagrelay/adapters/signatures/trust/public-good
"""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from tagrelay.runtime import public_good_trust

    PUBLIC_GOOD_TRUSTED_ROOT, PUBLIC_GOOD_TUF_URL = public_good_trust()  # noqa: N806 - constants, as named there

    parser = new_parser(
        subparsers,
        "trust-root",
        summary="show the Sigstore trusted root, or refresh the pinned one through TUF",
        description=DESCRIPTION,
        example=EXAMPLE,
    )
    actions = parser.add_subparsers(title="actions", metavar="ACTION", required=True)
    show = actions.add_parser("show", help="what a trusted root contains")
    show.add_argument("--file", type=Path, default=PUBLIC_GOOD_TRUSTED_ROOT, help="a trusted_root.json")
    add_output_option(show)
    show.set_defaults(handler=run_show)
    refresh = actions.add_parser("refresh", help="update the pinned trusted root through TUF")
    refresh.add_argument(
        "--tuf-url", default=PUBLIC_GOOD_TUF_URL, help=f"TUF repository (default {PUBLIC_GOOD_TUF_URL})"
    )
    refresh.add_argument(
        "--dir",
        type=Path,
        default=PUBLIC_GOOD_TRUSTED_ROOT.parent,
        help="directory holding trusted_root.json and the TUF root.json (default: the pinned public-good copy)",
    )
    refresh.add_argument("--bootstrap-root", type=Path, help="TUF root.json to start from (default: DIR/root.json)")
    add_output_option(refresh)
    refresh.set_defaults(handler=run_refresh)


def run_show(args: argparse.Namespace) -> int:
    from tagrelay.errors import MisconfiguredError
    from tagrelay.runtime import read_trusted_root

    try:
        root = read_trusted_root(args.file)
    except OSError as exc:
        raise CommandError(f"{args.file}: cannot read it ({exc.strerror})", exit_code=2) from None
    except MisconfiguredError as exc:
        raise CommandError(str(exc), exit_code=2) from None
    summary = _summary(root)
    if args.output == "json":
        print_json(summary)
    else:
        _print_summary(str(args.file), summary)
    return 0


def run_refresh(args: argparse.Namespace) -> int:
    from tagrelay.errors import MisconfiguredError, RefreshError
    from tagrelay.runtime import refresh_trusted_root

    try:
        result = refresh_trusted_root(tuf_url=args.tuf_url, directory=args.dir, bootstrap_root=args.bootstrap_root)
    except (RefreshError, MisconfiguredError) as exc:
        raise CommandError(f"trusted root not refreshed: {exc}") from None
    summary = {
        "trusted_root": str(result.trusted_root),
        "changed": result.changed,
        "tuf_root_version": result.tuf_root_version,
        **_summary(result.root),
    }
    if args.output == "json":
        print_json(summary)
    else:
        state = "updated" if result.changed else "unchanged"
        print(f"{result.trusted_root}: {state} (TUF root version {result.tuf_root_version}, from {args.tuf_url})")
        _print_summary(str(result.trusted_root), summary)
    return 0


def _summary(root: Any) -> dict[str, Any]:
    return {
        "certificate_authorities": [
            {
                "uri": ca.uri,
                "subject": ca.certificates[-1].subject.rfc4514_string(),
                "certificates": len(ca.certificates),
                "valid": ca.validity.describe(),
            }
            for ca in root.certificate_authorities
        ],
        "tlogs": [
            {"url": log.url, "key_id": log.key_id.hex(), "valid": log.validity.describe()}
            for log in root.tlogs.values()
        ],
        "ctlogs": [
            {"url": log.url, "key_id": log.key_id.hex(), "valid": log.validity.describe()}
            for log in root.ctlogs.values()
        ],
    }


def _print_summary(source: str, summary: dict[str, Any]) -> None:
    print(f"trusted root {source}")
    for ca in summary["certificate_authorities"]:
        print(f"  Fulcio CA  {ca['uri']}  {ca['subject']}  ({ca['certificates']} certificates) valid {ca['valid']}")
    for log in summary["tlogs"]:
        print(f"  Rekor      {log['url']}  {log['key_id'][:16]}…  valid {log['valid']}")
    for log in summary["ctlogs"]:
        print(f"  CT log     {log['url']}  {log['key_id'][:16]}…  valid {log['valid']}")
