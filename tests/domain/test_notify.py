"""Notifier: each channel retried with backoff, counted, and never raising into the deployment; the messages."""

from __future__ import annotations

from dataclasses import dataclass, field

from tagrelay.domain.deployment_events import DeploymentEvent
from tagrelay.domain.outcome import DeploymentState
from tagrelay.services.notify import Notifier, slack_message, webhook_document


def event(state: DeploymentState = DeploymentState.SUCCEEDED, **changes: str) -> DeploymentEvent:
    fields = {
        "app": "mosaic-life",
        "env": "prod",
        "tag": "prod-cf3124b",
        "full_sha": "cf3124b" + "0" * 33,
        "source_repo": "mosaic-stories/mosaic-life",
        "state": state,
        "decision_id": "d-1",
        "trigger": "push",
        "gitops_repo": "mosaic-stories/gitops",
        "gitops_commit": "a" * 40,
        "gitops_url": "https://github.com/mosaic-stories/gitops/commit/" + "a" * 40,
        "argocd_url": "https://argocd.example/applications/mosaic-life-prod",
        **changes,
    }
    return DeploymentEvent(**fields)  # type: ignore[arg-type]


@dataclass
class Flaky:
    name: str
    failures: int
    heard: list[DeploymentEvent] = field(default_factory=list)

    def notify(self, event: DeploymentEvent) -> None:
        if self.failures:
            self.failures -= 1
            raise ConnectionError("down")
        self.heard.append(event)


def test_each_channel_is_retried_then_counted_and_nothing_is_raised() -> None:
    recovers, dead = Flaky("recovers", failures=2), Flaky("dead", failures=99)
    sleeps: list[float] = []
    counted: list[tuple[str, str, str]] = []
    notifier = Notifier(
        [dead, recovers],
        service="tracker",
        attempts=3,
        sleep=sleeps.append,
        emit=lambda metric, service, channel: counted.append((metric, service, channel)),
    )

    notifier.publish(event())

    assert len(recovers.heard) == 1 and dead.heard == []
    assert sleeps == [0.2, 0.4, 0.2, 0.4]  # per channel: backoff between its attempts
    assert counted == [("NotificationFailures", "tracker", "dead"), ("Notifications", "tracker", "recovers")]
    assert (notifier.delivered, notifier.failed) == (1, 1)


def test_every_state_has_a_github_state_and_a_summary() -> None:
    expected = {
        DeploymentState.COMMITTED: "in_progress",
        DeploymentState.SYNCING: "in_progress",
        DeploymentState.SUCCEEDED: "success",
        DeploymentState.DEGRADED: "failure",
        DeploymentState.SYNC_FAILED: "failure",
        DeploymentState.TIMED_OUT: "error",
        DeploymentState.ENV_UNAVAILABLE: "error",
        DeploymentState.SUPERSEDED: "inactive",
    }
    assert {state: event(state).github_state for state in DeploymentState} == expected
    assert event(DeploymentState.SYNC_FAILED, reason="apply failed").summary() == (
        "mosaic-life prod-cf3124b to prod: failed to sync. apply failed"
    )


def test_messages_carry_the_links_and_no_empty_fields() -> None:
    document = webhook_document(event())
    assert document["state"] == "SUCCEEDED" and document["github_state"] == "success"
    assert "pull_request_url" not in document
    text = slack_message(event())["text"]
    assert text.startswith(":white_check_mark: mosaic-life prod-cf3124b to prod: succeeded")
    assert "<https://argocd.example/applications/mosaic-life-prod|Argo CD>" in text


def test_metric_names_are_the_stacks() -> None:
    from infra import pipeline_metrics
    from tagrelay.services import notify

    assert notify.DELIVERED_METRIC == pipeline_metrics.NOTIFICATIONS_METRIC
    assert notify.FAILED_METRIC == pipeline_metrics.NOTIFICATION_FAILURES_METRIC
