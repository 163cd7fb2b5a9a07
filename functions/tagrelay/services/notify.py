"""Deployment notifications: subscribers of the promoter's and the tracker's deployment events.

``Notifier.publish`` hands an event to every subscriber, retrying each a few times with a short
backoff. It never raises and never changes an outcome: a notification that still fails is a WARNING
log line and a ``NotificationFailures`` metric (dimensions ``service``, ``channel``); one that is
delivered counts as ``Notifications``. The promoter publishes after the commit and its ledger record,
so no notification request is on the promotion's critical path.

Subscribers:
- ``GitHubDeployments``: one GitHub deployment per promoted release and environment on the source
  repository (``ref`` = the full SHA, ``environment`` = the environment, the GitOps commit in the
  payload), and a deployment status on every state the tracker records (in_progress, success,
  failure, error; inactive when superseded), with the Argo CD application as ``log_url``.
- ``Webhook``: a JSON document per event to a generic webhook, or ``{"text": ...}`` to a
  Slack-compatible incoming webhook; the URL comes from Secrets Manager and is never logged.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from tagrelay.config import Config
from tagrelay.domain.deployment_events import DeploymentEvent, Subscriber
from tagrelay.domain.outcome import DeploymentState
from tagrelay.domain.records import DecisionRecord
from tagrelay.ports import DeploymentRecords

logger = logging.getLogger(__name__)

METRICS_NAMESPACE = "tagrelay"
DELIVERED_METRIC = "Notifications"
FAILED_METRIC = "NotificationFailures"


def _emit(metric: str, service: str, channel: str) -> None:
    from aws_lambda_powertools.metrics import MetricUnit, single_metric

    with single_metric(name=metric, unit=MetricUnit.Count, value=1, namespace=METRICS_NAMESPACE) as emitted:
        emitted.add_dimension(name="service", value=service)
        emitted.add_dimension(name="channel", value=channel)


@dataclass
class Notifier:
    """Fan-out with retries. ``service`` is the metric dimension: promoter or tracker."""

    subscribers: Sequence[Subscriber]
    service: str
    attempts: int = 3
    backoff_seconds: float = 0.2
    sleep: Callable[[float], None] = time.sleep
    emit: Callable[[str, str, str], None] = _emit
    delivered: int = 0
    failed: int = 0

    def publish(self, event: DeploymentEvent) -> None:
        for subscriber in self.subscribers:
            self._deliver(subscriber, event)

    def _deliver(self, subscriber: Subscriber, event: DeploymentEvent) -> None:
        problem = ""
        for attempt in range(self.attempts):
            if attempt:
                self.sleep(self.backoff_seconds * 2 ** (attempt - 1))
            try:
                subscriber.notify(event)
            except Exception as error:  # any failure of a channel: retried, then counted, never raised
                problem = f"{type(error).__name__}: {str(error)[:300]}"
                continue
            self.delivered += 1
            self._count(DELIVERED_METRIC, subscriber.name)
            return
        self.failed += 1
        logger.warning(
            "notification not delivered; the deployment itself is unaffected",
            extra={
                "channel": subscriber.name,
                "app": event.app,
                "env": event.env,
                "tag": event.tag,
                "state": event.state.value,
                "attempts": self.attempts,
                "why": problem,
            },
        )
        self._count(FAILED_METRIC, subscriber.name)

    def _count(self, metric: str, channel: str) -> None:
        try:
            self.emit(metric, self.service, channel)
        except Exception:  # pragma: no cover - a metric must not break anything either
            logger.exception("could not emit the notification metric")


@dataclass
class GitHubDeployments:
    """GitHub Deployments on the app's source repository."""

    github: DeploymentRecords
    production_envs: frozenset[str] = frozenset({"prod", "production"})
    name: str = "github_deployments"

    def notify(self, event: DeploymentEvent) -> None:
        deployment_id = self.github.find_deployment(event.source_repo, event.full_sha, event.env, event.decision_id)
        if deployment_id is None:
            deployment_id = self.github.create_deployment(
                event.source_repo,
                sha=event.full_sha,
                environment=event.env,
                description=f"{event.tag} by tagrelay ({event.trigger})",
                payload=deployment_payload(event),
                production=event.env in self.production_envs,
            )
        self.github.create_deployment_status(
            event.source_repo,
            deployment_id,
            state=event.github_state,
            description=event.summary(),
            log_url=event.argocd_url,
            # Success marks the environment's earlier successful deployments inactive (GitHub's auto_inactive).
            auto_inactive=event.state is DeploymentState.SUCCEEDED,
        )


