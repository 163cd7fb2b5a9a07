"""Deployment notifications, through the promoter and tracker handlers on the local stack.

A promotion creates one GitHub deployment on the source repository (ref = the full SHA, the GitOps
commit in its payload) with a status per state the tracker records, and posts to a generic webhook and
a Slack-compatible one (their URLs are Secrets Manager secrets) received by a local listener. A channel
that fails is retried, counted, and never blocks or changes the outcome; no notification request is
made before the commit.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from ruamel.yaml import YAML

from devstack.scenario import SeedScenario
from devstack.stack import GITHUB_TOKEN, LocalStack
from devstack.webhook_listener import WebhookListener
from tests.tracking.support import Configure, TrackerSetup, deployment, promote, track

pytestmark = pytest.mark.stack
_secrets = itertools.count()


@pytest.fixture
def listener() -> Iterator[WebhookListener]:
    server = WebhookListener()
    yield server
    server.close()


def with_notifications(stack: LocalStack, setup: TrackerSetup, listener: WebhookListener) -> None:
    """Turn notifications on in the configuration the fixture wrote (webhook URLs as secrets)."""
    from tagrelay import runtime

    secrets = stack.aws_client("secretsmanager")
    number = next(_secrets)
    for name in ("json", "slack"):
        secrets.create_secret(Name=f"test/webhook-{name}-{number}", SecretString=listener.url(f"/{name}") + "\n")
    yaml = YAML()
    data = yaml.load(setup.config_path.read_text())
    data["notifications"] = {
        "github_deployments": True,
        "webhooks": [
            {"name": "team-webhook", "url_secret": f"test/webhook-json-{number}"},
            {"name": "slack", "url_secret": f"test/webhook-slack-{number}", "format": "slack"},
        ],
    }
    with setup.config_path.open("w") as stream:
        yaml.dump(data, stream)
    runtime.config.cache_clear()
    runtime.promoter.cache_clear()
    runtime.tracker.cache_clear()
    runtime.promoter().deps.clock = setup.control.now
    runtime.tracker().deps.clock = setup.control.now


def github_get(stack: LocalStack, path: str) -> Any:
    answer = requests.get(f"{stack.github.url}{path}", headers={"Authorization": f"token {GITHUB_TOKEN}"}, timeout=10)
    answer.raise_for_status()
    return answer.json()


def deployments(stack: LocalStack, scenario: SeedScenario, sha: str) -> list[dict[str, Any]]:
    return list(github_get(stack, f"/repos/{scenario.source_repo}/deployments?sha={sha}"))


def states(stack: LocalStack, scenario: SeedScenario, deployment_id: int) -> list[str]:
    """Its statuses, oldest first."""
    found = github_get(stack, f"/repos/{scenario.source_repo}/deployments/{deployment_id}/statuses")
    return [status["state"] for status in reversed(found)]


def test_a_promotion_is_a_github_deployment_with_a_status_per_state_and_webhook_messages(
    stack: LocalStack, scenario: SeedScenario, tracker_env: Configure, listener: WebhookListener
) -> None:
    setup = tracker_env()
    with_notifications(stack, setup, listener)
    control = stack.github_control
    control.clear_requests()

    first = promote(scenario, setup)

    (created,) = deployments(stack, scenario, first.sha)
    record = deployment("prod", first.tag)
    assert (created["ref"], created["sha"], created["environment"]) == (first.sha, first.sha, "prod")
    assert created["payload"]["gitops_commit"] == record.gitops_commit
    assert created["payload"]["tagrelay_decision_id"] == record.decision_id
    assert states(stack, scenario, created["id"]) == ["in_progress"]
    # Budget: every notification request comes after the commit (none on the path to it).
    log = [(entry["method"], entry["path"]) for entry in control.requests()]
    commit_at = next(i for i, (method, path) in enumerate(log) if method == "PUT" and "/contents/" in path)
    assert all(i > commit_at for i, (_, path) in enumerate(log) if "/deployments" in path), log

    setup.control.tick(10)
    track()
    setup.control.settle()
    track()

    assert deployment("prod", first.tag).status == "SUCCEEDED"
    assert states(stack, scenario, created["id"]) == ["in_progress", "in_progress", "success"]
    latest = github_get(stack, f"/repos/{scenario.source_repo}/deployments/{created['id']}/statuses")[0]
    assert latest["log_url"] == f"{stack.argocd.url}/applications/{setup.apps['prod']}"
    sent = listener.messages("/json")
    assert [m["state"] for m in sent] == ["COMMITTED", "SYNCING", "SUCCEEDED"]
    assert sent[0]["gitops_commit"] == record.gitops_commit and sent[0]["sha"] == first.sha
    slack = listener.messages("/slack")
    assert len(slack) == 3 and set(slack[0]) == {"text"}
    assert f"mosaic-life {first.tag} to prod: succeeded" in slack[2]["text"]

    # A newer release that succeeds makes the older deployment inactive.
    second = promote(scenario, setup)
    setup.control.tick(10)
    track()
    setup.control.settle()
    track()
    (newer,) = deployments(stack, scenario, second.sha)
    assert states(stack, scenario, newer["id"])[-1] == "success"
    assert states(stack, scenario, created["id"])[-1] == "inactive"


def test_a_failing_channel_is_retried_counted_and_never_blocks_the_deployment(
    stack: LocalStack,
    scenario: SeedScenario,
    tracker_env: Configure,
    listener: WebhookListener,
    capsys: pytest.CaptureFixture[str],
) -> None:
    setup = tracker_env()
    with_notifications(stack, setup, listener)
    listener.fail_next(1000, status=503)  # both webhooks down for good
    stack.github_control.inject(method="POST", path_regex=r"/deployments$", status=502, count=1)  # one 502, retried

    heard: list[logging.LogRecord] = []

    class Heard(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            heard.append(record)

    handler = Heard(logging.WARNING)
    notify_logger = logging.getLogger("tagrelay.services.notify")
    notify_logger.addHandler(handler)
    try:
        release = promote(scenario, setup)
    finally:
        notify_logger.removeHandler(handler)

    assert deployment("prod", release.tag).status == "COMMITTED"
    (created,) = deployments(stack, scenario, release.sha)
    assert states(stack, scenario, created["id"]) == ["in_progress"]
    out = capsys.readouterr()
    assert out.out.count('"NotificationFailures"') >= 2  # one per webhook (EMF), after its attempts
    warnings = [r for r in heard if r.getMessage().startswith("notification not delivered")]
    assert sorted(r.__dict__["channel"] for r in warnings) == ["slack", "team-webhook"]
    assert all("HTTP 503" in r.__dict__["why"] and r.levelno == logging.WARNING for r in warnings)
    everything = out.out + out.err
    assert listener.url("/json") not in everything and listener.url("/slack") not in everything  # secrets
    assert listener.messages() == []
