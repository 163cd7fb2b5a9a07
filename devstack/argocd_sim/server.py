"""HTTP front of the simulator: Argo CD's application API (bearer auth, grpc-gateway errors) and ``/_sim/``.

Order for an API request: a matching injected fault answers first (it stands for a proxy or a
crashing server in front of Argo CD), then authentication, then the route. Every API request is
logged (``GET /_sim/requests``) so tests can count what one tracker run cost. Control routes under
``/_sim/`` need no token; Argo CD has nothing like them.
"""

from __future__ import annotations

import json
import re
import ssl
import threading
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from devstack.argocd_sim.config import Mark, SimApp, SimConfig, app_from_json, check_mark
from devstack.argocd_sim.model import SimConflict, SimulatedApp
from devstack.http_server import LoopbackHandler

API_PREFIX = "/api/v1/applications"
CONTROL_PREFIX = "/_sim/"
MAX_BODY = 1024 * 1024
_JWT_SHAPE = re.compile(r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$")
# grpc status codes that Argo CD's grpc-gateway puts in error bodies.
GRPC_INVALID_ARGUMENT, GRPC_NOT_FOUND, GRPC_PERMISSION_DENIED, GRPC_FAILED_PRECONDITION = 3, 5, 7, 9
GRPC_UNAVAILABLE, GRPC_UNAUTHENTICATED = 14, 16


@dataclass(frozen=True)
class Reply:
    status: int
    body: Any = None
    delay: float = 0.0


def grpc_error(status: int, code: int, message: str) -> Reply:
    return Reply(status, {"error": message, "code": code, "message": message})


class SimClock:
    """Wall time, or (manual) a time that moves only when told; both can be skipped ahead."""

    def __init__(self, manual: bool, start: float | None = None) -> None:
        self.manual = manual
        self._base = (start if start is not None else float(int(time.time()))) if manual else 0.0
        self._offset = 0.0

    def now(self) -> float:
        return (self._base if self.manual else time.time()) + self._offset

    def skip(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("time only moves forward")
        self._offset += seconds

    def describe(self) -> dict[str, Any]:
        now = self.now()
        return {"now": datetime.fromtimestamp(now, UTC).isoformat(), "epoch": now, "manual": self.manual}


@dataclass
class Fault:
    remaining: int
    status: int | None
    delay_seconds: float
    path_regex: re.Pattern[str]
    body: Any = None

    def reply(self) -> Reply | None:
        if self.status is None:
            return None
        body = self.body if self.body is not None else {"error": "upstream unavailable", "code": GRPC_UNAVAILABLE}
        return Reply(self.status, body)


@dataclass
class Simulator:
    config: SimConfig
    clock: SimClock
    apps: dict[str, SimulatedApp] = field(default_factory=dict)
    # Every application's spec: the configuration's, plus those registered at run time (POST /_sim/apps).
    specs: dict[str, SimApp] = field(default_factory=dict)
    marks: dict[str, Mark] = field(default_factory=dict)
    requests: list[dict[str, Any]] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    # Applications the token may no longer get (an RBAC policy changed): 403 whatever the project.
    denied: set[str] = field(default_factory=set)
    repo_server_up: bool = True
    lock: threading.RLock = field(default_factory=threading.RLock)

    @classmethod
    def from_config(cls, config: SimConfig) -> Simulator:
        start = datetime.fromisoformat(config.start_time).timestamp() if config.start_time else None
        simulator = cls(config=config, clock=SimClock(config.manual_clock, start), marks=dict(config.marks))
        for spec in config.apps:
            simulator.specs[spec.name] = spec
            simulator.apps[spec.name] = simulator._new_app(spec.name)
        return simulator

    def _new_app(self, name: str) -> SimulatedApp:
        return SimulatedApp.create(
            self.specs[name], self.config.timing, self.marks.get, self.clock.now(), lambda: self.repo_server_up
        )

    def register(self, spec: SimApp) -> SimulatedApp:
        """Add (or re-create) an application at run time: it starts synced to its branch head, Healthy."""
        self.specs[spec.name] = spec
        self.apps[spec.name] = self._new_app(spec.name)
        return self.apps[spec.name]

    def forget(self, name: str) -> None:
        """Drop an application entirely, so that ticks and settles no longer read its repository."""
        self.apps.pop(name, None)
        self.specs.pop(name, None)

    # ------------------------------------------------------------------------------------ dispatch

    def handle(self, method: str, raw_path: str, headers: Mapping[str, str], body: bytes) -> Reply:
        url = urlsplit(raw_path)
        query = parse_qsl(url.query, keep_blank_values=True)
        if url.path.startswith(CONTROL_PREFIX):
            return self._control(method, url.path[len(CONTROL_PREFIX) :].strip("/"), body)
        with self.lock:
            reply = self._api(method, url.path, query, headers.get("Authorization"))
            self.requests.append(
                {
                    "method": method,
                    "path": url.path,
                    "query": url.query,
                    "status": reply.status,
                    "at": self.clock.now(),
                }
            )
            return reply

    def _api(self, method: str, path: str, query: Sequence[tuple[str, str]], authorization: str | None) -> Reply:
        delay = 0.0
        fault = next((f for f in self.faults if f.path_regex.search(path)), None)
        if fault is not None:
            fault.remaining -= 1
            if fault.remaining <= 0:
                self.faults.remove(fault)
            delay = fault.delay_seconds
            injected = fault.reply()
            if injected is not None:
                return Reply(injected.status, injected.body, delay)
        reply = self._authorized(method, path, query, authorization)
        return Reply(reply.status, reply.body, delay) if delay else reply

    def _authorized(self, method: str, path: str, query: Sequence[tuple[str, str]], authorization: str | None) -> Reply:
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not _JWT_SHAPE.match(token.strip()):
            # Argo CD only reads the header if it parses as a JWT; otherwise there is no session at all.
            return grpc_error(401, GRPC_UNAUTHENTICATED, "no session information")
        if token.strip() != self.config.token:
            return grpc_error(401, GRPC_UNAUTHENTICATED, "invalid session: token signature is invalid")
        params = _multi(query)
        if path.rstrip("/") == API_PREFIX and method == "GET":
            return self._list(params)
        if path.startswith(API_PREFIX + "/") and method in ("GET", "POST"):
            name = unquote(path[len(API_PREFIX) + 1 :])
            if name and "/" not in name:
                return self._get(name, params)
        return grpc_error(404, GRPC_NOT_FOUND, "Not Found")

    def _get(self, name: str, params: Mapping[str, list[str]]) -> Reply:
        projects = params.get("project", []) + params.get("projects", [])
        app = self.apps.get(name)
        if name in self.denied:
            # No `applications, get` on <project>/<name>: 403 with or without a project
            # (server/application/application.go getAppEnforceRBAC).
            return grpc_error(403, GRPC_PERMISSION_DENIED, "permission denied")
        if app is None or not app.present or (projects and app.spec.project not in projects):
            if projects:
                message = f'applications.argoproj.io "{name}" not found'
                return grpc_error(404, GRPC_NOT_FOUND, message)
            # Deliberately indistinguishable from "no access" (CVE-2022-41354).
            return grpc_error(403, GRPC_PERMISSION_DENIED, "permission denied")
        if "refresh" in params:
            app.refresh(self.clock.now())
        else:
            app.advance(self.clock.now())
        return Reply(200, app.render(resource_health=True))

    def _list(self, params: Mapping[str, list[str]]) -> Reply:
        try:
            matches = _selector(params.get("selector", [""])[0])
        except ValueError as error:
            return grpc_error(400, GRPC_INVALID_ARGUMENT, str(error))
        name = params.get("name", [""])[0]
        projects = params.get("project", []) + params.get("projects", [])
        now = self.clock.now()
        items = []
        for app in sorted(self.apps.values(), key=lambda a: a.spec.name):
            if not app.present or (name and app.spec.name != name) or (projects and app.spec.project not in projects):
                continue
            if app.spec.name in self.denied:
                continue  # List leaves out what the token may not get
            if not matches(app.spec.labels):
                continue
            app.advance(now)
            items.append(app.render(resource_health=False))  # List leaves resources[].health empty (appTree)
        version = sum(app.resource_version for app in self.apps.values())
        return Reply(200, {"metadata": {"resourceVersion": str(version)}, "items": items})

    # ------------------------------------------------------------------------------------ control

    def _control(self, method: str, route: str, body: bytes) -> Reply:
        try:
            payload = json.loads(body) if body.strip() else {}
            if not isinstance(payload, dict):
                raise ValueError("body must be a JSON object")
            with self.lock:
                return self._control_route(method, route, payload)
        except (ValueError, TypeError) as error:
            return Reply(422, {"message": str(error)})

    def _control_route(self, method: str, route: str, payload: dict[str, Any]) -> Reply:  # noqa: PLR0911, PLR0912, PLR0915 - the route table of the simulator's control API: one case per route
        parts = route.split("/")
        match (method, parts):
            case ("GET", ["health"]):
                return Reply(200, {"ok": True})
            case ("GET", ["clock"]):
                return Reply(200, self.clock.describe())
            case ("POST", ["tick"]):
                self.clock.skip(float(payload.get("seconds", self.config.timing.poll_interval)))
                self._advance_all()
                return Reply(200, self.clock.describe())
            case ("POST", ["settle"]):
                return Reply(200, self._settle(float(payload.get("max_seconds", 3600))))
            case ("GET", ["marks"]):
                return Reply(200, dict(self.marks))
            case ("POST", ["marks"]):
                tag, mark = str(payload.get("tag") or ""), payload.get("mark")
                if mark is None:
                    self.marks.pop(tag, None)
                else:
                    self.marks[tag] = check_mark(tag, str(mark))
                return Reply(200, dict(self.marks))
            case ("DELETE", ["marks"]):
                self.marks.clear()
                return Reply(204)
            case ("POST", ["apps"]):
                return Reply(201, _describe(self.register(app_from_json(payload))))
            case ("DELETE", ["apps", name]):
                self.forget(name)
                return Reply(204)
            case ("GET", ["apps"]):
                self._advance_all()
                return Reply(200, {name: _describe(app) for name, app in sorted(self.apps.items())})
            case ("GET", ["apps", name]) if name in self.apps:
                app = self.apps[name]
                app.advance(self.clock.now())
                return Reply(200, {**_describe(app), "application": app.render(resource_health=True)})
            case ("POST", ["apps", name, "remove"]) if name in self.apps:
                self.apps[name].present = False  # like `just stage-down`: Argo CD no longer knows it
                return Reply(200, _describe(self.apps[name]))
            case ("POST", ["apps", name, "restore"]) if name in self.apps:
                self.apps[name] = self._new_app(name)  # re-created: syncs whatever the branch holds now
                return Reply(200, _describe(self.apps[name]))
            case ("POST", ["apps", name, "auto-sync"]) if name in self.apps:
                app = self.apps[name]
                app.advance(self.clock.now())
                app.auto_sync = bool(payload.get("enabled", True))
                return Reply(200, _describe(app))
            case ("POST", ["apps", name, "sync"]) if name in self.apps:
                return self._operate(
                    name, lambda app, now: app.manual_sync(now, payload.get("revision"), _user(payload))
                )
            case ("POST", ["apps", name, "rollback"]) if name in self.apps:
                history_id = int(payload.get("id", 0))
                return self._operate(name, lambda app, now: app.rollback(now, history_id, _user(payload)))
            case ("POST", ["apps", name, "chart-error"]) if name in self.apps:
                message = payload.get("message")
                self.apps[name].advance(self.clock.now())
                self.apps[name].chart_error = str(message) if message else None
                return Reply(200, _describe(self.apps[name]))
            case ("POST", ["permissions"]):
                app_name = str(payload.get("app") or "")
                if payload.get("allowed", True):
                    self.denied.discard(app_name)
                else:
                    self.denied.add(app_name)
                return Reply(200, {"denied": sorted(self.denied)})
            case ("POST", ["repo-server"]):
                self._advance_all()
                self.repo_server_up = bool(payload.get("up", True))
                return Reply(200, {"up": self.repo_server_up})
            case ("GET", ["requests"]):
                return Reply(200, {"requests": list(self.requests)})
            case ("DELETE", ["requests"]):
                self.requests.clear()
                return Reply(204)
            case ("POST", ["faults"]):
                status = payload.get("status")
                fault = Fault(
                    remaining=int(payload.get("count", 1)),
                    status=int(status) if status is not None else None,
                    delay_seconds=float(payload.get("delay_seconds", 0)),
                    path_regex=re.compile(str(payload.get("path_regex", "^/api/"))),
                    body=payload.get("body"),
                )
                self.faults.append(fault)
                return Reply(201, {"remaining": fault.remaining})
            case ("DELETE", ["faults"]):
                self.faults.clear()
                return Reply(204)
        return Reply(404, {"message": f"no control route {method} {CONTROL_PREFIX}{route}"})

    def _operate(self, name: str, action: Callable[[SimulatedApp, float], None]) -> Reply:
        try:
            action(self.apps[name], self.clock.now())
        except SimConflict as error:
            return Reply(409, {"message": str(error), "code": GRPC_FAILED_PRECONDITION})
        return Reply(200, _describe(self.apps[name]))

    def _advance_all(self) -> None:
        now = self.clock.now()
        for app in self.apps.values():
            if app.present:
                app.advance(now)

    def _settle(self, max_seconds: float) -> dict[str, Any]:
        """Skip time, event by event, until no application has work left (or ``max_seconds`` passed)."""
        start = now = self.clock.now()
        self._advance_all()
        while True:
            busy = [app for app in self.apps.values() if app.present and app.has_pending_work()]
            if not busy:
                break
            due = min(app.next_change_at() for app in busy)
            if due - start > max_seconds:
                break
            self.clock.skip(max(0.0, due - now))
            now = self.clock.now()
            self._advance_all()
        return {**self.clock.describe(), "settled": not busy}


def _describe(app: SimulatedApp) -> dict[str, Any]:
    return {
        "present": app.present,
        "phase": app.rollout.phase.value if app.rollout else "idle",
        "sync_status": app.sync_status,
        "health": app.health,
        "deployed_commit": app.deployed_commit,
        "deployed_tag": app.deployed_tag,
        "failed_commit": app.failed_commit,
        "auto_sync": app.auto_sync,
        "history": [{"id": item.id, "commit": item.commit} for item in app.history],
    }


def _user(payload: Mapping[str, Any]) -> str:
    return str(payload.get("username") or "admin")


def _multi(query: Sequence[tuple[str, str]]) -> dict[str, list[str]]:
    params: dict[str, list[str]] = {}
    for key, value in query:
        params.setdefault(key, []).append(value)
    return params


@dataclass(frozen=True)
class _Requirement:
    key: str
    operator: str  # "=", "!=", "exists", "!exists"
    value: str = ""

    def holds(self, labels: Mapping[str, str]) -> bool:
        match self.operator:
            case "=":
                return labels.get(self.key) == self.value
            case "!=":
                return labels.get(self.key) != self.value
            case "exists":
                return self.key in labels
        return self.key not in labels


def _selector(expression: str) -> Callable[[Mapping[str, str]], bool]:
    """The equality subset of Kubernetes label selectors: ``k=v``, ``k==v``, ``k!=v``, ``k``, ``!k``."""
    requirements: list[_Requirement] = []
    for term in filter(None, (t.strip() for t in expression.split(","))):
        if "!=" in term:
            key, value = term.split("!=", 1)
            requirements.append(_Requirement(key.strip(), "!=", value.strip()))
        elif "=" in term:
            key, value = term.replace("==", "=").split("=", 1)
            requirements.append(_Requirement(key.strip(), "=", value.strip()))
        elif re.fullmatch(r"!?[A-Za-z0-9_./-]+", term):
            negated = term.startswith("!")
            requirements.append(_Requirement(term.lstrip("!"), "!exists" if negated else "exists"))
        else:
            raise ValueError(f"unable to parse requirement: {term!r}")
    return lambda labels: all(requirement.holds(labels) for requirement in requirements)


class SimServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def __init__(self, port: int, simulator: Simulator) -> None:
        super().__init__(("127.0.0.1", port), SimHandler)
        self.simulator = simulator


class SimHandler(LoopbackHandler):
    server: SimServer

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(min(length, MAX_BODY)) if length > 0 else b""
        try:
            reply = self.server.simulator.handle(self.command, self.path, dict(self.headers.items()), body)
        except Exception:
            traceback.print_exc()
            reply = grpc_error(500, 13, "internal error in the simulator")
        if reply.delay:
            time.sleep(reply.delay)  # outside the lock: other requests go on meanwhile
        payload = b"" if reply.body is None else json.dumps(reply.body).encode()
        self.send_response(reply.status)
        if payload:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


def build_server(port: int, config: SimConfig) -> SimServer:
    return SimServer(port, Simulator.from_config(config))


def build_tls_server(port: int, simulator: Simulator, cert_file: str, key_file: str) -> SimServer:
    """A second listener on the same simulator that speaks HTTPS with the configured certificate."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    server = SimServer(port, simulator)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    return server
