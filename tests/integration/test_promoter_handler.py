"""The promoter Lambda handler, driven with real-shaped ECR events against the local stack.

Real parts only: the Debian registry holds real images and cosign signatures, the GitHub stand-in
commits into a real git repository through PyGithub, the ledger is DynamoDB on moto server. One test
per kind of outcome end to end (a commit, a wait, a rejection, a supersession, ignored and malformed
events) and the faults of the real clients; every check and reason is tested on the fakes
(tests/services/test_promote.py).
"""

from __future__ import annotations

import difflib
import random
from collections.abc import Callable
from typing import Any

import pytest

from devstack.events import ecr_push_event
from devstack.images import CosignKeySigner, sign_image
from devstack.lambda_context import lambda_context
from devstack.scenario import SeedScenario
from devstack.stack import LocalStack
from tagrelay.adapters.store import Ledger

pytestmark = pytest.mark.stack


def invoke(event: dict[str, Any]) -> dict[str, Any]:
    from tagrelay.handlers.promoter import handler

    result: dict[str, Any] = handler(event, lambda_context("promoter"))
    return result


def deliver(events: list[dict[str, Any]]) -> dict[str, Any]:
    """Deliver every event; return the last result that decided something other than wait or noop.

    Level-triggered: once the release is complete every event re-evaluates it, so a rejection repeats
    with the same reason, while a promotion happens exactly once (the others find it already done).
    """
    results = [invoke(event) for event in events]
    deciding = [r for r in results if r["decision"] not in ("wait", "noop")]
    assert len({(r["decision"], r["reason"]) for r in deciding}) <= 1, [(r["decision"], r["reason"]) for r in results]
    assert [r["decision"] for r in deciding].count("promote") <= 1
    decided = deciding[-1] if deciding else results[-1]
    if decided["decision"] == "reject":
        recorded = {(r.outcome, r.reason) for env in ("prod", "staging", "unresolved") for r in history(env)}
        assert ("rejected", decided["reason"]) in recorded, recorded
    return decided


def ledger() -> Ledger:
    return Ledger("tagrelay-ledger")


def history(env: str) -> list[Any]:
    return ledger().history("mosaic-life", env, limit=100).records


def deploy_commits(scenario: SeedScenario) -> list[str]:
    """Subjects of our deploy commits on the GitOps repository, oldest first."""
    log = scenario.gitops.log("main")
    return [line.strip() for line in log.splitlines() if "update image tag to" in line and "deploy(" in line][::-1]


def test_a_signed_two_image_release_becomes_one_byte_exact_commit(
    scenario: SeedScenario, promoter_env: Callable[..., Any]
) -> None:
    promoter_env()
    before = scenario.values_file("prod")
    sha = scenario.commit("main")
    release = scenario.release(sha, branch="main")

    events = [*release.events, release.events[0]]  # a duplicate delivery too
    random.Random(7).shuffle(events)
    decisions = [invoke(event)["decision"] for event in events]

    assert decisions.count("promote") == 1
    after = scenario.values_file("prod")
    diff = [
        line
        for line in difflib.unified_diff(before.decode().splitlines(), after.decode().splitlines(), lineterm="", n=0)
        if line[:1] in "+-" and not line.startswith(("+++", "---"))
    ]
    assert diff == ["-  imageTag: prod-cf3124b", f'+  imageTag: "{sha[:7]}"']
    assert len(deploy_commits(scenario)) == 1

    committed = [r for r in history("prod") if r.outcome == "committed"]
    assert len(committed) == 1
    record = committed[0]
    assert (record.tag, record.full_sha, record.previous_tag) == (sha[:7], sha, "prod-cf3124b")
    assert record.digests == release.digests
    assert set(record.signers) == set(release.digests)
    assert record.signature_policy == "required"
    assert record.status == "COMMITTED"
    assert record.gitops_commit and record.gitops_url
    state = ledger().environment_state("mosaic-life", "prod")
    assert state is not None and state.current_tag == sha[:7]


# --- waits: the release is not complete yet ---


def test_an_unsigned_image_waits_for_its_signature(scenario: SeedScenario, promoter_env: Callable[..., Any]) -> None:
    promoter_env()
    sha = scenario.commit("main")
    release = scenario.release(sha, sign=False)
    result = deliver(release.events)
    assert (result["decision"], result["reason"]) == ("wait", "signature_missing")
    assert deploy_commits(scenario) == []
    # The signature arrives: its push event completes the release.
    for image, digest in release.digests.items():
        signature = sign_image(
            scenario.stack.registry.url, image, digest, scenario.signer, annotations={"git-sha": sha}
        )
        result = invoke(ecr_push_event(image, f"sha256-{digest.split(':')[1]}.sig", signature))
    assert result["decision"] == "promote"
    assert len(deploy_commits(scenario)) == 1


# --- rejections, each with its recorded reason ---


def test_a_signature_by_another_key_is_rejected(scenario: SeedScenario, promoter_env: Callable[..., Any]) -> None:
    promoter_env()
    sha = scenario.commit("main")
    release = scenario.release(sha, signer=CosignKeySigner.generate())
    result = deliver(release.events)
    assert (result["decision"], result["reason"]) == ("reject", "signature_invalid")
    assert deploy_commits(scenario) == []
    rejected = [r for r in history("prod") if r.outcome == "rejected"]
    assert rejected and rejected[0].reason == "signature_invalid"


