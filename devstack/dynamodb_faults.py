"""A fault-injecting front for moto's DynamoDB: the failures a local DynamoDB cannot produce on request.

boto3 reaches DynamoDB through it (``AWS_ENDPOINT_URL_DYNAMODB``, set by the local stack for the
tests, the demo and the functions on the local Lambda API). Every request is forwarded to moto
unchanged (one at a time: moto's transactions are not isolated, DynamoDB's are), unless an armed
fault matches it. A fault matches the DynamoDB operation (from the ``X-Amz-Target`` header, e.g.
``UpdateItem``; ``*`` for any) and a regular expression searched in the request's JSON body (e.g.
``"STATE"`` for the environment-state item), and answers the next ``count`` matching requests. Kinds:

* ``throttle`` — HTTP 400 ``ProvisionedThroughputExceededException``, as DynamoDB throttles a write;
  nothing is written. boto3 retries it (standard mode: 3 attempts), so ``count`` of at least the
  client's attempts makes the call fail;
* ``internal_error`` — HTTP 500 ``InternalServerError``, nothing written;
* ``lost_response`` — the request IS forwarded and applied, then the client gets HTTP 500: a write
  whose answer was lost (a timeout after DynamoDB applied it). A retry then meets its own write.

Control API (no auth, for tests and the demo only): ``GET /_faults`` lists the armed faults and the
number injected per kind, ``POST /_faults`` arms one (``{"operation", "body_regex", "count", "kind"}``),
``DELETE /_faults`` clears them (the counts stay).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import threading
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

import requests

from devstack.http_server import LoopbackHandler
from devstack.process import RunningServer, free_port, start_server

FAULT_KINDS = ("throttle", "internal_error", "lost_response")
CONTROL_PATH = "/_faults"
_JSON = "application/x-amz-json-1.0"
_ERRORS = {
    "throttle": (
        400,
        "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
        "The level of configured provisioned throughput for the table was exceeded. "
        "Consider increasing your provisioning level with the UpdateTable API.",
    ),
    "internal_error": (500, "com.amazonaws.dynamodb.v20120810#InternalServerError", "Internal server error"),
    "lost_response": (500, "com.amazonaws.dynamodb.v20120810#InternalServerError", "Internal server error"),
}
# Headers that describe one hop, not the request.
_HOP_HEADERS = frozenset({"connection", "keep-alive", "transfer-encoding", "content-length", "host"})


@dataclass
class DynamoFault:
    operation: str | None
    body_regex: re.Pattern[str]
    remaining: int
    kind: str

    def describe(self) -> dict[str, Any]:
        return {
            "operation": self.operation or "*",
            "body_regex": self.body_regex.pattern,
            "remaining": self.remaining,
            "kind": self.kind,
        }


class DynamoFaultBook:
    """Armed faults, consumed atomically (N concurrent requests meet N answers), and what was injected."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[DynamoFault] = []
        self.injected: Counter[str] = Counter()

    def arm(self, spec: Mapping[str, Any]) -> DynamoFault:
        fault = _parse(spec)
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def state(self) -> dict[str, Any]:
        with self._lock:
            return {"armed": [f.describe() for f in self._faults], "injected": dict(self.injected)}

    def take(self, operation: str, body: str) -> DynamoFault | None:
        with self._lock:
            for fault in self._faults:
                if fault.operation in (None, operation) and fault.body_regex.search(body):
                    fault.remaining -= 1
                    if fault.remaining <= 0:
                        self._faults.remove(fault)
                    self.injected[fault.kind] += 1
                    return fault
        return None


def _parse(spec: Mapping[str, Any]) -> DynamoFault:
    kind = spec.get("kind", "throttle")
    if kind not in FAULT_KINDS:
        raise ValueError(f"kind must be one of {', '.join(FAULT_KINDS)}, not {kind!r}")
    count = spec.get("count", 1)
    if not isinstance(count, int) or count < 1:
        raise ValueError(f"count must be a positive integer, not {count!r}")
    operation = spec.get("operation") or "*"
    if not isinstance(operation, str) or not re.fullmatch(r"\*|[A-Za-z]+", operation):
        raise ValueError(f"operation must be a DynamoDB operation name or '*', not {operation!r}")
    try:
        pattern = re.compile(str(spec.get("body_regex") or ""))
    except re.error as error:
        raise ValueError(f"body_regex does not compile: {error}") from error
    return DynamoFault(None if operation == "*" else operation, pattern, count, kind)


