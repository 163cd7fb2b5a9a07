"""Entry point of the ``tagrelay`` command.

Each subcommand lives in its own module with a ``register(subparsers)`` function that adds its parser
and sets ``handler`` to a function ``(args) -> int`` returning the exit code. Refusals raise
``CommandError``: the message goes to stderr and the exit code is non-zero.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from tagrelay.cli.common import CommandError

# Subcommand modules, in the order --help lists them.
COMMAND_MODULES = (
    "tagrelay.cli.explain",
    "tagrelay.cli.set_tag",
    "tagrelay.cli.history",
    "tagrelay.cli.status",
    "tagrelay.cli.verify",
    "tagrelay.cli.trust_root",
    "tagrelay.cli.deploy",
    "tagrelay.cli.rollback",
    "tagrelay.cli.pin",
    "tagrelay.cli.dora",
)

DESCRIPTION = """\
tagrelay promotes SHA-tagged, signed container images from Amazon ECR into a GitOps repository
and records how each deployment went.

Run 'tagrelay COMMAND --help' for the details and an example of each command.
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tagrelay", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args))
    except CommandError as exc:
        print(f"tagrelay: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("tagrelay: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
