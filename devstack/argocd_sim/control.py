"""Start the simulator as a child process, and drive it through ``/_sim/`` (for tests and the demo)."""

from __future__ import annotations

import base64
import json
import secrets
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import requests

from devstack.argocd_sim.config import Mark, SimApp, SimConfig, app_to_json
from devstack.process import RunningServer, free_port, start_server


def make_token(subject: str = "tagrelay") -> str:
    """A token shaped like an Argo CD account API key (a JWT); only the simulator accepts it."""

    def segment(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data, separators=(",", ":")).encode()).rstrip(b"=").decode()

    now = int(time.time())
    claims = {"iss": "argocd", "sub": f"{subject}:apiKey", "nbf": now, "iat": now, "jti": secrets.token_hex(16)}
    signature = base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode()
    return f"{segment({'alg': 'HS256', 'typ': 'JWT'})}.{segment(claims)}.{signature}"


def start_argocd_sim(workdir: Path, config: SimConfig) -> RunningServer:
    """Start ``python -m devstack.argocd_sim`` on a free loopback port; stop it with ``server.stop()``.

    The token to send is ``config.token`` (also in ``server.extra["token"]``). With TLS files in the
    configuration the API is also served at ``server.extra["tls_url"]``; control stays on plain HTTP.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    config_path = workdir / f"argocd-sim-{port}.json"
    config.dump(config_path)
    argv = [sys.executable, "-m", "devstack.argocd_sim", "--port", str(port), "--config", str(config_path)]
    tls_port = free_port() if config.tls_cert_file else None
    if tls_port is not None:
        argv += ["--tls-port", str(tls_port)]
    server = start_server(
        "argocd-sim",
        argv,
        url=f"http://127.0.0.1:{port}",
        ready_path="/_sim/health",
        log_dir=workdir,
    )
    server.extra["token"] = config.token
    server.extra["config"] = str(config_path)
    if tls_port is not None:
        server.extra["tls_url"] = f"https://127.0.0.1:{tls_port}"
    return server


class SimulatorError(RuntimeError):
    """The control API refused a call; the message carries its answer."""


class ArgoCDSimControl:
    """The simulator's control API: time, marks, apps, faults and the request log."""

    def __init__(self, url: str, timeout: float = 30.0) -> None:
        self.url = url.rstrip("/")
        self._timeout = timeout
        self._session = requests.Session()

    # time
    def now(self) -> datetime:
        return _clock(self._call("GET", "clock"))

    def tick(self, seconds: float) -> datetime:
        """Move the clock ``seconds`` ahead (the only way it moves in manual-clock mode) and apply what fell due."""
        return _clock(self._call("POST", "tick", {"seconds": seconds}))

    def settle(self, max_seconds: float = 3600) -> datetime:
        """Skip ahead until every application has finished what it was doing; raises if it never does."""
        answer = self._call("POST", "settle", {"max_seconds": max_seconds})
        if not answer["settled"]:
            raise SimulatorError(f"applications still busy after {max_seconds} simulated seconds")
        return _clock(answer)

    # what happens to a tag when it is deployed
    def mark(self, tag: str, mark: Mark) -> None:
        self._call("POST", "marks", {"tag": tag, "mark": mark})

    def unmark(self, tag: str) -> None:
        self._call("POST", "marks", {"tag": tag, "mark": None})

    def clear_marks(self) -> None:
        self._call("DELETE", "marks")

    # applications
    def app(self, name: str) -> dict[str, Any]:
        """Phase, deployed commit and tag, and the full Application JSON (no auth)."""
        answer: dict[str, Any] = self._call("GET", f"apps/{name}")
        return answer

    def add_app(self, spec: SimApp) -> dict[str, Any]:
        """Register an application at run time (or re-create one): it starts synced to its branch head."""
        answer: dict[str, Any] = self._call("POST", "apps", app_to_json(spec))
        return answer

    def forget_app(self, name: str) -> None:
        """Drop an application entirely (unlike ``remove_app``, which keeps it for ``restore_app``)."""
        self._call("DELETE", f"apps/{name}")

    def remove_app(self, name: str) -> None:
        self._call("POST", f"apps/{name}/remove")

    def restore_app(self, name: str) -> None:
        self._call("POST", f"apps/{name}/restore")

    # what users and the cluster do
    def set_auto_sync(self, name: str, enabled: bool) -> None:
        """Turn ``spec.syncPolicy.automated`` on or off: without it Argo CD compares but never syncs by itself."""
        self._call("POST", f"apps/{name}/auto-sync", {"enabled": enabled})

    def sync(self, name: str, revision: str | None = None, *, username: str = "admin") -> dict[str, Any]:
        """``argocd app sync NAME [--revision R]`` by ``username`` (the branch head without a revision)."""
        answer: dict[str, Any] = self._call("POST", f"apps/{name}/sync", {"revision": revision, "username": username})
        return answer

    def rollback(self, name: str, history_id: int, *, username: str = "admin") -> dict[str, Any]:
        """``argocd app rollback NAME ID`` by ``username`` (refused while auto-sync is on, as by Argo CD)."""
        answer: dict[str, Any] = self._call("POST", f"apps/{name}/rollback", {"id": history_id, "username": username})
        return answer

    def set_chart_error(self, name: str, message: str | None) -> None:
        """Make the chart (source 1) fail to render whatever the values say; None repairs it."""
        self._call("POST", f"apps/{name}/chart-error", {"message": message})

    def set_permission(self, name: str, allowed: bool) -> None:
        """Take away (or give back) the token's ``applications, get`` on one application: 403 from then on."""
        self._call("POST", "permissions", {"app": name, "allowed": allowed})

    def set_repo_server(self, up: bool) -> None:
        """Stop (or restart) the repo-server: comparisons fail, reported after the controller's grace period."""
        self._call("POST", "repo-server", {"up": up})

    # request log and faults
    def requests(self) -> list[dict[str, Any]]:
        entries: list[dict[str, Any]] = self._call("GET", "requests")["requests"]
        return entries

    def clear_requests(self) -> None:
        self._call("DELETE", "requests")

    def inject_fault(
        self, status: int | None = 503, *, count: int = 1, delay_seconds: float = 0.0, path_regex: str = "^/api/"
    ) -> None:
        """Answer the next ``count`` API requests matching ``path_regex`` with ``status`` (None: serve, but late)."""
        body = {"status": status, "count": count, "delay_seconds": delay_seconds, "path_regex": path_regex}
        self._call("POST", "faults", body)

    def clear_faults(self) -> None:
        self._call("DELETE", "faults")

    def close(self) -> None:
        self._session.close()

    def _call(self, method: str, route: str, body: dict[str, Any] | None = None) -> Any:
        response = self._session.request(method, f"{self.url}/_sim/{route}", json=body, timeout=self._timeout)
        if response.status_code >= 400:
            raise SimulatorError(f"{method} /_sim/{route}: {response.status_code} {response.text}")
        return response.json() if response.content else None


def _clock(answer: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(answer["now"])
