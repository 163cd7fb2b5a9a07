"""`tagrelay history`: the ledger's decisions and deployment outcomes, newest first, a page at a time.

The paging and the merge across environments are services/history.py's; this module parses the
arguments and prints.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Sequence
from typing import Any

from tagrelay.cli.common import (
    CommandError,
    add_config_option,
    add_output_option,
    ledger_for,
    load_config_or_fail,
    new_parser,
    print_json,
)
from tagrelay.config import Config
from tagrelay.domain.decision import Outcome
from tagrelay.domain.outcome import DeploymentState
from tagrelay.domain.records import DecisionRecord, seconds_between
from tagrelay.services.history import HistoryQuery, InvalidHistoryQuery

DEFAULT_LIMIT = 20
MAX_LIMIT = 100

DESCRIPTION = """\
List what tagrelay decided and how each deployment ended, newest first: promotions with their
tracking status (COMMITTED, SYNCING, then SUCCEEDED, DEGRADED, SYNC_FAILED, TIMED_OUT, SUPERSEDED or
ENV_UNAVAILABLE), rejections, skips and superseded releases, each with its reason.

Filters: --app and --env (every configured app and environment by default; without --env, the
decisions made before an environment was known are included), --sha (one source commit across apps
and environments; a short SHA of at least 4 characters). Transient records (the 'waiting' and 'noop'
decisions of events that arrived before a release was complete, or again after it was deployed) are
hidden unless --all is given.

Results come a page at a time (--limit records, default 20). When there is more, the last line is
the command for the next page, with a --next token; repeat the same filters with it.

Reads the ledger table named in the configuration with the AWS credentials of the environment
(dynamodb:Query on the table and its indexes).
"""

EXAMPLE = """\
  tagrelay history --env prod
  tagrelay history --app mosaic-life --env prod --limit 5 --next eyJ2IjoxLCJx...
  tagrelay history --sha abc1234 --all
  tagrelay history --env prod -o json | jq -r '.records[] | [.tag, .status] | @tsv'
"""

_STATUS_WIDTH = 15
_ACTOR_WIDTH = 20


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = new_parser(
        subparsers,
        "history",
        summary="list decisions and deployment outcomes from the ledger, newest first",
        description=DESCRIPTION,
        example=EXAMPLE,
    )
    parser.add_argument("--env", metavar="ENV", help="one environment, e.g. prod")
    parser.add_argument("--app", metavar="APP", help="one app (default: every configured app)")
    parser.add_argument("--sha", metavar="SHA", help="one source commit (short or full SHA)")
    parser.add_argument(
        "--limit", type=int, default=DEFAULT_LIMIT, metavar="N", help=f"records per page, 1-{MAX_LIMIT} (default: 20)"
    )
    parser.add_argument("--next", metavar="TOKEN", dest="next_token", help="the token printed by the previous page")
    parser.add_argument("--all", action="store_true", help="include transient 'waiting' and 'noop' records")
    add_config_option(parser)
    add_output_option(parser, choices=("table", "json"))
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    config = load_config_or_fail(args.config)
    query = query_from_args(args, config)
    from tagrelay.errors import MisconfiguredError, TransientError

    ledger = ledger_for(config)
    try:
        records, next_token = query.page(ledger, args.limit, args.next_token)
    except InvalidHistoryQuery as exc:
        raise CommandError(str(exc), exit_code=2) from None
    except (TransientError, MisconfiguredError) as exc:
        raise CommandError(f"could not read the ledger: {exc}") from None
    if args.output == "json":
        print_json({"records": [record_json(r) for r in records], "next": next_token})
        return 0
    print_table(records, query, more=next_token is not None)
    if next_token:
        options = " ".join(filter(None, [query.describe(), f"--limit {args.limit}", f"--next {next_token}"]))
        print(f"\nmore: tagrelay history {options}")
    return 0


def query_from_args(args: argparse.Namespace, config: Config) -> HistoryQuery:
    if not 1 <= args.limit <= MAX_LIMIT:
        raise CommandError(f"--limit must be between 1 and {MAX_LIMIT}, got {args.limit}", exit_code=2)
    try:
        return HistoryQuery.for_filters(config, app=args.app, env=args.env, sha=args.sha, include_transient=args.all)
    except InvalidHistoryQuery as exc:
        raise CommandError(str(exc), exit_code=2) from None


# --------------------------------------------------------------------------------------------------
# Output.


def durations(record: DecisionRecord) -> dict[str, float | None]:
    """Commit → synced / healthy, and push → healthy (lead time), from the record's timestamps."""

    committed = record.committed_at or (record.created_at if record.outcome == Outcome.COMMITTED else None)
    return {
        "to_sync_seconds": seconds_between(committed, record.synced_at),
        "to_healthy_seconds": seconds_between(committed, record.healthy_at),
        "lead_time_seconds": seconds_between(record.pushed_at, record.healthy_at),
    }


