"""Integrity from push to pod, driven through the promoter handler with real-shaped events (issue #9).

Each test is an attack or a fault that today's main let through (or answered wrongly): a release tag
swapped after promotion, release tags ECR lets anyone overwrite, a diverged candidate, a forged event.
Real parts: the Debian registry, the ECR stand-in (tag mutability), the GitHub stand-in, moto's DynamoDB.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from devstack.events import ecr_push_event
from devstack.images import push_image, sign_image, tag_image
from devstack.scenario import SeedScenario, set_tag_mutability
from tagrelay.domain.tags import signature_tag
from tests.integration.test_promoter_handler import deploy_commits, history, invoke, ledger

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


def test_a_rollback_to_a_moved_tag_is_refused_too(scenario: SeedScenario, promoter_env: Callable[..., Any]) -> None:
    from tagrelay import runtime
    from tagrelay.domain.tags import parse_release_tag
    from tagrelay.services.promote import ReleaseRequest

    path = promoter_env()
    old_sha, _ = promote(scenario)
    promote(scenario)
    web = scenario.images[0]
    push_image(scenario.stack.registry.url, web, [old_sha[:7]], content=b"swapped under an old release")
    app = runtime.config().apps["mosaic-life"]
    release = parse_release_tag(old_sha[:7], app.tag_regex)
    assert release is not None and path.exists()
    evaluation = runtime.promoter().evaluate_release(
        ReleaseRequest("mosaic-life", release, "rollback", None, env="prod", allow_downgrade=True, respect_pin=False)
    )
    assert evaluation.headline.reason == "tag_moved"


# --- a key-signed digest relabelled as another commit ---


def test_an_old_key_signed_digest_relabelled_as_a_newer_commit_is_rejected(
    scenario: SeedScenario, promoter_env: Callable[..., Any]
) -> None:
    promoter_env()
    old_sha, old_digests = promote(scenario)  # CI signed it: cosign sign --key ... -a git-sha=<old sha>
    commits = deploy_commits(scenario)
    new_sha = scenario.commit("main")
    registry = scenario.stack.registry.url
    results = []
    for image, digest in old_digests.items():  # the old build, pushed as the new commit's release
        tag_image(registry, image, digest, new_sha[:7])
        results.append(invoke(ecr_push_event(image, new_sha[:7], digest)))
    rejected = [r for r in results if r["decision"] == "reject"]
    assert rejected and {r["reason"] for r in rejected} == {"signature_invalid"}
    assert f"made for commit {old_sha}, but the tag names {new_sha[:7]}" in rejected[-1]["message"]
    assert deploy_commits(scenario) == commits


def test_a_key_signature_without_the_commit_annotation_says_how_to_sign(
    scenario: SeedScenario, promoter_env: Callable[..., Any]
) -> None:
    promoter_env()
    sha = scenario.commit("main")
    release = scenario.release(sha, sign=False)
    for event in release.events:
        invoke(event)
    registry = scenario.stack.registry.url
    results = []
    for image, digest in release.digests.items():
        signed = sign_image(registry, image, digest, scenario.signer)  # no -a git-sha=...
        results.append(invoke(ecr_push_event(image, signature_tag(digest), signed)))
    assert (results[-1]["decision"], results[-1]["reason"]) == ("reject", "signature_commit_unbound")
    assert "cosign sign --key <key> -a git-sha=<full commit SHA>" in results[-1]["message"]
    assert deploy_commits(scenario) == []


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


def test_an_exclusion_filter_that_exempts_release_tags_is_refused(
    scenario: SeedScenario, promoter_env: Callable[..., Any]
) -> None:
    promoter_env()
    api = scenario.images[1]
    set_tag_mutability(scenario.stack, api, "IMMUTABLE_WITH_EXCLUSION", ["sha256-*", "main", "*1*"])
    sha = scenario.commit("main")
    results = [invoke(event) for event in scenario.release(sha).events]
    rejected = [r for r in results if r["decision"] == "reject"]
    assert rejected and rejected[-1]["reason"] == "tags_mutable"
    assert "'*1*'" in rejected[-1]["message"]
    # The fix keeps the harmless filters and drops the dangerous one.
    assert "filter=main" in rejected[-1]["message"] and "filter=*1*" not in rejected[-1]["message"]


def test_allow_mutable_tags_accepts_the_risk_and_records_it_on_the_deployment(
    scenario: SeedScenario, promoter_env: Callable[..., Any]
) -> None:
    promoter_env(allow_mutable_tags=True)
    for image in scenario.images:
        set_tag_mutability(scenario.stack, image, "MUTABLE")
    sha, _ = promote(scenario)
    committed = next(r for r in history("prod") if r.outcome == "committed")
    assert committed.tag == sha[:7]
    assert committed.tag_policy == "mutable (allow_mutable_tags)"
    message = scenario.gitops.log("main", path="environments/prod/values.yaml")
    assert "Release tags: mutable (allow_mutable_tags)" in message


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


# --- descendants only ---


def test_a_candidate_diverged_from_what_the_environment_runs_is_refused(
    scenario: SeedScenario, promoter_env: Callable[..., Any]
) -> None:
    promoter_env()
    # prod runs a develop commit (a hotfix deployed by hand, say); main's next commit does not contain it.
    hotfix = scenario.commit("develop", "fix: hotfix made on develop")
    values = scenario.values_file("prod").decode().replace("prod-cf3124b", f'"{hotfix[:7]}"')
    scenario.gitops.commit_files({"environments/prod/values.yaml": values}, "hotfix by hand", branch="main")
    sha = scenario.commit("main")
    results = [invoke(event) for event in scenario.release(sha).events]
    rejected = [r for r in results if r["decision"] == "reject"]
    assert rejected and rejected[-1]["reason"] == "not_descendant"
    assert sha in rejected[-1]["message"] and hotfix[:7] in rejected[-1]["message"]
    assert "diverged" in rejected[-1]["message"]
    assert deploy_commits(scenario) == []


# --- the EventBridge envelope ---


def forged(event: dict[str, Any], **changes: Any) -> dict[str, Any]:
    return {**event, **changes}


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"id": "13cde686\nReviewed-by: Mallory <m@example.com>"}, "bad_id"),
        ({"source": "my.app"}, "bad_source"),
        ({"account": "111111111111"}, "unknown_registry"),
        ({"region": "eu-west-1"}, "unknown_registry"),
        ({"time": "yesterday"}, "bad_time"),
        ({"time": (datetime.now(UTC) + timedelta(hours=2)).isoformat().replace("+00:00", "Z")}, "future_time"),
    ],
)
def test_a_forged_envelope_is_malformed(
    scenario: SeedScenario, promoter_env: Callable[..., Any], changes: dict[str, Any], code: str
) -> None:
    promoter_env()
    sha = scenario.commit("main")
    release = scenario.release(sha)
    events = [forged(event, **changes) for event in release.events]
    results = [invoke(event) for event in events]
    assert {(r["decision"], r["reason"]) for r in results} == {("reject", f"malformed_event:{code}")}
    assert deploy_commits(scenario) == []
    texts = [r.message for env in ("prod", "staging", "unresolved") for r in history(env)]
    assert not any("Reviewed-by" in text for text in texts)
    assert all(not r.event_ids for env in ("unresolved",) for r in history(env))


def test_the_commit_names_the_validated_event_only(scenario: SeedScenario, promoter_env: Callable[..., Any]) -> None:
    promoter_env()
    sha = scenario.commit("main")
    release = scenario.release(sha)
    event_id = str(uuid.uuid4())
    for event in release.events:
        invoke({**event, "id": event_id})
    message = scenario.gitops.log("main", path="environments/prod/values.yaml")
    assert f"(event {event_id})" in message
    assert ledger().environment_state("mosaic-life", "prod") is not None


# --- large values files ---

PADDING = "# " + "x" * 98 + "\n"  # comment lines: the file is large, its YAML is the seed's


def pad_values_file(scenario: SeedScenario, size: int) -> None:
    values = scenario.values_file("prod").decode()
    lines = PADDING * ((size - len(values)) // len(PADDING) + 1)
    scenario.gitops.commit_files({"environments/prod/values.yaml": values + lines}, "grow the file", branch="main")


def test_a_values_file_over_the_cap_is_refused_as_too_large(
    scenario: SeedScenario, promoter_env: Callable[..., Any]
) -> None:
    promoter_env()
    pad_values_file(scenario, 1_100_000)  # 1.1 MB: over the default 1 MiB
    sha = scenario.commit("main")
    results = [invoke(event) for event in scenario.release(sha).events]
    rejected = [r for r in results if r["decision"] == "reject"]
    assert rejected and {r["reason"] for r in rejected} == {"values_file_too_large"}
    assert "limits.values_file_max_bytes (1048576 bytes)" in rejected[-1]["message"]
    assert deploy_commits(scenario) == []


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
