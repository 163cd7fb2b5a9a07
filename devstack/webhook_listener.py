"""A local webhook receiver: keeps every JSON document POSTed to it (the demo's chat channel, the tests').

Runs in a thread of the calling process (it only listens on loopback). ``fail_next(n, status)`` makes the
next n requests answer an error, to show that a failing channel is retried and never blocks a deployment.
"""

from __future__ import annotations

import json
import threading
from http.server import ThreadingHTTPServer
from typing import Any

from devstack.http_server import LoopbackHandler


class _Handler(LoopbackHandler):
    server: _Server

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        with self.server.lock:
            failing = self.server.failures > 0
            if failing:
                self.server.failures -= 1
            else:
                try:
                    self.server.received.append({"path": self.path, "body": json.loads(body or b"null")})
                except json.JSONDecodeError:
                    self.server.received.append({"path": self.path, "body": body.decode(errors="replace")})
        status = self.server.failure_status if failing else 200
        payload = b"error" if failing else b"ok"
        self.send_response(status)
        self.send_header("content-type", "text/plain")
        self.send_header("content-length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the tests read ``received``; a log line per message would only be noise


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.lock = threading.Lock()
        self.received: list[dict[str, Any]] = []
        self.failures = 0
        self.failure_status = 500


class WebhookListener:
    """``url(path)`` is where to point a webhook; ``messages(path)`` what arrived there, in order."""

    def __init__(self) -> None:
        self._server = _Server()
        self._thread = threading.Thread(target=self._server.serve_forever, name="webhook-listener", daemon=True)
        self._thread.start()

    def url(self, path: str = "/hook") -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}{path}"

    def messages(self, path: str | None = None) -> list[Any]:
        with self._server.lock:
            return [entry["body"] for entry in self._server.received if path is None or entry["path"] == path]

    def fail_next(self, count: int, status: int = 500) -> None:
        with self._server.lock:
            self._server.failures, self._server.failure_status = count, status

    def clear(self) -> None:
        with self._server.lock:
            self._server.received.clear()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
