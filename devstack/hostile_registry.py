"""A hostile registry on loopback: a real socket server in front of the real one, misbehaving on cue.

Every request is forwarded to the backend registry (the Debian registry) unchanged, except those whose
path matches a scripted misbehaviour:

* ``Drip``: answer slowly, ``interval`` seconds per byte (or per header line), like a registry behind
  a dying link or one that wants to hold the promoter until Lambda's timeout;
* ``Flood``: answer with a huge body (200 MB by default), generated as it is sent, with or without a
  Content-Length, as an error or as a 200.

It counts what it managed to send, so a test can show that the client stopped reading (the body cap
held without buffering the whole body) without measuring time. In-process (a thread), for the tests
and the benchmark; stop it with ``stop()``.
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import requests

_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "host"}


@dataclass
class Drip:
    status: int = 200
    body: bytes = b"{" + b" " * 998 + b"}"
    interval: float = 0.05
    headers_too: bool = False  # drip the header lines instead of the body
    content_type: str = "application/vnd.oci.image.manifest.v1+json"


@dataclass
class Flood:
    status: int = 500
    size: int = 200 * 1024 * 1024
    declare_length: bool = False
    content_type: str = "application/json"


@dataclass
class Served:
    path: str
    sent: int = 0  # body bytes the server managed to write before the client went away
    finished: bool = False


@dataclass
class HostileRegistry:
    backend: str
    scripts: list[tuple[re.Pattern[str], Drip | Flood]] = field(default_factory=list)
    served: list[Served] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._stopping = threading.Event()
        self._http = requests.Session()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def misbehave(self, path_pattern: str, how: Drip | Flood) -> None:
        self.scripts.append((re.compile(path_pattern), how))

    def stop(self) -> None:
        self._stopping.set()
        self._httpd.shutdown()
        self._httpd.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        hostile = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                self._serve()

            def do_HEAD(self) -> None:
                self._serve()

            def _serve(self) -> None:
                script = next((how for pattern, how in hostile.scripts if pattern.search(self.path)), None)
                served = Served(self.path)
                hostile.served.append(served)
                try:
                    if isinstance(script, Drip):
                        self._drip(script, served)
                    elif isinstance(script, Flood):
                        self._flood(script, served)
                    else:
                        self._forward(served)
                except (BrokenPipeError, ConnectionResetError, OSError):
                    self.close_connection = True  # the client gave up: what was sent is counted

            def _forward(self, served: Served) -> None:
                headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP}
                upstream = hostile._http.request(
                    self.command, hostile.backend + self.path, headers=headers, allow_redirects=False, timeout=10
                )
                self.send_response(upstream.status_code)
                for name, value in upstream.headers.items():
                    if name.lower() not in _HOP:
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(upstream.content)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(upstream.content)
                    served.sent = len(upstream.content)
                served.finished = True

            def _drip(self, drip: Drip, served: Served) -> None:
                lines = [
                    f"HTTP/1.1 {drip.status} OK\r\n",
                    f"Content-Type: {drip.content_type}\r\n",
                    f"Content-Length: {len(drip.body)}\r\n",
                    *(f"X-Padding-{n}: {'x' * 20}\r\n" for n in range(60 if drip.headers_too else 0)),
                    "\r\n",
                ]
                for line in lines:
                    self.wfile.write(line.encode())
                    self.wfile.flush()
                    if drip.headers_too and hostile._stopping.wait(drip.interval):
                        return
                if self.command == "HEAD":
                    return
                for index in range(len(drip.body)):
                    self.wfile.write(drip.body[index : index + 1])
                    self.wfile.flush()
                    served.sent += 1
                    if hostile._stopping.wait(drip.interval):
                        return
                served.finished = True

            def _flood(self, flood: Flood, served: Served) -> None:
                self.send_response(flood.status)
                self.send_header("Content-Type", flood.content_type)
                if flood.declare_length:
                    self.send_header("Content-Length", str(flood.size))
                else:
                    self.send_header("Connection", "close")  # length = until the connection closes
                    self.close_connection = True
                self.end_headers()
                chunk = b'{"errors":[{"code":"X","message":"' + b"A" * (64 * 1024) + b'"}]}'
                while served.sent < flood.size and not hostile._stopping.is_set():
                    part = chunk[: flood.size - served.sent]
                    self.wfile.write(part)
                    served.sent += len(part)
                served.finished = served.sent >= flood.size
                time.sleep(0)

            def log_message(self, format: str, *args: object) -> None:
                pass

        return Handler