# --- superseded ---


def test_an_older_commit_never_replaces_a_newer_one(scenario: SeedScenario, promoter_env: Callable[..., Any]) -> None:
    promoter_env()
    older = scenario.commit("main")
    newer = scenario.commit("main")
    old_release = scenario.release(older, branch=None)
    assert deliver(old_release.events)["reason"] == "no_environment"  # its branch tag is late
    new_release = scenario.release(newer)
    assert deliver(new_release.events)["decision"] == "promote"
    # The old build finishes late: its branch tag comes after the new one.
    from devstack.images import tag_image

    for image, digest in old_release.digests.items():
        tag_image(scenario.stack.registry.url, image, digest, "main")
    result = invoke(ecr_push_event(scenario.images[0], "main", old_release.digests[scenario.images[0]]))
    assert (result["decision"], result["reason"]) == ("superseded", "newer_commit_deployed")
    assert f'imageTag: "{newer[:7]}"' in scenario.values_file("prod").decode()
    superseded = next(r for r in history("prod") if r.outcome == "superseded")
    assert (superseded.full_sha, superseded.deployed_sha) == (older, newer[:7])


# --- ignored and malformed events: no request to any outside system ---


def test_ignored_and_malformed_events_make_no_request(
    stack: LocalStack, scenario: SeedScenario, promoter_env: Callable[..., Any]
) -> None:
    promoter_env()
    stack.github_control.clear_requests()
    image = scenario.images[0]
    ignored = [
        ecr_push_event(image, "latest"),
        ecr_push_event(image, "v1.2.3"),
        ecr_push_event(image, "abc1234", action="DELETE"),
        ecr_push_event("someone/else", "abc1234"),
        ecr_push_event(image, None),
    ]
    results = [invoke(event) for event in ignored]
    assert {r["decision"] for r in results} == {"ignore"}
    malformed = ecr_push_event(image)
    malformed["detail"]["image-digest"] = "sha256:nothex"
    result = invoke(malformed)
    assert (result["decision"], result["reason"]) == ("reject", "malformed_event:bad_digest")
    assert stack.github_control.requests() == []
    assert history("unresolved") == []


# --- transient failures are raised (retried), decisions are not ---


def test_github_5xx_raises_so_the_event_is_retried(
    stack: LocalStack, scenario: SeedScenario, promoter_env: Callable[..., Any]
) -> None:
    from tagrelay.errors import TransientError

    promoter_env()
    sha = scenario.commit("main")
    release = scenario.release(sha)
    stack.github_control.inject(method="GET", path_regex="/commits/", status=502, count=20)
    with pytest.raises(TransientError):
        invoke(release.events[0])
    assert deploy_commits(scenario) == []
    stack.github_control.clear_faults()
    assert invoke(release.events[0])["decision"] == "promote"  # Lambda's retry of the same event


def test_a_conflicting_write_is_re_read_and_re_applied(
    stack: LocalStack, scenario: SeedScenario, promoter_env: Callable[..., Any]
) -> None:
    promoter_env()
    sha = scenario.commit("main")
    release = scenario.release(sha)
    stack.github_control.inject(
        method="PUT", path_regex="/contents/environments/prod/values.yaml", kind="concurrent_commit", count=1
    )
    assert deliver(release.events)["decision"] == "promote"
    assert f'imageTag: "{sha[:7]}"' in scenario.values_file("prod").decode()


def test_a_github_rate_limit_raises_so_the_event_is_retried(
    stack: LocalStack, scenario: SeedScenario, promoter_env: Callable[..., Any]
) -> None:
    from tagrelay.errors import TransientError

    promoter_env()
    sha = scenario.commit("main")
    release = scenario.release(sha)
    stack.github_control.inject(method="GET", path_regex="/contents/", kind="secondary_rate_limit", count=50)
    with pytest.raises(TransientError, match="github"):
        invoke(release.events[0])
    stack.github_control.clear_faults()
    assert deploy_commits(scenario) == []


def test_secrets_never_reach_logs_records_or_results(
    stack: LocalStack,
    scenario: SeedScenario,
    promoter_env: Callable[..., Any],
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    from devstack.stack import GITHUB_TOKEN, LEDGER_TABLE

    promoter_env()
    sha = scenario.commit("main")
    results = [invoke(event) for event in scenario.release(sha).events]
    stack.github_control.inject(method="GET", path_regex="/commits/", status=401, count=1)
    bad = scenario.release(scenario.commit("main"))
    with pytest.raises(Exception) as refused:
        invoke(bad.events[0])
    stack.github_control.clear_faults()

    items = stack.aws_client("dynamodb").scan(TableName=LEDGER_TABLE)["Items"]  # a test may scan
    seen = "\n".join([capsys.readouterr().out, caplog.text, repr(results), repr(items), str(refused.value)])
    assert "committed" in seen and items
    assert GITHUB_TOKEN not in seen
    assert scenario.signer.public_key_pem.splitlines()[1] not in repr(items)  # key material stays out too
