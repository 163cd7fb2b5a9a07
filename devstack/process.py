"""Start a local server as a child process on a free loopback port, wait until it answers, stop it by pid."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import requests


class ServerStartError(RuntimeError):
    """A local server did not come up; the message carries the tail of its log."""


def free_port() -> int:
    """A TCP port that is free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class RunningServer:
    """A child process serving HTTP at ``url``; ``stop()`` ends it (and its process group) by pid."""

    name: str
    url: str
    process: subprocess.Popen[bytes]
    log_path: Path
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self, timeout: float = 5.0) -> None:
        if self.process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=timeout)

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


# Set by `make test-unit`: the unit tests run without servers, and one that starts a server fails.
NO_SERVERS_ENV_VAR = "TAGRELAY_NO_SERVERS"


def start_server(
    name: str,
    argv: Sequence[str],
    *,
    url: str,
    ready_path: str = "/",
    log_dir: Path,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float = 30.0,
    is_ready: Callable[[requests.Response], bool] | None = None,
) -> RunningServer:
    """Start ``argv`` in its own process group, then poll ``url + ready_path`` until it answers."""
    if os.environ.get(NO_SERVERS_ENV_VAR):
        raise ServerStartError(
            f"{name}: no server may start here ({NO_SERVERS_ENV_VAR} is set by `make test-unit`); a test that "
            "needs the local stack is marked `stack` (tests/conftest.py marks those using its stack fixtures)"
        )
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{name}.log"
    log = log_path.open("wb")
    process = subprocess.Popen(
        list(argv),
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=cwd,
        env={**os.environ, **(env or {})},
        start_new_session=True,  # own process group, so stop() also ends its children
    )
    log.close()
    server = RunningServer(name=name, url=url, process=process, log_path=log_path)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ServerStartError(f"{name} exited with code {process.returncode}:\n{server.log_tail()}")
        try:
            response = requests.get(url + ready_path, timeout=1)
            if is_ready is None or is_ready(response):
                return server
        except requests.RequestException:
            pass
        time.sleep(0.05)
    server.stop()
    raise ServerStartError(f"{name} did not answer at {url}{ready_path} within {timeout:.0f}s:\n{server.log_tail()}")