def record_json(record: DecisionRecord) -> dict[str, Any]:
    data = {key: value for key, value in dataclasses.asdict(record).items() if value not in (None, {}, ())}
    data["durations"] = {key: value for key, value in durations(record).items() if value is not None}
    return data


def result_of(record: DecisionRecord) -> str:
    """A deployment's tracking status (SUCCEEDED→DEGRADED when it flapped); any other decision's outcome."""
    if record.outcome != Outcome.COMMITTED:
        return record.outcome
    status = record.status or DeploymentState.COMMITTED
    return f"SUCCEEDED→{status}" if record.flapped_at else status


def detail_of(record: DecisionRecord) -> str:
    if record.outcome == Outcome.COMMITTED:
        # The risks the app's configuration accepted come first, so that clipping never hides them.
        risks = "".join(f"[{risk}] " for risk in accepted_risks(record))
        return risks + (record.status_reason or f"{record.reason}: {record.message}")
    return f"{record.reason}: {record.message}"


def accepted_risks(record: DecisionRecord) -> list[str]:
    """What a deployment went out without: a signature check (``signature: none``), or release tags that
    ECR lets anyone overwrite (``allow_mutable_tags: true``)."""
    risks = []
    if record.signature_policy == "none":
        risks.append("signature: none")
    if record.tag_policy and record.tag_policy != "immutable":
        risks.append("tags: mutable")
    return risks


def print_table(records: Sequence[DecisionRecord], query: HistoryQuery, *, more: bool = False) -> None:
    if not records and more:
        print("(nothing to show on this page: the records read so far are all transient; see the next page)")
        return
    if not records:
        print(
            f"no {'' if query.include_transient else 'non-transient '}decisions recorded for {query.describe() or 'any app'}"
        )
        return
    header = (
        f"{'WHEN (UTC)':<20} {'APP':<14} {'ENV':<10} {'TAG':<14} {'RESULT':<{_STATUS_WIDTH}} "
        f"{'TRIGGER':<8} {'ACTOR':<{_ACTOR_WIDTH}} {'GITOPS':<8} {'SYNCED':>7} {'HEALTHY':>7}  DETAIL"
    )
    print(header)
    for record, repeats in _collapsed(records):
        times = durations(record)
        when = record.created_at[:19].replace("T", " ")
        result = result_of(record) + (f" x{repeats}" if repeats > 1 else "")
        print(
            f"{when:<20} {record.app:<14} {record.env:<10} {record.tag or '-':<14} "
            f"{result:<{_STATUS_WIDTH}} {record.trigger:<8} {_clip(actor_of(record), _ACTOR_WIDTH):<{_ACTOR_WIDTH}} "
            f"{(record.gitops_commit or '-')[:7]:<8} "
            f"{_span(times['to_sync_seconds']):>7} {_span(times['to_healthy_seconds']):>7}  {_clip(detail_of(record))}"
        )


def actor_of(record: DecisionRecord) -> str:
    """Who: the commit's author for a push, the operator for a manual deploy, rollback or pin. An AWS ARN
    is shortened to what names the person (``assumed-role/<role>/<session>`` -> ``<role>/<session>``);
    JSON keeps the whole ARN."""
    actor = record.actor or "-"
    if actor.startswith("arn:"):
        resource = actor.split(":", 5)[-1]
        kind, _, name = resource.partition("/")
        return name if kind in ("assumed-role", "user", "role", "federated-user") and name else resource
    return actor


def _collapsed(records: Sequence[DecisionRecord]) -> list[tuple[DecisionRecord, int]]:
    """Consecutive repeats of one decision (level-triggered: every event of a bad release records the
    same rejection) as one row with a count; deployments are never folded. JSON keeps every record."""
    rows: list[tuple[DecisionRecord, int]] = []
    for record in records:
        if rows and record.outcome != Outcome.COMMITTED and _same_decision(rows[-1][0], record):
            rows[-1] = (rows[-1][0], rows[-1][1] + 1)
        else:
            rows.append((record, 1))
    return rows


def _same_decision(a: DecisionRecord, b: DecisionRecord) -> bool:
    return (a.app, a.env, a.tag, a.outcome, a.reason, a.message) == (
        b.app,
        b.env,
        b.tag,
        b.outcome,
        b.reason,
        b.message,
    )


def _span(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    whole = round(seconds)
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    return f"{whole // 3600}h{whole % 3600 // 60:02d}m"


def _clip(text: str, limit: int = 110) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"