def deployment_payload(event: DeploymentEvent) -> dict[str, Any]:
    payload = {
        "tagrelay_decision_id": event.decision_id,
        "tag": event.tag,
        "gitops_repo": event.gitops_repo,
        "gitops_commit": event.gitops_commit,
        "gitops_url": event.gitops_url,
        "pull_request_url": event.pull_request_url,
        "trigger": event.trigger,
    }
    return {key: value for key, value in payload.items() if value is not None}


@dataclass
class Webhook:
    """A webhook: ``json`` posts the event as a JSON document; ``slack`` posts ``{"text": ...}`` as a Slack
    incoming webhook (and compatible chat tools) expects. ``url`` is called on first use (a secret)."""

    name: str
    url: Callable[[], str]
    style: Literal["json", "slack"]
    post: Callable[[str, dict[str, Any]], None]

    def notify(self, event: DeploymentEvent) -> None:
        self.post(self.url(), slack_message(event) if self.style == "slack" else webhook_document(event))


def webhook_document(event: DeploymentEvent) -> dict[str, Any]:
    document = {
        "app": event.app,
        "env": event.env,
        "tag": event.tag,
        "sha": event.full_sha,
        "state": event.state.value,
        "github_state": event.github_state,
        "summary": event.summary(),
        "trigger": event.trigger,
        "actor": event.actor,
        "previous_tag": event.previous_tag,
        "source_repo": event.source_repo,
        "gitops_repo": event.gitops_repo,
        "gitops_commit": event.gitops_commit,
        "gitops_url": event.gitops_url,
        "pull_request_url": event.pull_request_url,
        "argocd_app": event.argocd_app,
        "argocd_url": event.argocd_url,
        "decision_id": event.decision_id,
    }
    return {"event": "deployment", **{key: value for key, value in document.items() if value is not None}}


_EMOJI = {
    "success": ":white_check_mark:",
    "failure": ":x:",
    "error": ":warning:",
    "inactive": ":fast_forward:",
    "in_progress": ":hourglass_flowing_sand:",
}


def slack_message(event: DeploymentEvent) -> dict[str, Any]:
    """Slack's incoming-webhook body: ``text`` with mrkdwn links (<url|label>)."""
    links = [
        f"<{url}|{label}>"
        for url, label in (
            (event.gitops_url, "GitOps commit"),
            (event.pull_request_url, "pull request"),
            (event.argocd_url, "Argo CD"),
        )
        if url
    ]
    text = f"{_EMOJI.get(event.github_state, '')} {event.summary()}".strip()
    return {"text": text + (f" ({', '.join(links)})" if links else "")}


def event_from_record(
    config: Config, record: DecisionRecord, state: DeploymentState, reason: str = ""
) -> DeploymentEvent:
    """The event of a recorded deployment reaching ``state``."""
    app = config.apps[record.app]
    environment = app.environments.get(record.env)
    argocd_app = environment.argocd_app if environment else None
    argocd_url = f"{config.argocd.url}/applications/{argocd_app}" if config.argocd and argocd_app else None
    return DeploymentEvent(
        app=record.app,
        env=record.env,
        tag=record.tag or "",
        full_sha=record.full_sha or record.sha or "",
        source_repo=app.source_repo,
        state=state,
        decision_id=record.decision_id,
        trigger=record.trigger,
        gitops_repo=app.gitops.repo,
        gitops_commit=record.gitops_commit,
        gitops_url=record.gitops_url,
        reason=reason,
        previous_tag=record.previous_tag,
        actor=record.actor,
        pull_request_url=record.pull_request_url,
        argocd_app=argocd_app,
        argocd_url=argocd_url,
    )
