"""Deployment notifications from the promoter, on the fakes: a GitHub deployment on the source
repository (FakeGitHub's Deployments, held to the adapter by tests/contract/test_deployments.py) and
webhook messages (FakeWebhooks), all after the commit; a channel that fails is retried, never blocks or
changes the outcome, and a deployment whose creation answer was lost is found again, not made twice.

The statuses the tracker adds, and the same paths through the handlers and the local stack (the
GitHub stand-in, a webhook listener, Secrets Manager), are in tests/integration/test_notifications.py.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest

from tagrelay.config import Config
from tagrelay.services.promote import Promoter
from tests.fakes.github import Deployment
from tests.fakes.world import FakeWorld
from tests.services.support import deliver, history

NOTIFICATIONS: dict[str, Any] = {
    "github_deployments": True,
    "webhooks": [
        {"name": "team-webhook", "url_secret": "test/webhook-json"},
        {"name": "slack", "url_secret": "test/webhook-slack", "format": "slack"},
    ],
}
JSON_URL, SLACK_URL = "fake-secret-of-test/webhook-json", "fake-secret-of-test/webhook-slack"  # FakeWorld's secrets


@pytest.fixture
def config(world: FakeWorld) -> Config:
    return world.config(extra={"notifications": NOTIFICATIONS})


@pytest.fixture
def promoter(world: FakeWorld, config: Config) -> Promoter:
    return world.promoter(config)


def deployments(world: FakeWorld, sha: str) -> list[Deployment]:
    return [d for d in world.github.deployments.get(world.source_repo, []) if d.sha == sha]


def test_a_promotion_is_one_github_deployment_and_a_message_per_webhook_all_after_the_commit(
    world: FakeWorld, config: Config, promoter: Promoter
) -> None:
    sha = world.commit("main")
    release = world.release(sha)
    world.github.calls.clear()

    assert deliver(world, promoter, release.events)["decision"] == "promote"

    [record] = [r for r in history(world, "prod") if r.outcome == "committed"]
    [created] = deployments(world, sha)
    assert (created.ref, created.environment, created.production) == (sha, "prod", True)
    assert created.payload["gitops_commit"] == record.gitops_commit
    assert created.payload["tagrelay_decision_id"] == record.decision_id
    assert created.states == ["in_progress"]
    assert config.argocd is not None
    assert created.statuses[0].log_url == f"{config.argocd.url.rstrip('/')}/applications/mosaic-life-prod"
    [sent] = world.webhooks.messages(JSON_URL)
    assert (sent["state"], sent["sha"], sent["gitops_commit"]) == ("COMMITTED", sha, record.gitops_commit)
    [chat] = world.webhooks.messages(SLACK_URL)
    assert set(chat) == {"text"} and release.tag in chat["text"]
    # Budget: no notification request on the path to the commit.
    calls = world.github.calls
    assert calls.count("write_file") == 1
    assert all(i > calls.index("write_file") for i, call in enumerate(calls) if "deployment" in call), calls


def test_a_failing_channel_is_retried_and_never_blocks_or_changes_the_outcome(
    world: FakeWorld, promoter: Promoter, caplog: pytest.LogCaptureFixture
) -> None:
    world.webhooks.faults.fail("post", times=1000)  # both webhooks down for good
    world.github.faults.fail("create_deployment")  # one 5xx, retried
    sha = world.commit("main")

    with caplog.at_level(logging.WARNING, logger="tagrelay.services.notify"):
        assert deliver(world, promoter, world.release(sha).events)["decision"] == "promote"

    [record] = [r for r in history(world, "prod") if r.outcome == "committed"]
    assert record.status == "COMMITTED"
    [created] = deployments(world, sha)
    assert created.states == ["in_progress"]
    assert world.webhooks.messages() == []
    assert world.webhooks.faults.met == {"post": 6}  # 3 attempts per webhook
    assert world.sleeps == [0.2, 0.2, 0.4, 0.2, 0.4]  # the deployment's one retry, then each webhook's
    warned = [r for r in caplog.records if r.getMessage().startswith("notification not delivered")]
    assert sorted(r.__dict__["channel"] for r in warned) == ["slack", "team-webhook"]
    assert "fake-secret-of" not in caplog.text  # the webhook URLs are secrets


def test_a_deployment_whose_creation_answer_was_lost_is_found_again_not_made_twice(
    world: FakeWorld, promoter: Promoter
) -> None:
    world.github.faults.lose_answer("create_deployment")  # GitHub created it; the notifier saw a timeout
    sha = world.commit("main")

    assert deliver(world, promoter, world.release(sha).events)["decision"] == "promote"

    [created] = deployments(world, sha)
    assert created.states == ["in_progress"]
    assert world.github.faults.met == {"create_deployment": 1}
