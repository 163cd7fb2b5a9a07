"""A local stand-in for the AWS Lambda ``Invoke`` API, so that boto3's Lambda client (the `tagrelay`
command's operator path) reaches tagrelay's handlers on the local stack exactly as it reaches AWS.

    python -m devstack.lambda_api --port P --log-dir DIR

Lambda API (what boto3 calls; botocore's lambda model, API version 2015-03-31):

    POST /2015-03-31/functions/{FunctionName}/invocations
         X-Amz-Invocation-Type: RequestResponse (default) | Event | DryRun
         X-Amz-Log-Type: None | Tail
      -> 200 the handler's JSON result; a handler that raised: 200 with X-Amz-Function-Error: Unhandled
         and {"errorMessage", "errorType", "stackTrace"}; 202 for Event, 204 for DryRun;
         404 ResourceNotFoundException for an unknown function; 400 InvalidRequestContentException
         for a body that is not JSON. FunctionName may be a name, a name:qualifier or a function ARN.

Control API (the local stack's; AWS has CDK for this):

    PUT    /_local/functions/{name}  {"handler": "pkg.module.attr", "environment": {...}, "timeout_seconds": 120}
    DELETE /_local/functions/{name}
    GET    /_local/health

Each function runs in its own **child process** (a warm "execution environment"), started on its
first invocation with the server's environment plus the function's, and kept for the next ones.
A process per function, rather than the handler in the server itself, because each function needs
its own environment (``TAGRELAY_CONFIG`` differs per test, and the handlers cache what they build
from it per process, as a warm Lambda does); because a handler that crashes or hangs must not take
the server with it (the server answers like Lambda: ``Unhandled``, ``Sandbox.Timedout``); and
because it keeps the stack's one rule: every server is a child process stopped by its pid (the
workers are in the server's process group, so stopping the server stops them too).

Invocations of one function run one at a time (one execution environment; AWS would start more).
IAM is not simulated: any request is accepted, the way moto accepts any credentials; tagrelay's
operator path verifies the caller itself (adapters/identity.py), against moto's STS.

``DEVSTACK_PROMOTER_CLOCK_URL`` in a function's environment (the Argo CD simulator's URL) makes the
worker's promoter read the simulator's manual clock, as the tests' in-process promoter does
(tests/conftest.py ``tracker_env``), so that records made through this API share the tests' timeline.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import importlib
import json
import os
import select
import signal
import subprocess
import sys
import threading
import traceback
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import FrameType
from typing import Any
from urllib.parse import unquote, urlsplit

import requests

from devstack.process import RunningServer, free_port, start_server

ACCOUNT = "123456789012"
REGION = "us-east-1"
INVOKE_PREFIX = "/2015-03-31/functions/"
CONTROL_PREFIX = "/_local/functions/"
CLOCK_ENV_VAR = "DEVSTACK_PROMOTER_CLOCK_URL"
DEFAULT_TIMEOUT_SECONDS = 120.0
_LOG_TAIL_BYTES = 4096


def function_arn(name: str) -> str:
    return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}"


def function_name(path_segment: str) -> str:
    """A name, ``name:qualifier``, a full or partial ARN -> the function's name (qualifiers are ignored)."""
    value = unquote(path_segment)
    if ":function:" in value:
        value = value.split(":function:", 1)[1]
    elif value.count(":") >= 2:  # partial ARN: 123456789012:function:name
        value = value.split(":")[-1]
    return value.split(":", 1)[0]


# --------------------------------------------------------------------------------------------------
# The worker: one process per function, one invocation at a time over pipes.


def worker_main(handler_path: str) -> int:
    """Run in the child: read one JSON request per line on stdin, answer one JSON line on the result pipe.

    The handler's own stdout (Powertools' JSON logs and metrics) goes to stderr, the function's log.
    """
    results = os.fdopen(os.dup(sys.stdout.fileno()), "w", encoding="utf-8")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    module_name, _, attribute = handler_path.rpartition(".")
    handler: Callable[[Any, Any], Any] = getattr(importlib.import_module(module_name), attribute)
    clock_ready = False
    for line in sys.stdin:
        request = json.loads(line)
        if not clock_ready:
            _use_simulator_clock()
            clock_ready = True
        try:
            result = {"ok": True, "result": handler(request["event"], _context(request))}
        except Exception as exc:
            result = {
                "ok": False,
                "errorType": type(exc).__name__,
                "errorMessage": str(exc),
                "stackTrace": traceback.format_exception(exc)[-10:],
            }
        results.write(json.dumps(result, default=str) + "\n")
        results.flush()
    return 0


def _context(request: Mapping[str, Any]) -> Any:
    from devstack.lambda_context import FakeLambdaContext

    name = str(request["function"])
    return FakeLambdaContext(
        function_name=name, invoked_function_arn=function_arn(name), aws_request_id=str(request["request_id"])
    )


def _use_simulator_clock() -> None:
    url = os.environ.get(CLOCK_ENV_VAR)
    if not url:
        return
    from devstack.argocd_sim import ArgoCDSimControl
    from tagrelay import runtime

    runtime.promoter().deps.clock = ArgoCDSimControl(url).now


