"""`tagrelay status`'s reading: per environment, what GitOps, the ledger, the registry and Argo CD say,
gathered into an EnvironmentStatus and judged by domain/drift.py.

Costs per environment: one Argo CD GET, two or three GitHub reads (the values file at the branch and
at the revision Argo CD synced), two ledger reads, and one registry HEAD per image (does the deployed
tag still point at the digest tagrelay promoted? docs/integrity.md).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from tagrelay.config import App, Config
from tagrelay.domain.decision import moved_images
from tagrelay.domain.drift import EnvironmentStatus, assess, running_tags
from tagrelay.domain.outcome import (
    AccessDenied,
    ApplicationObservation,
    AppMissing,
    ArgoCDUnreachable,
    DeploymentState,
)
from tagrelay.domain.values_patch import ValuesFileError
from tagrelay.errors import FileNotFound, TransientError
from tagrelay.ports import ArgoCD, DeploymentLedger, GitOpsStore, ImageRegistry


@dataclass
class StatusReader:
    config: Config
    github: GitOpsStore
    ledger: DeploymentLedger
    registry_for: Callable[[App], ImageRegistry]
    argocd: ArgoCD | None  # None: Argo CD is not configured, or no target names an application

    def read(self, targets: Sequence[tuple[str, str]]) -> list[EnvironmentStatus]:
        """Each (app, env), read and assessed. An outside system that fails transiently leaves that
        environment's picture incomplete (``unavailable`` says why); the others are still read."""
        return [assess(self._environment(app, env)) for app, env in targets]

    def _environment(self, app_name: str, env: str) -> EnvironmentStatus:
        app = self.config.apps[app_name]
        environment = app.environments[env]
        path = app.gitops.values_path(env)
        status = EnvironmentStatus(app=app_name, env=env, values_file=f"{app.gitops.repo}:{path}@{app.gitops.branch}")
        status.argocd_configured = self.config.argocd is not None
        status.argocd_app = environment.argocd_app
        try:
            status.gitops_tag = self._tag_at(app, path, app.gitops.branch)
            promoted = self._ledger(status)
            status.moved = self._moved(app, status.ledger_tag, promoted)
            if self.argocd is not None and environment.argocd_app:
                observation = self.argocd.observe_application(environment.argocd_app, environment.argocd_project)
                self._argocd_side(status, app, path, observation)
        except TransientError as exc:
            status.unavailable = str(exc)
        return status

    def _argocd_side(
        self,
        status: EnvironmentStatus,
        app: App,
        path: str,
        observation: ApplicationObservation | AppMissing | AccessDenied | ArgoCDUnreachable,
    ) -> None:
        if isinstance(observation, ArgoCDUnreachable):
            status.unavailable = f"Argo CD unreachable: {observation.reason}"
            return
        if isinstance(observation, AccessDenied):
            status.unavailable = (
                f"Argo CD refuses application {observation.name} (HTTP 403 {observation.message}): the token lacks"
                " `applications, get` on it" + ("" if observation.project else ", or it does not exist")
            )
            return
        if isinstance(observation, AppMissing):
            status.unavailable = f"Argo CD has no application {observation.name} (HTTP {observation.status_code})"
            return
        status.sync_status = observation.sync_status
        status.health, status.health_message = observation.health_status, observation.health_message
        status.running = running_tags(app, observation.images)
        # What Argo CD last synced is its newest history entry; sync.revision(s) is only what it compared
        # (the new commit already, while OutOfSync). Multi-source apps list one revision per source: the
        # GitOps one is where our values file exists.
        newest = max(observation.history, key=lambda entry: entry.id or 0, default=None)
        revisions = newest.revisions if newest is not None else observation.sync_revisions
        for revision in revisions:
            tag = self._tag_at(app, path, revision)
            if tag is not None:
                status.synced_revision, status.synced_tag = revision, tag
                return
        status.synced_revision = next(iter(revisions), None)

    def _tag_at(self, app: App, path: str, ref: str) -> str | None:
        try:
            content = self.github.read_file(app.gitops.repo, path, ref).content.decode("utf-8", errors="replace")
        except FileNotFound:
            return None
        try:
            return app.gitops_format.read(content).tag
        except ValuesFileError:
            return None

    def _ledger(self, status: EnvironmentStatus) -> dict[str, str]:
        """Fill in tagrelay's current deployment; returns the digests it was committed with."""
        state = self.ledger.environment_state(status.app, status.env)
        if state is None or state.current_decision_id is None or state.committed_at is None:
            return {}
        status.ledger_tag, status.ledger_commit = state.current_tag, state.gitops_commit
        record = self.ledger.decision(status.app, status.env, state.committed_at, state.current_decision_id)
        status.ledger_status = (record.status or DeploymentState.COMMITTED) if record is not None else None
        return dict(record.digests) if record is not None else {}

    def _moved(self, app: App, tag: str | None, promoted: dict[str, str]) -> dict[str, list[str]]:
        """Where the deployed tag points now, per image, where that is not what was promoted (one HEAD each)."""
        if tag is None or not promoted:
            return {}
        registry = self.registry_for(app)
        now = {image: registry.resolve_tag(image, tag) for image in promoted if image in app.images}
        # A tag gone from an image (deleted) is not a move, as for the sweep (services/reconcile.py).
        moved = moved_images(promoted, {image: digest for image, digest in now.items() if digest})
        return {image: [was, is_now] for image, (was, is_now) in moved.items()}