class FaultProxy(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, port: int, upstream: str) -> None:
        super().__init__(("127.0.0.1", port), _Handler)
        self.upstream = upstream.rstrip("/")
        self.faults = DynamoFaultBook()
        self._local = threading.local()
        # One request at a time to moto: moto 5.2.5 is not isolated (two transactions can both pass a
        # condition, and a cancelled one restores its tables as they were when it began, undoing what
        # concurrent requests wrote meanwhile). DynamoDB's transactions are serializable; so is this.
        self.one_at_a_time = threading.Lock()

    def session(self) -> requests.Session:
        session: requests.Session | None = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
        return session


class _Handler(LoopbackHandler):
    server: FaultProxy

    def log_message(self, format: str, *args: Any) -> None:
        pass  # one line per DynamoDB request would drown the log; faults are counted instead

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        if self.path.split("?", 1)[0].rstrip("/") == CONTROL_PATH:
            self._control(body)
            return
        operation = (self.headers.get("X-Amz-Target") or "").rpartition(".")[2]
        fault = self.server.faults.take(operation, body.decode("utf-8", errors="replace"))
        if fault is None or fault.kind == "lost_response":
            status, payload, headers = self._forward(body)
            if fault is None:
                self._send(status, payload, headers)
                return
        assert fault is not None
        status, error_type, message = _ERRORS[fault.kind]
        self._send(status, json.dumps({"__type": error_type, "message": message}).encode(), {"Content-Type": _JSON})

    def _forward(self, body: bytes) -> tuple[int, bytes, dict[str, str]]:
        headers = {name: value for name, value in self.headers.items() if name.lower() not in _HOP_HEADERS}
        with self.server.one_at_a_time:
            response = self.server.session().request(
                self.command, self.server.upstream + self.path, data=body, headers=headers, timeout=60
            )
        kept = {name: value for name, value in response.headers.items() if name.lower() not in _HOP_HEADERS}
        return response.status_code, response.content, kept

    def _control(self, body: bytes) -> None:
        faults = self.server.faults
        try:
            if self.command == "GET":
                self._send(200, json.dumps(faults.state()).encode(), {"Content-Type": "application/json"})
            elif self.command == "POST":
                spec = json.loads(body or b"{}")
                if not isinstance(spec, dict):
                    raise ValueError("the fault must be a JSON object")
                fault = faults.arm(spec)
                self._send(201, json.dumps(fault.describe()).encode(), {"Content-Type": "application/json"})
            elif self.command == "DELETE":
                faults.clear()
                self._send(204, b"", {})
            else:
                self._send(405, b"", {})
        except ValueError as error:
            self._send(422, json.dumps({"message": str(error)}).encode(), {"Content-Type": "application/json"})

    def _send(self, status: int, payload: bytes, headers: Mapping[str, str]) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


def start_dynamodb_faults(workdir: Path, upstream: str) -> RunningServer:
    """Start the proxy in front of ``upstream`` (moto's URL) on a free loopback port."""
    port = free_port()
    argv = [sys.executable, "-m", "devstack.dynamodb_faults", "--port", str(port), "--upstream", upstream]
    return start_server(
        "dynamodb-faults",
        argv,
        url=f"http://127.0.0.1:{port}",
        ready_path=CONTROL_PATH,
        log_dir=workdir,
        cwd=Path(__file__).resolve().parent.parent,
    )


class DynamoFaultControl:
    """A client of the control API."""

    def __init__(self, url: str, *, timeout: float = 10.0) -> None:
        self._url = url.rstrip("/") + CONTROL_PATH
        self._timeout = timeout
        self._session = requests.Session()

    def inject(self, *, operation: str, body_regex: str = "", count: int = 1, kind: str = "throttle") -> None:
        """Arm a fault for the next ``count`` requests of ``operation`` whose body matches ``body_regex``."""
        spec = {"operation": operation, "body_regex": body_regex, "count": count, "kind": kind}
        response = self._session.post(self._url, json=spec, timeout=self._timeout)
        if response.status_code != 201:
            raise RuntimeError(f"arming a DynamoDB fault failed ({response.status_code}): {response.text}")

    def clear(self) -> None:
        self._session.delete(self._url, timeout=self._timeout).raise_for_status()

    def state(self) -> dict[str, Any]:
        response = self._session.get(self._url, timeout=self._timeout)
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result

    def close(self) -> None:
        self._session.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", required=True, help="moto's URL")
    args = parser.parse_args(argv)
    server = FaultProxy(args.port, args.upstream)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
