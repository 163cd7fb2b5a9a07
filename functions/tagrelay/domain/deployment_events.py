"""Domain events of a deployment: what the promoter and the tracker announce, and what subscribers hear.

The promoter announces a deployment once its commit (or merged pull request) is recorded; the tracker
announces each state it records after that. Subscribers (services/notify.py: GitHub Deployments, a
webhook, a Slack-compatible webhook) are wired in runtime.py; they never decide anything, and nothing
they do can change or delay an outcome.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

from tagrelay.domain.outcome import DeploymentState

GitHubDeploymentState = Literal["error", "failure", "inactive", "in_progress", "queued", "pending", "success"]

# tagrelay's deployment state -> GitHub's deployment status state (docs.github.com/rest/deployments/statuses).
GITHUB_STATE: dict[DeploymentState, GitHubDeploymentState] = {
    DeploymentState.COMMITTED: "in_progress",
    DeploymentState.SYNCING: "in_progress",
    DeploymentState.SUCCEEDED: "success",
    DeploymentState.DEGRADED: "failure",
    DeploymentState.SYNC_FAILED: "failure",
    DeploymentState.TIMED_OUT: "error",
    DeploymentState.ENV_UNAVAILABLE: "error",
    DeploymentState.SUPERSEDED: "inactive",
}


@dataclass(frozen=True)
class DeploymentEvent:
    """A deployment reached ``state`` (COMMITTED when the promoter recorded it)."""

    app: str
    env: str
    tag: str
    full_sha: str  # the source commit
    source_repo: str
    state: DeploymentState
    decision_id: str
    trigger: str  # push | manual | rollback
    gitops_repo: str
    gitops_commit: str | None
    gitops_url: str | None
    reason: str = ""  # why, in the tracker's words (Argo CD's phase and message)
    previous_tag: str | None = None
    actor: str | None = None
    pull_request_url: str | None = None
    argocd_app: str | None = None
    argocd_url: str | None = None  # the application in Argo CD's UI

    @property
    def github_state(self) -> GitHubDeploymentState:
        return GITHUB_STATE[self.state]

    def summary(self) -> str:
        """One line for a chat message or a status description."""
        what = {
            DeploymentState.COMMITTED: "committed",
            DeploymentState.SYNCING: "syncing",
            DeploymentState.SUCCEEDED: "succeeded",
            DeploymentState.DEGRADED: "degraded",
            DeploymentState.SYNC_FAILED: "failed to sync",
            DeploymentState.TIMED_OUT: "timed out",
            DeploymentState.SUPERSEDED: "superseded",
            DeploymentState.ENV_UNAVAILABLE: "environment unavailable",
        }[self.state]
        line = f"{self.app} {self.tag} to {self.env}: {what}"
        if self.previous_tag and self.state is DeploymentState.COMMITTED:
            line += f" (was {self.previous_tag})"
        return f"{line}. {self.reason}".strip() if self.reason else line


class Subscriber(Protocol):
    """Hears deployment events. ``name`` labels its metrics; ``notify`` may raise: the caller retries and
    counts, and never lets a failure reach the deployment."""

    @property
    def name(self) -> str: ...

    def notify(self, event: DeploymentEvent) -> None: ...
