"""Integrity from push to pod, driven through the promoter handler with real-shaped events (issue #9).

Each test is an attack or a fault end to end: a release tag swapped after promotion (and what status
shows), release tags ECR lets anyone overwrite (and how often ECR is asked), a values file over 1 MB
(GitHub's blob API), too little of the invocation left. Real parts: the Debian registry, the ECR
stand-in (tag mutability), the GitHub stand-in, moto's DynamoDB. The other integrity checks (a
relabelled or unbound signature, exclusion filters, allow_mutable_tags, descendants only, the
EventBridge envelope, the size cap) run on the fakes: tests/services/test_promote.py.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from devstack.events import ecr_push_event
from devstack.images import push_image
from devstack.scenario import SeedScenario, set_tag_mutability
from tests.integration.test_promoter_handler import deploy_commits, history, invoke

pytestmark = pytest.mark.stack


def promote(scenario: SeedScenario, branch: str = "main") -> tuple[str, dict[str, str]]:
    """A release pushed, signed and promoted like CI and tagrelay do; returns its SHA and digests."""
    sha = scenario.commit(branch)
    release = scenario.release(sha, branch=branch)
    decisions = [invoke(event)["decision"] for event in release.events]
    assert "promote" in decisions, decisions
    return sha, release.digests


# --- a release tag swapped after promotion ---


def test_a_promoted_tag_pushed_again_with_another_image_is_a_recorded_tag_moved_rejection(
    scenario: SeedScenario, promoter_env: Callable[..., Any]
) -> None:
    promoter_env()
    sha, digests = promote(scenario)
    commits = deploy_commits(scenario)
    web = scenario.images[0]

    # An attacker with push rights (or a delete and re-push, which even an immutable ECR repository
    # allows) points the promoted tag at an unsigned image.
    swapped = push_image(scenario.stack.registry.url, web, [sha[:7]], content=b"not what was verified")
    result = invoke(ecr_push_event(web, sha[:7], swapped))

    assert (result["decision"], result["reason"]) == ("reject", "tag_moved")
    assert digests[web] in result["message"] and swapped in result["message"]
    assert deploy_commits(scenario) == commits  # nothing committed on that tag
    record = next(r for r in history("prod") if r.reason == "tag_moved")
    assert record.outcome == "rejected"
    assert record.promoted_digests[web] == digests[web]
    assert record.digests[web] == swapped


def test_status_shows_a_moved_tag_as_a_disagreement(
    scenario: SeedScenario, tracker_env: Callable[..., Any], capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    from tagrelay.cli.main import main

    setup = tracker_env()
    sha, digests = promote(scenario)
    web = scenario.images[0]
    swapped = push_image(scenario.stack.registry.url, web, [sha[:7]], content=b"swapped after promotion")
    capsys.readouterr()
    main(["status", "--env", "prod", "--output", "json", "--config", str(setup.config_path)])
    [prod] = json.loads(capsys.readouterr().out)
    assert prod["moved"] == {web: [digests[web], swapped]}
    assert prod["agree"] is False
    assert any(f"{web}:{sha[:7]} moved" in problem and "tag_moved" in problem for problem in prod["problems"])


# --- release tags ECR lets anyone overwrite ---


def test_a_mutable_repository_is_refused_with_the_command_that_fixes_it(
    scenario: SeedScenario, promoter_env: Callable[..., Any]
) -> None:
    promoter_env()
    web = scenario.images[0]
    set_tag_mutability(scenario.stack, web, "MUTABLE")
    sha = scenario.commit("main")
    release = scenario.release(sha)
    results = [invoke(event) for event in release.events]
    rejected = [r for r in results if r["decision"] == "reject"]

    assert rejected and {r["reason"] for r in rejected} == {"tags_mutable"}
    message = rejected[-1]["message"]
    assert f"repository {web}" in message
    assert (
        f"aws ecr put-image-tag-mutability --registry-id 033691785857 --region us-east-1 --repository-name {web} "
        "--image-tag-mutability IMMUTABLE_WITH_EXCLUSION --image-tag-mutability-exclusion-filters "
        "'filterType=WILDCARD,filter=sha256-*' filterType=WILDCARD,filter=main filterType=WILDCARD,filter=develop"
    ) in message
    assert "allow_mutable_tags: true" in message
    assert scenario.images[1] not in message.split("Or accept")[0]  # the immutable one is not blamed
    assert deploy_commits(scenario) == []


def test_an_immutable_repository_is_read_once_per_cache_period(
    scenario: SeedScenario, promoter_env: Callable[..., Any]
) -> None:
    from tagrelay import runtime

    promoter_env()
    scenario.stack.ecr_calls(clear=True)
    promote(scenario)
    promote(scenario)
    calls = [c for c in scenario.stack.ecr_calls() if c["operation"] == "DescribeRepositories"]
    # One request for both repositories of the app, for all the events of two releases.
    assert len(calls) == 1
    assert calls[0]["body"]["repositoryNames"] == list(scenario.images)
    committed = next(r for r in history("prod") if r.outcome == "committed")
    assert committed.tag_policy == "immutable"
    assert runtime.promoter().deps.ecr_for(runtime.config().apps["mosaic-life"]) is not None


# --- large values files ---

PADDING = "# " + "x" * 98 + "\n"  # comment lines: the file is large, its YAML is the seed's


def pad_values_file(scenario: SeedScenario, size: int) -> None:
    values = scenario.values_file("prod").decode()
    lines = PADDING * ((size - len(values)) // len(PADDING) + 1)
    scenario.gitops.commit_files({"environments/prod/values.yaml": values + lines}, "grow the file", branch="main")


def test_a_values_file_over_1_mb_is_read_through_the_blob_api_and_edited(
    scenario: SeedScenario, promoter_env: Callable[..., Any]
) -> None:
    promoter_env(extra={"limits": {"values_file_max_bytes": 4 * 1024 * 1024}})
    pad_values_file(scenario, 1_100_000)
    before = scenario.values_file("prod")
    sha = scenario.commit("main")
    scenario.stack.github_control.clear_requests()
    decisions = [invoke(event)["decision"] for event in scenario.release(sha).events]
    assert "promote" in decisions
    after = scenario.values_file("prod")
    assert after == before.replace(b"imageTag: prod-cf3124b", f'imageTag: "{sha[:7]}"'.encode())
    paths = [r["path"] for r in scenario.stack.github_control.requests()]
    assert any("/git/blobs/" in path for path in paths), paths


# --- the Lambda's remaining time ---


def test_too_little_time_left_raises_before_the_commit_starts(
    scenario: SeedScenario, promoter_env: Callable[..., Any]
) -> None:
    from devstack.lambda_context import lambda_context
    from tagrelay.errors import TransientError
    from tagrelay.handlers.promoter import handler

    promoter_env()
    sha = scenario.commit("main")
    events = scenario.release(sha).events  # every piece is pushed: any of its events completes the release
    with pytest.raises(TransientError, match=r"limits.commit_reserve_seconds"):
        handler(events[0], lambda_context("promoter", remaining_ms=5_000))
    assert deploy_commits(scenario) == []
    assert invoke(events[0])["decision"] == "promote"  # Lambda's retry, with time enough
