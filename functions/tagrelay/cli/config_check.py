"""`tagrelay config check`: every validation a configuration gets, without deploying or contacting AWS."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from tagrelay.cli.common import add_config_option, add_output_option, new_parser, print_json
from tagrelay.config import CONFIG_ENV_VAR, Config, ConfigError, load_config

DESCRIPTION = f"""\
Validate a configuration file the way every part of tagrelay will use it, and list every problem:

- the schema: every field, its type and its rules (what the functions and the commands check when they
  load the file);
- the deploy-time checks `cdk synth` runs: a log retention CloudWatch accepts, ECR registries the stack
  can subscribe to, files it names (keys, trusted roots, CA bundles) that exist and can be packaged,
  and repositories in another account or region than deploy.account/region (a warning);
- what the functions check at cold start: each app's signature policy can be built (PEM keys and
  trusted roots parse).

Nothing is written and nothing is contacted (no AWS, GitHub or registry request). Relative file paths
are checked against the current directory, as `cdk synth` does: run it where you run `cdk`.

Exit status: 0 valid (warnings are listed), 1 invalid, 2 usage error. The file is --config or
${CONFIG_ENV_VAR}.
"""

EXAMPLE = """\
  tagrelay config check --config examples/mosaic-life.yaml
  tagrelay config check -o json | jq -r '.errors[]'
"""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    config_parser = subparsers.add_parser(
        "config",
        help="check a configuration file",
        description="Commands about the configuration file. Run 'tagrelay config check --help'.",
    )
    commands = config_parser.add_subparsers(title="commands", metavar="COMMAND", required=True)
    parser = new_parser(
        commands,
        "check",
        summary="validate a configuration file: schema, deploy-time and cold-start checks",
        description=DESCRIPTION,
        example=EXAMPLE,
    )
    add_config_option(parser)
    add_output_option(parser)
    parser.set_defaults(handler=run)


def check(path: str | None) -> dict[str, Any]:
    """The report of one file: {file, valid, errors, warnings, summary}."""
    from tagrelay.deployment import check_deployment

    file = path or os.environ.get(CONFIG_ENV_VAR)
    result: dict[str, Any] = {"file": file, "valid": False, "errors": [], "warnings": [], "summary": None}
    try:
        config = load_config(path)
    except ConfigError as exc:
        result["errors"] = [line.strip() for line in str(exc).splitlines() if line.strip()]
        return result
    report = check_deployment(config)
    result["errors"] = [*report.errors, *_cold_start_problems(config)]
    result["warnings"] = report.warnings
    result["valid"] = not result["errors"]
    result["summary"] = _summary(config)
    return result


def _cold_start_problems(config: Config) -> list[str]:
    """What the functions would refuse when they build their services: signature policies whose keys
    or trusted roots do not parse. Files that are missing are reported by the deploy-time checks."""
    from tagrelay import runtime
    from tagrelay.deployment import referenced_files

    missing = {value for _, value in referenced_files(config) if not Path(value).is_file()}
    problems = []
    for name, app in config.apps.items():
        if app.signature == "none":
            continue
        named = {app.signature.key.public_key_file if app.signature.key else None}
        named.add(app.signature.keyless.trusted_root if app.signature.keyless else None)
        if named & missing:
            continue
        try:
            runtime.verifier(config, app)
        except Exception as exc:  # any failure here is a configuration the function could not start with
            problems.append(f"apps.{name}.signature: {exc}")
    return problems


def _summary(config: Config) -> str:
    apps = ", ".join(
        f"{name} ({len(app.images)} images, environments {', '.join(app.environments)}, signature "
        f"{'none' if app.signature == 'none' else 'keyless' if app.signature.keyless else 'key'})"
        for name, app in config.apps.items()
    )
    return f"stack {config.deploy.stack_name}; apps: {apps}"


def run(args: argparse.Namespace) -> int:
    result = check(args.config)
    if args.output == "json":
        print_json(result)
    else:
        status = "valid" if result["valid"] else "INVALID"
        print(f"{result['file'] or '(no file)'}: {status}")
        if result["summary"]:
            print(f"  {result['summary']}")
        for error in result["errors"]:
            print(f"  error: {error}")
        for warning in result["warnings"]:
            print(f"  warning: {warning}")
    return 0 if result["valid"] else 1
