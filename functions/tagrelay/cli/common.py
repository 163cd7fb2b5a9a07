"""What every subcommand shares: the error type, --config/--output options, and JSON printing."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from tagrelay.config import CONFIG_ENV_VAR, Config, ConfigError, load_config


class CommandError(Exception):
    """A refusal: printed to stderr as 'tagrelay: <message>', exit code non-zero."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def add_config_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        metavar="FILE",
        help=f"configuration file (default: ${CONFIG_ENV_VAR})",
    )


def add_output_option(parser: argparse.ArgumentParser, choices: tuple[str, ...] = ("text", "json")) -> None:
    parser.add_argument(
        "--output", "-o", choices=choices, default=choices[0], help=f"output format (default: {choices[0]})"
    )


def load_config_or_fail(path: str | None) -> Config:
    try:
        return load_config(path)
    except ConfigError as exc:
        raise CommandError(str(exc), exit_code=2) from None


def print_json(data: Any) -> None:
    json.dump(data, sys.stdout, indent=2, sort_keys=False, default=str)
    sys.stdout.write("\n")


def new_parser(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
    name: str,
    *,
    summary: str,
    description: str,
    example: str,
) -> argparse.ArgumentParser:
    """A subcommand parser whose --help shows the description and a worked example."""
    return subparsers.add_parser(
        name,
        help=summary,
        description=description,
        epilog=f"example:\n{example}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
