"""The ledger's history, newest first, a page at a time (`tagrelay history`).

Every environment is its own DynamoDB partition (docs/ledger.md), so a listing across environments
merges one Query per environment, newest first (a k-way merge on the sort key), and the page token
remembers where each of them stopped. A SHA reads the ``by-sha`` index instead. Nothing scans.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tagrelay.config import Config
from tagrelay.domain.records import TRANSIENT_OUTCOMES, UNRESOLVED_ENV, DecisionRecord
from tagrelay.errors import InvalidInput

if TYPE_CHECKING:
    from tagrelay.domain.records import HistoryPage
    from tagrelay.ports import DeploymentLedger

# Each Query reads at least this many records: most of an environment's records can be transient
# (every event of a release decides something), and reading past what a page shows costs nothing
# extra, since the next page resumes after the last record shown.
MIN_FETCH = 25
# A page whose reads find only hidden records keeps reading, but not forever: then it ends early,
# with a token.
MAX_QUERIES_PER_SOURCE = 5
_SHA = re.compile(r"^[0-9a-f]{4,40}$")


class InvalidHistoryQuery(InvalidInput):
    """A filter or a page token that cannot be used; the message says which and what to do."""


@dataclass(frozen=True)
class Source:
    """One thing to Query: an environment's partition, or the by-sha index."""

    key: str  # stable name, used in the page token
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
    def for_filters(
        cls, config: Config, *, app: str | None, env: str | None, sha: str | None, include_transient: bool
    ) -> HistoryQuery:
        """The sources to read for these filters. Raises InvalidHistoryQuery for an unknown app or
        environment, or a SHA that is not 4 to 40 hex digits."""
        if app is not None and app not in config.apps:
            raise InvalidHistoryQuery(f"no app {app!r} in the configuration; configured: {', '.join(config.apps)}")
        apps = [app] if app else list(config.apps)
        if env is not None and env != UNRESOLVED_ENV:
            known = sorted({e for name in apps for e in config.apps[name].environments})
            if env not in known:
                raise InvalidHistoryQuery(f"no environment {env!r}; configured: {', '.join(known)}")
        short_sha = sha.lower() if sha else None
        if short_sha is not None and not _SHA.match(short_sha):
            raise InvalidHistoryQuery(f"--sha must be 4 to 40 hexadecimal characters, got {sha!r}")
        if short_sha is not None:
            sources: tuple[Source, ...] = (Source(f"sha:{short_sha}", sha=short_sha),)
        else:
            # Without an environment, also the decisions taken before an environment was known.
            envs = [env] if env else None
            sources = tuple(
                Source(f"env:{name}/{e}", app=name, env=e)
                for name in apps
                for e in envs or [*config.apps[name].environments, UNRESOLVED_ENV]
                if e == UNRESOLVED_ENV or e in config.apps[name].environments
            )
        return cls(sources, app, env, short_sha, include_transient)

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
        """Up to ``limit`` records, newest first across the sources, and the token for the next page.
        Raises InvalidHistoryQuery for a token this query did not print."""
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
            raise InvalidHistoryQuery("--next: not a token printed by 'tagrelay history'") from None
        if data.get("q") != self._fingerprint():
            raise InvalidHistoryQuery(
                f"--next: the token belongs to another query ({data.get('q')}); repeat the same filters with it"
            )
        return starts


def _order(record: DecisionRecord) -> tuple[str, str]:
    # The order of the sort keys (DEC#<created_at>#<id>), so a merged page is ordered like one partition.
    return (record.created_at, record.decision_id)
