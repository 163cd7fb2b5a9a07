"""`tagrelay history`: the ledger's decisions and deployment outcomes, newest first, a page at a time.

Every environment is its own DynamoDB partition (docs/ledger.md), so a listing across environments
merges one Query per environment, newest first, and the ``--next`` token remembers where each of
them stopped. ``--sha`` reads the ``by-sha`` index instead. Nothing scans.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import dataclasses
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

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
from tagrelay.domain.records import TRANSIENT_OUTCOMES, DecisionRecord, parse_timestamp

if TYPE_CHECKING:
    from tagrelay.domain.records import HistoryPage
    from tagrelay.ports import DeploymentLedger

DEFAULT_LIMIT = 20
MAX_LIMIT = 100
# Each Query reads at least this many records: most of an environment's records can be transient
# (every event of a release decides something), and reading past what a page shows costs nothing
# extra, since the next page resumes after the last record shown.
MIN_FETCH = 25
# A page whose reads find only hidden records keeps reading, but not forever: then it ends early,
# with a token.
MAX_QUERIES_PER_SOURCE = 5
UNRESOLVED_ENV = "unresolved"
_SHA = re.compile(r"^[0-9a-f]{4,40}$")

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
    query = HistoryQuery.from_args(args, config)
    from tagrelay.errors import MisconfiguredError, TransientError

    ledger = ledger_for(config)
    try:
        records, next_token = query.page(ledger, args.limit, args.next_token)
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


# --------------------------------------------------------------------------------------------------
# The query: which partitions (or index) to read, and how their pages merge.


@dataclass(frozen=True)
class Source:
    """One thing to Query: an environment's partition, or the by-sha index."""

    key: str  # stable name, used in the --next token
    app: str | None = None
    env: str | None = None
    sha: str | None = None

    def fetch(self, ledger: DeploymentLedger, limit: int, start: dict[str, Any] | None) -> HistoryPage:
        if self.sha is not None:
            return ledger.history_by_sha(self.sha, limit=limit, next_token=start)
        assert self.app is not None and self.env is not None
        return ledger.history(self.app, self.env, limit=limit, next_token=start)


@dataclass
class _Cursor:
    source: Source
    start: dict[str, Any] | None  # where the unconsumed part of `buffer` begins
    buffer: list[DecisionRecord] = field(default_factory=list)
    after_buffer: dict[str, Any] | None = None  # DynamoDB's LastEvaluatedKey of the last fetch
    fetched: bool = False
    queries: int = 0

    @property
    def exhausted(self) -> bool:
        return not self.buffer and self.fetched and self.after_buffer is None


