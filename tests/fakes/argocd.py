"""FakeArgoCD: the ArgoCD port over Application documents held in memory.

A test puts an Application document (Argo CD's JSON, as the simulator or a captured fixture has it)
under its name; reads parse it with the same parser the adapter uses (domain/outcome.py), so what the
tracker sees is what it would see over HTTP. The answers follow Argo CD's API server:

* with ``?project=`` an unknown application, or one in another project, is 404 (AppMissing); without
  it, 403 (AccessDenied), on purpose (server/application/application.go, getAppEnforceRBAC);
* an application the token may not get is 403; a malformed document is MisconfiguredError;
* ``unreachable`` makes every read raise TransientError (observe_application: ArgoCDUnreachable);
* ``refresh`` records each nudge and answers ``refresh_answer``;
* ``asked`` lists every application read, (name, project), so tests count the requests per application;
* ``before_request``, when set, is told of each request first, as the simulator's server moves its
  applications to "now" before answering (tests/fakes/argocd_apps.py).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from tagrelay.domain.outcome import (
    AccessDenied,
    ApplicationObservation,
    AppMissing,
    ArgoCDUnreachable,
    MalformedApplication,
    parse_application,
)
from tagrelay.errors import MisconfiguredError, TransientError
from tests.fakes.faults import Faults

PERMISSION_DENIED = "permission denied"


@dataclass
class FakeArgoCD:
    documents: dict[str, dict[str, Any]] = field(default_factory=dict)
    denied: set[str] = field(default_factory=set)
    unreachable: bool = False
    refresh_answer: bool = True
    refreshed: list[tuple[str, str | None]] = field(default_factory=list)
    request_count: int = 0
    closed: int = 0
    faults: Faults = field(default_factory=lambda: Faults("argocd"))
    asked: list[tuple[str, str | None]] = field(default_factory=list)
    before_request: Callable[[str, str, str | None], None] | None = None  # (method, name, project)

    def put(self, document: Mapping[str, Any]) -> None:
        """Serve ``document`` as the application its metadata.name names."""
        self.documents[str(document["metadata"]["name"])] = dict(document)

    def remove(self, name: str) -> None:
        self.documents.pop(name, None)

    # --- the port ---

    def get_application(
        self, name: str, project: str | None = None
    ) -> ApplicationObservation | AppMissing | AccessDenied:
        self._call("get_application", name, project)
        self.asked.append((name, project))
        document = self.documents.get(name)
        in_project = document is not None and (project is None or _project(document) == project)
        if name in self.denied or (document is None and project is None):
            return AccessDenied(name=name, project=project, message=PERMISSION_DENIED)
        if document is None or not in_project:
            return AppMissing(name=name, status_code=404, message=f'applications.argoproj.io "{name}" not found')
        try:
            return parse_application(document)
        except MalformedApplication as error:
            raise MisconfiguredError("argocd", f"unexpected answer: {error}") from None

    def observe_application(
        self, name: str, project: str | None = None
    ) -> ApplicationObservation | AppMissing | AccessDenied | ArgoCDUnreachable:
        try:
            return self.get_application(name, project)
        except TransientError as error:
            return ArgoCDUnreachable(str(error))

    def list_applications(
        self, selector: str | None = None, names: Collection[str] | None = None
    ) -> list[ApplicationObservation]:
        if selector:
            raise NotImplementedError("FakeArgoCD lists by name only")
        self._call("list_applications", "", None)
        wanted = set(names) if names is not None else None
        return [
            parse_application(document)
            for name, document in sorted(self.documents.items())
            if name not in self.denied and (wanted is None or name in wanted)
        ]

    def refresh(self, name: str, project: str | None = None) -> bool:
        self.request_count += 1
        self.refreshed.append((name, project))
        if self.before_request is not None and not self.unreachable:
            self.before_request("refresh", name, project)
        return self.refresh_answer and not self.unreachable

    def close(self) -> None:
        self.closed += 1

    def __enter__(self) -> FakeArgoCD:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, method: str, name: str, project: str | None) -> None:
        self.request_count += 1
        if self.unreachable:
            raise TransientError("argocd", "unreachable: connection refused")
        self.faults.before(method)
        if self.before_request is not None:
            self.before_request(method, name, project)


def _project(document: Mapping[str, Any]) -> str | None:
    spec = document.get("spec")
    project = spec.get("project") if isinstance(spec, Mapping) else None
    return project if isinstance(project, str) else None
