"""`tagrelay dora`: the four DORA figures per environment, computed from the ledger (domain/dora.py).

Reads one DynamoDB Query per environment (more when it pages): the environment's partition by sort-key
range, from N days ago to now, deployments only. Nothing scans.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from tagrelay.cli.common import (
    CommandError,
    add_config_option,
    add_output_option,
    ledger_for,
    load_config_or_fail,
    new_parser,
    print_json,
)
from tagrelay.domain.dora import DoraFigures, compute
from tagrelay.domain.records import timestamp

DEFAULT_DAYS = 30
MAX_DAYS = 366

DESCRIPTION = """\
DORA figures per environment over the last N days, from the deployments tagrelay recorded:

  deployment frequency   changes (pushes and 'tagrelay deploy') that reached SUCCEEDED, per day
  lead time for changes  source commit time -> healthy in the environment (median, 90th percentile)
  change failure rate    changes that ended DEGRADED, SYNC_FAILED or TIMED_OUT, or were followed by a
                         rollback, out of the changes whose result is known
  time to restore        from the commit of the first failed change to the next deployment (a fix or
                         a rollback) that became healthy (median; incidents still open are counted)

Rollbacks are deployments but not changes: they are counted apart. Deployments SUPERSEDED before
their outcome was known, ENV_UNAVAILABLE, or still in flight have no result. docs/operations.md has
the exact definitions.

Reads the ledger with the AWS credentials of the environment (dynamodb:Query on the table).
"""

EXAMPLE = """\
  tagrelay dora --env prod
  tagrelay dora --days 90 -o json | jq '.environments[] | {env, change_failure_rate}'
"""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = new_parser(
        subparsers,
        "dora",
        summary="DORA figures (frequency, lead time, change failure rate, time to restore) from the ledger",
        description=DESCRIPTION,
        example=EXAMPLE,
    )
    parser.add_argument("--env", metavar="ENV", help="one environment (default: every configured one)")
    parser.add_argument("--app", metavar="APP", help="one app (default: every configured app)")
    parser.add_argument(
        "--days",
        type=int,
        default=DEFAULT_DAYS,
        metavar="N",
        help=f"the window: the last N days (default {DEFAULT_DAYS})",
    )
    add_config_option(parser)
    add_output_option(parser, choices=("table", "json"))
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, *, now: datetime | None = None) -> int:
    config = load_config_or_fail(args.config)
    if not 1 <= args.days <= MAX_DAYS:
        raise CommandError(f"--days must be between 1 and {MAX_DAYS}, got {args.days}", exit_code=2)
    if args.app is not None and args.app not in config.apps:
        raise CommandError(f"no app {args.app!r} in the configuration; configured: {', '.join(config.apps)}", 2)
    apps = [args.app] if args.app else list(config.apps)
    targets = [(app, env) for app in apps for env in config.apps[app].environments if args.env in (None, env)]
    if not targets:
        known = sorted({env for app in apps for env in config.apps[app].environments})
        raise CommandError(f"no environment {args.env!r}; configured: {', '.join(known)}", exit_code=2)

    from tagrelay.errors import MisconfiguredError, TransientError

    until = now or datetime.now(UTC)
    since = until - timedelta(days=args.days)
    ledger = ledger_for(config)
    try:
        figures = [
            compute(
                app,
                env,
                ledger.deployments(app, env, since=timestamp(since), newest_first=False),
                since=since,
                until=until,
            )
            for app, env in targets
        ]
    except (TransientError, MisconfiguredError) as exc:
        raise CommandError(f"could not read the ledger: {exc}") from None
    if args.output == "json":
        print_json(
            {
                "since": timestamp(since),
                "until": timestamp(until),
                "days": args.days,
                "environments": [dataclasses.asdict(f) for f in figures],
            }
        )
    else:
        print_table(figures, args.days)
    return 0


def print_table(figures: Sequence[DoraFigures], days: int) -> None:
    print(f"DORA figures, last {days} day(s) to {figures[0].until[:16].replace('T', ' ')} UTC")
    print(
        f"{'ENVIRONMENT':<22} {'SUCCEEDED':>9} {'PER DAY':>7} {'LEAD TIME':>9} {'LEAD P90':>8} "
        f"{'FAILURE RATE':>12} {'TO RESTORE':>10} {'ROLLBACKS':>9}  INCIDENTS"
    )
    for f in figures:
        rate = (
            "-"
            if f.change_failure_rate is None
            else f"{f.change_failure_rate:.0%} ({f.failed_changes}/{f.changes_with_result})"
        )
        incidents = f"{f.incidents}" + (f" ({f.open_incidents} open)" if f.open_incidents else "")
        print(
            f"{f.app + '/' + f.env:<22} {f'{f.successful_deployments}/{f.deployments}':>9} "
            f"{f.deployments_per_day:>7.2f} {_span(f.lead_time_median_seconds):>9} "
            f"{_span(f.lead_time_p90_seconds):>8} {rate:>12} {_span(f.time_to_restore_median_seconds):>10} "
            f"{f.rollbacks:>9}  {incidents}"
        )
    print(
        "\nSUCCEEDED: changes that reached SUCCEEDED / changes deployed; PER DAY counts the first. LEAD TIME and "
        "TO RESTORE are medians;\nFAILURE RATE is failed / changes with a known result (-o json has every count)."
    )


def _span(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    whole = round(seconds)
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    if whole < 86_400:
        return f"{whole // 3600}h{whole % 3600 // 60:02d}m"
    return f"{whole // 86_400}d{whole % 86_400 // 3600:02d}h"