@dataclass
class _Function:
    name: str
    handler: str
    environment: dict[str, str]
    timeout: float
    log_path: Path
    lock: threading.Lock = field(default_factory=threading.Lock)
    process: subprocess.Popen[bytes] | None = None

    def invoke(self, event: Any, request_id: str) -> tuple[dict[str, Any], str]:
        """The worker's answer and the log lines it wrote meanwhile. Caller holds ``lock``."""
        log_start = self.log_path.stat().st_size if self.log_path.exists() else 0
        process = self._running()
        assert process.stdin is not None and process.stdout is not None
        line = json.dumps({"event": event, "request_id": request_id, "function": self.name}) + "\n"
        try:
            process.stdin.write(line.encode())
            process.stdin.flush()
            ready, _, _ = select.select([process.stdout], [], [], self.timeout)
            if not ready:
                self.stop()
                answer = _error("Sandbox.Timedout", f"Task timed out after {self.timeout:.2f} seconds")
            else:
                raw = process.stdout.readline()
                answer = json.loads(raw) if raw else _exit_error(process)
        except (BrokenPipeError, ValueError):
            answer = _exit_error(process)
        if process.poll() is not None:
            self.process = None  # the next invocation starts a new one (a cold start)
        return answer, self._log_since(log_start)

    def _running(self) -> subprocess.Popen[bytes]:
        if self.process is None or self.process.poll() is not None:
            log = self.log_path.open("ab")
            self.process = subprocess.Popen(
                [sys.executable, "-m", "devstack.lambda_api", "--worker", self.handler],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                env={**os.environ, **self.environment},
            )
            log.close()
        return self.process

    def _log_since(self, start: int) -> str:
        try:
            with self.log_path.open("rb") as log:
                log.seek(start)
                return log.read()[-_LOG_TAIL_BYTES:].decode(errors="replace")
        except OSError:
            return ""

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        self.process = None


def _error(error_type: str, message: str) -> dict[str, Any]:
    return {"ok": False, "errorType": error_type, "errorMessage": message, "stackTrace": []}


def _exit_error(process: subprocess.Popen[bytes]) -> dict[str, Any]:
    code = process.poll()
    return _error("Runtime.ExitError", f"the function's process exited (status {code}); see its log")


# --------------------------------------------------------------------------------------------------
# The HTTP server.


class LambdaApi(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, port: int, log_dir: Path) -> None:
        super().__init__(("127.0.0.1", port), _Handler)
        self.log_dir = log_dir
        self.functions: dict[str, _Function] = {}
        self.registry_lock = threading.Lock()

    def register(self, name: str, spec: Mapping[str, Any]) -> None:
        handler = spec.get("handler")
        environment = spec.get("environment", {})
        if not isinstance(handler, str) or "." not in handler:
            raise ValueError("handler must be 'package.module.function'")
        if not isinstance(environment, dict) or not all(isinstance(v, str) for v in environment.values()):
            raise ValueError("environment must map names to strings")
        timeout = float(spec.get("timeout_seconds", DEFAULT_TIMEOUT_SECONDS))
        function = _Function(name, handler, dict(environment), timeout, self.log_dir / f"lambda-{name}.log")
        with self.registry_lock:
            previous = self.functions.pop(name, None)
            self.functions[name] = function
        if previous is not None:
            with previous.lock:
                previous.stop()

    def unregister(self, name: str) -> bool:
        with self.registry_lock:
            function = self.functions.pop(name, None)
        if function is None:
            return False
        with function.lock:
            function.stop()
        return True

    def shutdown_functions(self) -> None:
        for function in list(self.functions.values()):
            function.stop()


