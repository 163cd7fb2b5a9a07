"""`tagrelay explain EVENT_FILE`: run the whole promotion evaluation for an event, writing nothing."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from tagrelay.cli.common import (
    CommandError,
    add_config_option,
    add_output_option,
    github_read_credentials,
    load_config_or_fail,
    new_parser,
    print_json,
)

DESCRIPTION = """\
Evaluate an ECR push event exactly as the promoter Lambda would, without writing anything: no GitOps
commit, no ledger record. Prints the decision and every check with its result.

Decisions: promote (the release would be committed), wait (the release is incomplete: an image, a
branch tag or a signature is missing), ignore (not an event tagrelay acts on), reject (the release
may never be promoted as it is, or the event is malformed), noop (already deployed), superseded (the
environment runs a newer commit), skip (the environment is pinned).

Ignored and malformed events are decided from the event and the configuration alone. Other events
read the registry and the ledger with your AWS credentials, and GitHub with a read-only credential:
$GITHUB_TOKEN, `gh auth token`, or the secret github.read_token_secret (never tagrelay's write
credential, github.auth, which only the promoter uses).
"""

EXAMPLE = """\
  tagrelay explain push-event.json --config examples/mosaic-life.yaml
  tagrelay explain - -o json < push-event.json | jq .decision
"""

_STATUS_MARK = {"pass": "ok  ", "fail": "FAIL", "wait": "wait", "skip": "skip"}


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = new_parser(
        subparsers,
        "explain",
        summary="evaluate an ECR push event without writing anything",
        description=DESCRIPTION,
        example=EXAMPLE,
    )
    parser.add_argument("event_file", metavar="EVENT_FILE", help="the EventBridge event as JSON ('-' for stdin)")
    add_config_option(parser)
    add_output_option(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    event = _read_event(args.event_file)
    config = load_config_or_fail(args.config)

    from tagrelay.errors import MisconfiguredError, TransientError
    from tagrelay.runtime import build_promoter
    from tagrelay.services.report import report

    try:
        promoter = build_promoter(config, dry_run=True, github_credentials=github_read_credentials(config, "explain"))
        evaluations = promoter.process(event)
    except (TransientError, MisconfiguredError) as exc:
        raise CommandError(f"could not finish the evaluation: {exc}") from None
    result = report(evaluations)
    if args.output == "json":
        print_json(result)
    else:
        _print_text(result)
    return 0


def _read_event(location: str) -> Any:
    try:
        text = sys.stdin.read() if location == "-" else Path(location).read_text(encoding="utf-8")
    except OSError as exc:
        raise CommandError(f"{location}: cannot read the event file ({exc.strerror})") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise CommandError(f"{location}: not JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from None


def _print_text(result: dict[str, Any]) -> None:
    print(f"decision: {result['decision']} ({result['reason']})")
    print(f"          {result['message']}")
    if result.get("event_id"):
        print(f"event:    {result['event_id']}")
    for evaluation in result["evaluations"]:
        if evaluation.get("tag"):
            sha = evaluation.get("full_sha") or evaluation.get("sha")
            print(f"release:  {evaluation['app']} {evaluation['tag']} (commit {sha})")
        for decided in evaluation["decisions"]:
            if decided.get("env"):
                print(f"  {decided['env']}: {decided['decision']} ({decided['reason']}) {decided['message']}")
    print("checks:")
    width = max((len(c["name"]) for c in result["checks"]), default=0)
    for check in result["checks"]:
        print(f"  {_STATUS_MARK[check['status']]}  {check['name']:<{width}}  {check['detail']}")
