"""HTTP plumbing: one thread per connection, rate-limit headers, faults, the request log, dispatch.

Order for an API request: count it against the rate limit, consume a matching fault (answering with
it, or for ``concurrent_commit`` letting another writer commit first), then authenticate and serve.
"""

from __future__ import annotations

import json
import threading
import time
import traceback
from dataclasses import dataclass
from http.server import ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

from devstack.github_standin import shapes
from devstack.github_standin.api import GitHubApi, Reply, Request
from devstack.github_standin.app_auth import Credentials
from devstack.github_standin.config import StandinConfig
from devstack.github_standin.control import CONTROL_PREFIX, ControlContext, handle_control
from devstack.github_standin.faults import FaultBook, RequestLog
from devstack.http_server import LoopbackHandler

MAX_BODY = 50 * 1024 * 1024


class RateLimit:
    """GitHub's primary-limit bookkeeping: ``remaining`` goes down per request, resets every hour.

    Only reported, never enforced (a long benchmark must not stall); the ``primary_rate_limit`` fault
    simulates running out.
    """

    def __init__(self, limit: int = 5000, window: int = 3600) -> None:
        self._lock = threading.Lock()
        self._limit = limit
        self._window = window
        self._reset = int(time.time()) + window
        self._used = 0

    def consume(self) -> dict[str, str]:
        with self._lock:
            now = int(time.time())
            if now >= self._reset:
                self._reset, self._used = now + self._window, 0
            self._used += 1
            return {
                "x-ratelimit-limit": str(self._limit),
                "x-ratelimit-remaining": str(max(0, self._limit - self._used)),
                "x-ratelimit-reset": str(self._reset),
                "x-ratelimit-used": str(self._used),
                "x-ratelimit-resource": "core",
            }


@dataclass(frozen=True)
class StandinState:
    port: int
    prefix: str
    api: GitHubApi
    control: ControlContext
    faults: FaultBook
    requests: RequestLog
    rate_limit: RateLimit


class StandinServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # the default backlog of 5 drops connections when ten clients race

    def __init__(self, port: int, state: StandinState) -> None:
        super().__init__(("127.0.0.1", port), StandinHandler)
        self.state = state

    def server_close(self) -> None:
        super().server_close()
        self.state.api.close()  # the repositories' cat-file processes


class StandinHandler(LoopbackHandler):
    server: StandinServer

    def _serve(self) -> None:
        started = time.time()
        state = self.server.state
        url = urlsplit(self.path)
        body = self._read_body()
        host = self.headers.get("Host") or f"127.0.0.1:{state.port}"
        web = f"http://{host}"
        api = web + state.prefix
        control_route = _control_route(url.path, state.prefix)
        if control_route is not None:
            self._send(handle_control(state.control, self.command, control_route, body, api), {})
            return
        rate_headers = state.rate_limit.consume()
        request = Request(
            method=self.command,
            path=url.path[len(state.prefix) :] if state.prefix else url.path,
            query=dict(parse_qsl(url.query, keep_blank_values=True)),
            authorization=self.headers.get("Authorization"),
            body=body,
        )
        auth, fault_kind = "none", None
        try:
            if state.prefix and not (url.path == state.prefix or url.path.startswith(state.prefix + "/")):
                reply = Reply(404, shapes.error("Not Found"))
            else:
                fault = state.faults.take(self.command, url.path)
                if fault is not None:
                    fault_kind = fault.kind or f"status {fault.status}"
                if fault is not None and fault.kind == "concurrent_commit":
                    state.api.commit_concurrently(request, fault)
                    fault = None
                if fault is not None and fault.kind == "delay":
                    time.sleep(fault.seconds)  # then served: the client may have given up by now
                    fault = None
                if fault is not None:
                    status, fault_body, fault_headers = fault.response()
                    reply = Reply(status, fault_body, fault_headers)
                else:
                    outcome = state.api.handle(request, api=api, web=web)
                    reply, auth = outcome.reply, outcome.auth
        except Exception:
            traceback.print_exc()
            reply = Reply(500, shapes.error("Server Error"))
        # Logged before answering: once a client has its response, the log already shows the request.
        state.requests.record(
            method=self.command,
            path=url.path,
            query=url.query,
            status=reply.status,
            started=started,
            auth=auth,
            fault=fault_kind,
            body=reply.body,
        )
        self._send(reply, rate_headers)

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(min(length, MAX_BODY)) if length > 0 else b""

    def _send(self, reply: Reply, base_headers: dict[str, str]) -> None:
        payload = b"" if reply.status == 204 or reply.body is None else json.dumps(reply.body).encode()
        headers = {name.lower(): value for name, value in {**base_headers, **reply.headers}.items()}
        self.send_response(reply.status)
        if payload:
            self.send_header("content-type", "application/json; charset=utf-8")
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("content-length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


def _control_route(path: str, prefix: str) -> str | None:
    for base in (CONTROL_PREFIX, f"{prefix}{CONTROL_PREFIX}" if prefix else None):
        if base and path.startswith(base):
            return path[len(base) :]
    return None


def build_server(port: int, data_dir: Path, prefix: str, config: StandinConfig) -> StandinServer:
    data_dir.mkdir(parents=True, exist_ok=True)
    api = GitHubApi(data_dir, Credentials(config))
    faults, requests = FaultBook(), RequestLog()
    state = StandinState(
        port=port,
        prefix=prefix,
        api=api,
        control=ControlContext(data_dir, prefix, api, faults, requests),
        faults=faults,
        requests=requests,
        rate_limit=RateLimit(),
    )
    return StandinServer(port, state)
