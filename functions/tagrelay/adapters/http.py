"""Bounded HTTP for the adapters: a connect timeout, a whole-request deadline, and capped reads.

``requests`` (urllib3) timeouts apply to each socket operation: a peer that drips one byte just before
every read timeout can hold a request open indefinitely (1,000 bytes dripped took 50 s). Here a request
runs inside ``deadline(seconds)``: a timer shuts down the sockets the request uses when the deadline
passes, whatever phase it is in (headers, body, a retry, a redirect), so the blocked read returns at
once and the caller gets ``DeadlineExceeded``. Bodies are read in chunks and abandoned past a cap
(``read_capped``), so a 200 MB answer costs at most the cap in memory.

Sessions must come from ``bounded_session()`` (its connection classes register with the deadline).
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import requests
import urllib3
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

_local = threading.local()
CHUNK_BYTES = 16 * 1024


class DeadlineExceeded(Exception):
    """The whole request (connect, headers, body) did not finish within its deadline."""


class ResponseTooLarge(Exception):
    """The body is longer than the cap for what was read."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"more than {limit} bytes")
        self.limit = limit


class _Scope:
    """One deadline: the connections used inside it, shut down when the timer fires."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._ends = time.monotonic() + seconds
        self._fired = False
        self._connections: list[HTTPConnection] = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True

    @property
    def expired(self) -> bool:
        # The clock decides, not only the timer: under load the timer thread can run late, and a read
        # timeout of the same length may fail the request first; its retry must still not be sent.
        return self._fired or time.monotonic() >= self._ends

    def attach(self, connection: HTTPConnection) -> None:
        with self._lock:
            self._connections.append(connection)
            if self.expired:
                _shut(connection)

    def _expire(self) -> None:
        with self._lock:
            self._fired = True
            for connection in self._connections:
                _shut(connection)


def _shut(connection: HTTPConnection) -> None:
    sock = getattr(connection, "sock", None)
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


@contextlib.contextmanager
def deadline(seconds: float) -> Iterator[_Scope]:
    """Every request of a ``bounded_session`` made inside finishes within ``seconds`` or fails.

    Raises ``DeadlineExceeded`` when the block failed because the deadline passed (whatever exception
    the shut-down socket caused inside).
    """
    outer = getattr(_local, "scope", None)
    scope = _Scope(seconds)
    _local.scope = scope
    scope._timer.start()
    try:
        yield scope
    except Exception as exc:
        if scope.expired and not isinstance(exc, DeadlineExceeded):
            raise DeadlineExceeded(f"no complete answer within {seconds:g}s") from None
        raise
    finally:
        scope._timer.cancel()
        _local.scope = outer


class _DeadlineConnection(HTTPConnection):
    def request(self, *args: Any, **kwargs: Any) -> None:
        scope = getattr(_local, "scope", None)
        if scope is not None:
            if scope.expired:  # a retry after the deadline: do not even connect
                raise OSError("the request's deadline has passed")
            scope.attach(self)
        super().request(*args, **kwargs)


class _DeadlineHTTPSConnection(_DeadlineConnection, HTTPSConnection):
    pass


class _Pool(HTTPConnectionPool):
    ConnectionCls = _DeadlineConnection


class _HTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _DeadlineHTTPSConnection


class BoundedAdapter(HTTPAdapter):
    """requests' adapter with connection classes that honour ``deadline``."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _Pool, "https": _HTTPSPool}


def bounded_session(*, retry: urllib3.util.retry.Retry | int = 0, user_agent: str | None = None) -> requests.Session:
    session = requests.Session()
    adapter = BoundedAdapter(max_retries=retry)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    if user_agent:
        session.headers["User-Agent"] = user_agent
    return session


def read_capped(response: requests.Response, limit: int) -> bytes:
    """The body, read in chunks and abandoned once longer than ``limit`` (raises ResponseTooLarge).

    A declared Content-Length over the cap is refused before reading anything.
    """
    declared = response.headers.get("Content-Length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise ResponseTooLarge(limit)
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_content(chunk_size=CHUNK_BYTES):
        size += len(chunk)
        if size > limit:
            raise ResponseTooLarge(limit)
        chunks.append(chunk)
    return b"".join(chunks)


def read_prefix(response: requests.Response, limit: int) -> bytes:
    """At most ``limit`` bytes of the body (an error answer's start, for its error codes); never more."""
    chunks: list[bytes] = []
    size = 0
    with contextlib.suppress(requests.RequestException):
        for chunk in response.iter_content(chunk_size=min(CHUNK_BYTES, limit)):
            chunks.append(chunk[: limit - size])
            size += len(chunk)
            if size >= limit:
                break
    return b"".join(chunks)
