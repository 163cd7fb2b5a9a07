"""What every subcommand shares: the error type, --config/--output options, and JSON printing."""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from tagrelay.config import CONFIG_ENV_VAR, Config, ConfigError, load_config

if TYPE_CHECKING:
    from github.Auth import Auth

    from tagrelay.ports import DeploymentLedger


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
        config = load_config(path)
    except ConfigError as exc:
        raise CommandError(str(exc), exit_code=2) from None
    use_deploy_region(config)
    return config


def use_deploy_region(config: Config) -> None:
    """The AWS region, when neither the environment nor the profile names one: the stack's (deploy.region),
    where the ledger table and the functions are. AWS_REGION is accepted too (cli/main.py)."""
    if config.deploy.region and not os.environ.get("AWS_DEFAULT_REGION"):
        import boto3

        if not boto3.Session().region_name:
            os.environ["AWS_DEFAULT_REGION"] = config.deploy.region


NO_REGION = (
    "no AWS region: set AWS_REGION (or AWS_DEFAULT_REGION), give your profile a region (aws configure), "
    "or set deploy.region in the configuration"
)


def require_aws_region() -> str:
    """The region boto3 will use; a usage error (exit 2) when there is none, before any client fails on it."""
    import boto3

    region = boto3.Session().region_name
    if not region:
        raise CommandError(NO_REGION, exit_code=2)
    return region


def ledger_for(config: Config) -> DeploymentLedger:
    """The ledger table of the configuration, read with the caller's AWS credentials."""
    from tagrelay import runtime

    require_aws_region()
    return runtime.ledger(config)


_HEX_DIGEST = re.compile(r"[0-9a-f]{64}")


def digests_once(text: str) -> str:
    """Each 64-hex digest in full where it first appears, then shortened (``42e10760dc43…``): refusals
    name an image's digest, its signature tag and the key's fingerprint, often for several images."""
    seen: set[str] = set()

    def shorten(match: re.Match[str]) -> str:
        digest = match[0]
        if digest in seen:
            return f"{digest[:12]}…"
        seen.add(digest)
        return digest

    return _HEX_DIGEST.sub(shorten, text)


GITHUB_TOKEN_ENV_VARS = ("GITHUB_TOKEN", "GH_TOKEN")
GH_TIMEOUT_SECONDS = 10


def github_read_credentials(config: Config, command: str) -> Callable[[], Auth]:
    """A read-only GitHub credential for the read commands: never tagrelay's write credential (github.auth),
    which stays with the promoter. In order: $GITHUB_TOKEN (or $GH_TOKEN), `gh auth token` for the
    configured host, then the Secrets Manager secret github.read_token_secret (read with the caller's AWS
    credentials). None of them: a usage error that says how to provide one. Resolved when GitHub is first
    used, so that what needs no GitHub (an ignored event) needs no credential either."""

    def make() -> Auth:
        from github import Auth

        token = next((os.environ[name] for name in GITHUB_TOKEN_ENV_VARS if os.environ.get(name)), None)
        token = token or _gh_auth_token(config.github.base_url)
        if token is not None:
            return Auth.Token(token)
        secret = config.github.read_token_secret
        if secret is None:
            raise CommandError(
                f"{command} reads GitHub with a read-only credential, and there is none: set GITHUB_TOKEN (or "
                "log in with `gh auth login`), or set github.read_token_secret to a Secrets Manager secret "
                "holding a read-only token (docs/configuration.md). tagrelay's write credential (github.auth) "
                "is the promoter's only.",
                exit_code=2,
            )
        from tagrelay import runtime

        return Auth.Token(runtime.secret(secret).strip())

    return make


def _gh_auth_token(base_url: str) -> str | None:
    """The GitHub CLI's token for the API host, when `gh` is installed and logged in."""
    import shutil
    import subprocess
    from urllib.parse import urlparse

    gh = shutil.which("gh")
    if gh is None:
        return None
    host = urlparse(base_url).hostname or "github.com"
    host = "github.com" if host == "api.github.com" else host
    try:
        result = subprocess.run(
            [gh, "auth", "token", "--hostname", host],
            capture_output=True,
            text=True,
            timeout=GH_TIMEOUT_SECONDS,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    token = result.stdout.strip()
    return token if result.returncode == 0 and token else None


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
