"""Entry point of the ``tagrelay`` command.

Each subcommand lives in its own module with a ``register(subparsers)`` function that adds its parser
and sets ``handler`` to a function ``(args) -> int`` returning the exit code. Refusals raise
``CommandError``: the message goes to stderr and the exit code is non-zero.

No traceback reaches a user. Whatever a command did not turn into a CommandError is translated here:
a closed pipe (`tagrelay history | head -1`) ends quietly, a missing AWS region or credentials and an
unreachable service get a sentence that says what to do, and anything else is reported as an internal
error in one line (set TAGRELAY_DEBUG=1 for the traceback). Under ``--output json`` the error is also
printed to stdout as ``{"error": {"message": ..., "exit_code": ...}}``, so that a script reading JSON
always gets JSON.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

from tagrelay.cli.common import NO_REGION, CommandError

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
    "tagrelay.cli.watch",
    "tagrelay.cli.pin",
    "tagrelay.cli.dora",
    "tagrelay.cli.config_check",
)
DEBUG_ENV_VAR = "TAGRELAY_DEBUG"
# Exit status: a usage or configuration error (argparse's own), an outside system that could not be
# reached, an unexpected failure (sysexits' EX_SOFTWARE), a signal (128 + SIGINT/SIGPIPE).
EXIT_USAGE = 2
EXIT_UNREACHABLE = 1
EXIT_INTERNAL = 70
EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 141

DESCRIPTION = """\
tagrelay promotes SHA-tagged, signed container images from Amazon ECR into a GitOps repository
and records how each deployment went.

Run 'tagrelay COMMAND --help' for the details and an example of each command.
"""


class _Parser(argparse.ArgumentParser):
    """Usage errors become CommandErrors, so that they are reported like every other error."""

    def error(self, message: str) -> NoReturn:
        command = self.prog.removeprefix("tagrelay").strip()
        raise CommandError(
            f"{command + ': ' if command else ''}{message}\n{self.format_usage().strip()}", exit_code=EXIT_USAGE
        )


def version() -> str:
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed_version

    try:
        return installed_version("tagrelay")
    except PackageNotFoundError:  # run from a source tree without being installed
        return "unknown (not installed)"


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="tagrelay", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"tagrelay {version()}")
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND", required=True, parser_class=_Parser)
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    try:
        args = build_parser().parse_args(arguments)
        use_region_from_environment()
        code = int(args.handler(args))
        sys.stdout.flush()  # a closed pipe shows here, inside the handling below, not at interpreter exit
        return code
    except CommandError as exc:
        return _fail(str(exc), exc.exit_code, arguments)
    except KeyboardInterrupt:
        print("tagrelay: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away (`| head`): nothing more can be printed; Python must not complain at exit.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    except Exception as exc:
        message, code = describe_failure(exc)
        if os.environ.get(DEBUG_ENV_VAR):
            raise
        return _fail(message, code, arguments)


def use_region_from_environment() -> None:
    """boto3 reads AWS_DEFAULT_REGION (or the profile's region) but not AWS_REGION, which is what most
    people set (and what Lambda sets); accept either."""
    if not os.environ.get("AWS_DEFAULT_REGION") and os.environ.get("AWS_REGION"):
        os.environ["AWS_DEFAULT_REGION"] = os.environ["AWS_REGION"]


def describe_failure(exc: Exception) -> tuple[str, int]:
    """A sentence for a failure no command turned into a CommandError, and the exit status."""
    from botocore.exceptions import (
        ConnectTimeoutError,
        EndpointConnectionError,
        NoCredentialsError,
        NoRegionError,
        ReadTimeoutError,
    )
    from requests.exceptions import ConnectionError as RequestsConnectionError
    from requests.exceptions import Timeout as RequestsTimeout

    if isinstance(exc, NoRegionError):
        return NO_REGION, EXIT_USAGE
    if isinstance(exc, NoCredentialsError):
        return "no AWS credentials: log in (aws sso login, or set AWS_PROFILE) and run the command again", EXIT_USAGE
    if isinstance(exc, EndpointConnectionError | ConnectTimeoutError | ReadTimeoutError):
        return f"could not reach AWS: {exc}; check the network and the region", EXIT_UNREACHABLE
    if isinstance(exc, RequestsConnectionError | RequestsTimeout):
        request = getattr(exc, "request", None)
        where = getattr(request, "url", None) or "the service"
        return f"could not reach {where}: {type(exc).__name__}; check the URL and the network", EXIT_UNREACHABLE
    return (
        f"internal error ({type(exc).__name__}: {exc}); please report it. Set {DEBUG_ENV_VAR}=1 to see the traceback",
        EXIT_INTERNAL,
    )


def _fail(message: str, exit_code: int, arguments: Sequence[str]) -> int:
    if _wants_json(arguments):
        try:
            json.dump({"error": {"message": message, "exit_code": exit_code}}, sys.stdout, indent=2)
            sys.stdout.write("\n")
            sys.stdout.flush()
        except BrokenPipeError:
            pass
    print(f"tagrelay: {message}", file=sys.stderr)
    return exit_code


def _wants_json(arguments: Sequence[str]) -> bool:
    """Whether the command line asks for JSON output (read from the words, as the parse may have failed)."""
    for index, word in enumerate(arguments):
        if word in ("--output=json", "-ojson"):
            return True
        if word in ("--output", "-o") and index + 1 < len(arguments) and arguments[index + 1] == "json":
            return True
    return False


if __name__ == "__main__":
    sys.exit(main())
