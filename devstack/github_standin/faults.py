"""Fault injection and the request log, both driven through the control API.

A fault answers the next ``count`` requests matching ``method`` and ``path_regex`` (``re.search`` on the
request path as the client sent it, prefix included) instead of serving them. Kinds:

* none — answer ``status`` with ``body`` (default ``{"message": <reason phrase>}``) and ``headers``;
* ``secondary_rate_limit`` — 403 (or ``status``) with GitHub's secondary-limit message and ``Retry-After: 1``;
* ``primary_rate_limit`` — 403 with ``API rate limit exceeded …``, ``x-ratelimit-remaining: 0`` and a reset
  one second ahead;
* ``concurrent_commit`` — not an answer: another writer commits to the same branch first (changing
  ``file``, default the PUT's path, to ``content``, default the old content plus a line), then the
  request is served, so a client holding the old blob SHA or branch head meets a real conflict;
* ``delay`` — not an answer: the request is served normally after ``seconds`` (default 2): longer than
  the client's timeout, it is a timeout whose request still took effect (a commit made, its answer
  lost), as a slow GitHub does.
"""

from __future__ import annotations

import itertools
import re
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any

FAULT_KINDS = ("secondary_rate_limit", "primary_rate_limit", "concurrent_commit", "delay")
SECONDARY_RATE_LIMIT_MESSAGE = (
    "You have exceeded a secondary rate limit. Please wait a few minutes before you try again. "
    "If you reach out to GitHub Support for help, please include the request ID."
)
PRIMARY_RATE_LIMIT_MESSAGE = (
    "API rate limit exceeded for installation. If you reach out to GitHub Support for help, "
    "please include the request ID."
)
DOCS = "https://docs.github.com/rest"
RATE_LIMIT_DOCS = (
    "https://docs.github.com/rest/using-the-rest-api/rate-limits-for-the-rest-api#about-secondary-rate-limits"
)


@dataclass
class Fault:
    id: int
    method: str | None
    path_regex: re.Pattern[str]
    remaining: int
    status: int | None = None
    kind: str | None = None
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    file: str | None = None
    content: str | None = None
    seconds: float = 2.0

    def matches(self, method: str, path: str) -> bool:
        return (self.method is None or self.method == method) and self.path_regex.search(path) is not None

    def describe(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "method": self.method,
            "path_regex": self.path_regex.pattern,
            "remaining": self.remaining,
            "status": self.status,
            "kind": self.kind,
        }

    def response(self) -> tuple[int, Any, dict[str, str]]:
        """Status, JSON body and headers to answer with (not for ``concurrent_commit``)."""
        if self.kind == "secondary_rate_limit":
            body = self.body or {"message": SECONDARY_RATE_LIMIT_MESSAGE, "documentation_url": RATE_LIMIT_DOCS}
            return self.status or 403, body, {"Retry-After": "1", **self.headers}
        if self.kind == "primary_rate_limit":
            body = self.body or {"message": PRIMARY_RATE_LIMIT_MESSAGE, "documentation_url": RATE_LIMIT_DOCS}
            headers = {"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(int(time.time()) + 1)}
            return self.status or 403, body, {**headers, **self.headers}
        status = self.status or 500
        body = self.body if self.body is not None else {"message": _reason(status), "documentation_url": DOCS}
        return status, body, dict(self.headers)


class FaultBook:
    """The armed faults; ``take`` consumes one matching fault atomically, so N threads get N answers."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []
        self._ids = itertools.count(1)

    def add(self, spec: Mapping[str, Any]) -> Fault:
        fault = _parse_fault(next(self._ids), spec)
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def list(self) -> list[dict[str, Any]]:
        with self._lock:
            return [fault.describe() for fault in self._faults]

    def take(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.matches(method, path):
                    fault.remaining -= 1
                    if fault.remaining <= 0:
                        self._faults.remove(fault)
                    return fault
        return None


class RequestLog:
    """Every API request served (control requests excluded): what the benchmarks count."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: list[dict[str, Any]] = []
        # Off by default (a benchmark serves megabyte files): the OpenAPI test turns it on to check bodies.
        self.keep_bodies = False

    def record(
        self,
        *,
        method: str,
        path: str,
        query: str,
        status: int,
        started: float,
        auth: str,
        fault: str | None,
        body: Any = None,
    ) -> None:
        entry = {
            "method": method,
            "path": path,
            "query": query,
            "status": status,
            "time": datetime.fromtimestamp(started, UTC).isoformat(timespec="milliseconds"),
            "duration_ms": round((time.time() - started) * 1000, 1),
            "auth": auth,
            "fault": fault,
        }
        if self.keep_bodies:
            entry["body"] = body
        with self._lock:
            self._entries.append(entry)

    def entries(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._entries)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def _parse_fault(fault_id: int, spec: Mapping[str, Any]) -> Fault:
    kind = spec.get("kind")
    if kind is not None and kind not in FAULT_KINDS:
        raise ValueError(f"kind must be one of {', '.join(FAULT_KINDS)}, not {kind!r}")
    status = spec.get("status")
    if status is not None and (not isinstance(status, int) or not 100 <= status <= 599):
        raise ValueError(f"status must be an HTTP status code, not {status!r}")
    if kind is None and status is None:
        raise ValueError("a fault needs a status or a kind")
    seconds = spec.get("seconds", 2.0)
    if not isinstance(seconds, int | float) or not 0 < seconds <= 60:
        raise ValueError(f"seconds must be a number of seconds in (0, 60], not {seconds!r}")
    count = spec.get("count", 1)
    if not isinstance(count, int) or count < 1:
        raise ValueError(f"count must be a positive integer, not {count!r}")
    method = spec.get("method")
    try:
        pattern = re.compile(str(spec.get("path_regex") or ".*"))
    except re.error as error:
        raise ValueError(f"path_regex does not compile: {error}") from error
    headers = spec.get("headers") or {}
    if not isinstance(headers, dict):
        raise ValueError("headers must be an object")
    return Fault(
        id=fault_id,
        method=str(method).upper() if method and method != "*" else None,
        path_regex=pattern,
        remaining=count,
        status=status,
        kind=kind,
        body=spec.get("body"),
        headers={str(name): str(value) for name, value in headers.items()},
        file=spec.get("file"),
        content=spec.get("content"),
        seconds=float(seconds),
    )
