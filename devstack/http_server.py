"""What every local HTTP stand-in shares: a keep-alive handler that dispatches every method to ``_serve``."""

from __future__ import annotations

import sys
from http.server import BaseHTTPRequestHandler
from typing import Any


class LoopbackHandler(BaseHTTPRequestHandler):
    """Keep-alive (a requests Session reuses connections), no Nagle, one ``_serve`` for every method."""

    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes; with Nagle on, the body waits for the client's delayed ACK
    # of the headers (~40 ms on Linux loopback) on every small response.
    disable_nagle_algorithm = True

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def do_PUT(self) -> None:
        self._serve()

    def do_PATCH(self) -> None:
        self._serve()

    def do_DELETE(self) -> None:
        self._serve()

    def log_message(self, format: str, *args: Any) -> None:
        # The request line holds no secrets: tokens travel in headers, which are never logged.
        sys.stderr.write(f"{self.log_date_time_string()} {format % args}\n")

    def _serve(self) -> None:
        raise NotImplementedError