@dataclass(frozen=True)
class HistoryQuery:
    sources: tuple[Source, ...]
    app: str | None
    env: str | None
    sha: str | None
    include_transient: bool

    @classmethod
    def from_args(cls, args: argparse.Namespace, config: Config) -> HistoryQuery:
        if not 1 <= args.limit <= MAX_LIMIT:
            raise CommandError(f"--limit must be between 1 and {MAX_LIMIT}, got {args.limit}", exit_code=2)
        if args.app is not None and args.app not in config.apps:
            raise CommandError(f"no app {args.app!r} in the configuration; configured: {', '.join(config.apps)}", 2)
        apps = [args.app] if args.app else list(config.apps)
        if args.env is not None and args.env != UNRESOLVED_ENV:
            known = sorted({env for name in apps for env in config.apps[name].environments})
            if args.env not in known:
                raise CommandError(f"no environment {args.env!r}; configured: {', '.join(known)}", exit_code=2)
        sha = args.sha.lower() if args.sha else None
        if sha is not None and not _SHA.match(sha):
            raise CommandError(f"--sha must be 4 to 40 hexadecimal characters, got {args.sha!r}", exit_code=2)
        if sha is not None:
            sources: tuple[Source, ...] = (Source(f"sha:{sha}", sha=sha),)
        else:
            # Without --env, also the decisions taken before an environment was known.
            envs = [args.env] if args.env else None
            sources = tuple(
                Source(f"env:{name}/{env}", app=name, env=env)
                for name in apps
                for env in envs or [*config.apps[name].environments, UNRESOLVED_ENV]
                if env == UNRESOLVED_ENV or env in config.apps[name].environments
            )
        return cls(sources, args.app, args.env, sha, args.all)

    def describe(self) -> str:
        """The filters as command-line options (to repeat them with --next)."""
        parts = [
            f"--{name} {value}" for name, value in (("app", self.app), ("env", self.env), ("sha", self.sha)) if value
        ]
        return " ".join([*parts, *(["--all"] if self.include_transient else [])])

    def shows(self, record: DecisionRecord) -> bool:
        if not self.include_transient and record.outcome in TRANSIENT_OUTCOMES:
            return False
        # The by-sha index spans apps and environments: the other filters apply here.
        return (self.app is None or record.app == self.app) and (self.env is None or record.env == self.env)

    def page(self, ledger: DeploymentLedger, limit: int, token: str | None) -> tuple[list[DecisionRecord], str | None]:
        """Up to ``limit`` records, newest first across the sources, and the token for the next page."""
        starts = self._decode(token) if token else {source.key: None for source in self.sources}
        cursors = [_Cursor(source, starts[source.key]) for source in self.sources if source.key in starts]
        taken: list[DecisionRecord] = []
        while len(taken) < limit:
            for cursor in cursors:
                while not cursor.buffer and not cursor.exhausted and cursor.queries < MAX_QUERIES_PER_SOURCE:
                    self._fill(ledger, cursor, limit)
            # The newest record is known only once every source shows its next one (or has none left).
            if any(not cursor.buffer and not cursor.exhausted for cursor in cursors):
                break
            ready = [cursor for cursor in cursors if cursor.buffer]
            if not ready:
                break
            newest = max(ready, key=lambda cursor: _order(cursor.buffer[0]))
            record = newest.buffer.pop(0)
            newest.start = ledger.resume_key(record, by_sha=newest.source.sha is not None)
            taken.append(record)
        return taken, self._encode(cursors)

    def _fill(self, ledger: DeploymentLedger, cursor: _Cursor, limit: int) -> None:
        start = cursor.after_buffer if cursor.fetched else cursor.start
        result = cursor.source.fetch(ledger, max(limit, MIN_FETCH), start)
        cursor.queries += 1
        cursor.fetched = True
        cursor.start = start
        cursor.buffer = [record for record in result.records if self.shows(record)]
        cursor.after_buffer = result.next_token

    # The token: which sources still have records, and where each resumes (DynamoDB keys, as JSON).

    def _fingerprint(self) -> str:
        return self.describe() or "-"

    def _encode(self, cursors: Sequence[_Cursor]) -> str | None:
        remaining: dict[str, Any] = {}
        for cursor in cursors:
            if cursor.buffer or not cursor.fetched:
                remaining[cursor.source.key] = cursor.start
            elif cursor.after_buffer is not None:
                remaining[cursor.source.key] = cursor.after_buffer
        if not remaining:
            return None
        data = json.dumps({"v": 1, "q": self._fingerprint(), "s": remaining}, separators=(",", ":"))
        return base64.urlsafe_b64encode(data.encode()).decode().rstrip("=")

    def _decode(self, token: str) -> dict[str, Any]:
        try:
            data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
            starts = data["s"]
            if data.get("v") != 1 or not isinstance(starts, dict):
                raise ValueError
        except (ValueError, KeyError, TypeError, binascii.Error):
            raise CommandError("--next: not a token printed by 'tagrelay history'", exit_code=2) from None
        if data.get("q") != self._fingerprint():
            raise CommandError(
                f"--next: the token belongs to another query ({data.get('q')}); repeat the same filters with it",
                exit_code=2,
            )
        return starts


def _order(record: DecisionRecord) -> tuple[str, str]:
    # The order of the sort keys (DEC#<created_at>#<id>), so a merged page is ordered like one partition.
    return (record.created_at, record.decision_id)


# --------------------------------------------------------------------------------------------------
# Output.


def durations(record: DecisionRecord) -> dict[str, float | None]:
    """Commit → synced / healthy, and push → healthy (lead time), from the record's timestamps."""

    def between(start: str | None, end: str | None) -> float | None:
        if not start or not end:
            return None
        return max((parse_timestamp(end) - parse_timestamp(start)).total_seconds(), 0.0)

    committed = record.committed_at or (record.created_at if record.outcome == "committed" else None)
    return {
        "to_sync_seconds": between(committed, record.synced_at),
        "to_healthy_seconds": between(committed, record.healthy_at),
        "lead_time_seconds": between(record.pushed_at, record.healthy_at),
    }


def record_json(record: DecisionRecord) -> dict[str, Any]:
    data = {key: value for key, value in dataclasses.asdict(record).items() if value not in (None, {}, ())}
    data["durations"] = {key: value for key, value in durations(record).items() if value is not None}
    return data


def result_of(record: DecisionRecord) -> str:
    """A deployment's tracking status (SUCCEEDED→DEGRADED when it flapped); any other decision's outcome."""
    if record.outcome != "committed":
        return record.outcome
    status = record.status or "COMMITTED"
    return f"SUCCEEDED→{status}" if record.flapped_at else status


def detail_of(record: DecisionRecord) -> str:
    if record.outcome == "committed":
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
        if rows and record.outcome != "committed" and _same_decision(rows[-1][0], record):
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