class _Handler(BaseHTTPRequestHandler):
    server: LambdaApi
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        sys.stderr.write(f"lambda-api: {self.command} {self.path} {args[1] if len(args) > 1 else ''}\n")

    def do_GET(self) -> None:
        if urlsplit(self.path).path == "/_local/health":
            self._json(HTTPStatus.OK, {"functions": sorted(self.server.functions)})
        else:
            self._error(HTTPStatus.NOT_FOUND, "UnknownOperationException", f"no route {self.path}")

    def do_PUT(self) -> None:
        path = urlsplit(self.path).path
        if not path.startswith(CONTROL_PREFIX):
            self._error(HTTPStatus.NOT_FOUND, "UnknownOperationException", f"no route {self.path}")
            return
        try:
            self.server.register(unquote(path[len(CONTROL_PREFIX) :]), json.loads(self._body() or b"{}"))
        except ValueError as exc:
            self._error(HTTPStatus.BAD_REQUEST, "InvalidParameterValueException", str(exc))
            return
        self._json(HTTPStatus.OK, {"registered": unquote(path[len(CONTROL_PREFIX) :])})

    def do_DELETE(self) -> None:
        path = urlsplit(self.path).path
        if path.startswith(CONTROL_PREFIX) and self.server.unregister(unquote(path[len(CONTROL_PREFIX) :])):
            self._json(HTTPStatus.OK, {})
        else:
            self._error(HTTPStatus.NOT_FOUND, "ResourceNotFoundException", f"no route or function {self.path}")

    def do_POST(self) -> None:
        path = urlsplit(self.path).path
        if not (path.startswith(INVOKE_PREFIX) and path.endswith("/invocations")):
            self._body()
            self._error(HTTPStatus.NOT_FOUND, "UnknownOperationException", f"no route {self.path}")
            return
        name = function_name(path[len(INVOKE_PREFIX) : -len("/invocations")])
        body = self._body()
        function = self.server.functions.get(name)
        if function is None:
            self._error(HTTPStatus.NOT_FOUND, "ResourceNotFoundException", f"Function not found: {function_arn(name)}")
            return
        try:
            event = json.loads(body) if body else {}
        except ValueError:
            self._error(
                HTTPStatus.BAD_REQUEST,
                "InvalidRequestContentException",
                "Could not parse request body into json: the payload is not JSON",
            )
            return
        invocation_type = self.headers.get("X-Amz-Invocation-Type", "RequestResponse")
        request_id = str(uuid.uuid4())
        if invocation_type == "DryRun":
            self._send(HTTPStatus.NO_CONTENT, b"", {"x-amzn-RequestId": request_id})
        elif invocation_type == "Event":
            threading.Thread(target=self._run, args=(function, event, request_id), daemon=True).start()
            self._send(HTTPStatus.ACCEPTED, b"", {"x-amzn-RequestId": request_id})
        elif invocation_type == "RequestResponse":
            answer, log = self._run(function, event, request_id)
            headers = {"x-amzn-RequestId": request_id, "X-Amz-Executed-Version": "$LATEST"}
            if self.headers.get("X-Amz-Log-Type") == "Tail":
                headers["X-Amz-Log-Result"] = base64.b64encode(log.encode()).decode()
            if answer.get("ok"):
                payload = answer.get("result")
            else:
                headers["X-Amz-Function-Error"] = "Unhandled"
                payload = {k: answer[k] for k in ("errorMessage", "errorType", "stackTrace")}
            self._send(HTTPStatus.OK, json.dumps(payload).encode(), {**headers, "Content-Type": "application/json"})
        else:
            self._error(
                HTTPStatus.BAD_REQUEST, "InvalidParameterValueException", f"invalid invocation type {invocation_type!r}"
            )

    @staticmethod
    def _run(function: _Function, event: Any, request_id: str) -> tuple[dict[str, Any], str]:
        with function.lock:
            return function.invoke(event, request_id)

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _json(self, status: HTTPStatus, data: Any) -> None:
        self._send(status, json.dumps(data).encode(), {"Content-Type": "application/json"})

    def _error(self, status: HTTPStatus, error_type: str, message: str) -> None:
        # The Lambda service's error shape: botocore reads the code from x-amzn-ErrorType.
        body = json.dumps({"Type": "User", "message": message}).encode()
        self._send(status, body, {"Content-Type": "application/json", "x-amzn-ErrorType": error_type})

    def _send(self, status: HTTPStatus, body: bytes, headers: Mapping[str, str]) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


# --------------------------------------------------------------------------------------------------
# Starting it (from the local stack) and registering functions.


def start_lambda_api(workdir: Path, *, env: Mapping[str, str]) -> RunningServer:
    """Start the server on a free loopback port; ``env`` is every function's base environment."""
    port = free_port()
    argv = [sys.executable, "-m", "devstack.lambda_api", "--port", str(port), "--log-dir", str(workdir)]
    return start_server(
        "lambda-api",
        argv,
        url=f"http://127.0.0.1:{port}",
        ready_path="/_local/health",
        log_dir=workdir,
        env=dict(env),
        cwd=Path(__file__).resolve().parent.parent,
    )


class LambdaApiControl:
    def __init__(self, url: str, *, timeout: float = 30.0) -> None:
        self.url = url.rstrip("/")
        self._timeout = timeout

    def register(
        self,
        name: str,
        handler: str,
        environment: Mapping[str, str],
        *,
        timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
    ) -> None:
        body = {"handler": handler, "environment": dict(environment), "timeout_seconds": timeout_seconds}
        response = requests.put(f"{self.url}{CONTROL_PREFIX}{name}", json=body, timeout=self._timeout)
        response.raise_for_status()

    def unregister(self, name: str) -> None:
        requests.delete(f"{self.url}{CONTROL_PREFIX}{name}", timeout=self._timeout)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack.lambda_api", description=__doc__)
    parser.add_argument("--port", type=int, help="port on 127.0.0.1")
    parser.add_argument("--log-dir", type=Path, default=Path("."), help="where each function's log goes")
    parser.add_argument("--worker", metavar="HANDLER", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return worker_main(args.worker)
    if args.port is None:
        parser.error("--port is required")
    server = LambdaApi(args.port, args.log_dir)
    print(f"Lambda API on http://127.0.0.1:{args.port}", flush=True)
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        with contextlib.suppress(Exception):
            server.shutdown_functions()
        server.server_close()
    return 0


def _interrupt(_signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    sys.exit(main())
