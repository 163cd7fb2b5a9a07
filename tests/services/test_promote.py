"""The promotion service on the fakes: every wait, rejection, no-op and supersession with its recorded
reason, the commit it makes, and the integrity checks (moved tags, mutable tags, descendants only,
signatures bound to the commit, the EventBridge envelope, the values file's size).

The events are the ECR events CI's pushes cause; images and cosign signatures are real (devstack.images
into the fake registry) and checked by the real verifier. The same paths end to end, through the
promoter handler and the local stack, are in tests/integration/.
"""

from __future__ import annotations

import random
import uuid
from datetime import timedelta
from typing import Any

import pytest

from devstack.events import ecr_push_event
from devstack.images import CosignKeySigner, push_image, sign_image, tag_image
from tagrelay.domain.tags import parse_release_tag, signature_tag
from tagrelay.errors import TransientError
from tagrelay.services.promote import Promoter, ReleaseRequest
from tests.fakes.world import FakeWorld
from tests.services.support import APP, deliver, deploy_commits, hand_edit, history, invoke, promote


@pytest.fixture
def promoter(world: FakeWorld) -> Promoter:
    return world.promoter()


# --- promotions ---


def test_a_release_in_any_order_with_a_duplicate_is_one_commit_recorded_with_its_facts(
    world: FakeWorld, promoter: Promoter
) -> None:
    sha = world.commit("main")
    release = world.release(sha)
    events = [*release.events, release.events[0]]
    random.Random(7).shuffle(events)
    decisions = [invoke(promoter, event)["decision"] for event in events]
    assert decisions.count("promote") == 1
    assert f'imageTag: "{sha[:7]}"'.encode() in world.values_file("prod")
    assert len(deploy_commits(world)) == 1
    [record] = [r for r in history(world, "prod") if r.outcome == "committed"]
    assert (record.tag, record.full_sha, record.previous_tag, record.digests) == (
        sha[:7],
        sha,
        "prod-cf3124b",
        release.digests,
    )
    assert set(record.signers) == set(release.digests)
    assert (record.signature_policy, record.status, record.tag_policy) == ("required", "COMMITTED", "immutable")
    assert record.gitops_commit == world.github.head(world.gitops_repo, "main")
    state = world.ledger.environment_state(APP, "prod")
    assert state is not None and state.current_tag == sha[:7]
    assert world.argocd.refreshed == [("mosaic-life-prod", "mosaic-life")]  # the refresh nudge


def test_the_commit_message_follows_the_seed_convention(world: FakeWorld, promoter: Promoter) -> None:
    sha, digests = promote(world, promoter)
    [message] = deploy_commits(world)
    assert message.startswith(f"deploy(prod): update image tag to {sha[:7]}")
    assert f"Commit: {sha}" in message
    assert "Branch: main" in message
    for image, digest in digests.items():
        assert f"- {image}:{sha[:7]}" in message
        assert f"- {image}@{digest}" in message
    assert "Signature: verified, key" in message


def test_staging_is_chosen_by_the_develop_branch_tag(world: FakeWorld, promoter: Promoter) -> None:
    sha = world.commit("develop")
    assert deliver(world, promoter, world.release(sha, branch="develop").events)["decision"] == "promote"
    assert f'imageTag: "{sha[:7]}"'.encode() in world.values_file("staging")
    assert b"prod-cf3124b" in world.values_file("prod")


def test_env_prefixed_tags_work_by_configuration_alone(world: FakeWorld) -> None:
    promoter = world.promoter(world.config(tag_pattern="^(?P<env>prod|staging)-(?P<sha>[0-9a-f]{7})$"))
    sha = world.commit("develop")
    release = world.release(sha, tag=f"staging-{sha[:7]}", branch=None)
    assert deliver(world, promoter, release.events)["decision"] == "promote"
    assert f'imageTag: "staging-{sha[:7]}"'.encode() in world.values_file("staging")


def test_signature_none_is_explicit_and_recorded(world: FakeWorld) -> None:
    promoter = world.promoter(world.config(signature="none"))
    sha = world.commit("main")
    assert deliver(world, promoter, world.release(sha, sign=False).events)["decision"] == "promote"
    record = next(r for r in history(world, "prod") if r.outcome == "committed")
    assert record.signature_policy == "none"
    assert "not verified" in deploy_commits(world)[0]


# --- waits ---


def test_a_release_missing_an_image_waits_and_commits_nothing(world: FakeWorld, promoter: Promoter) -> None:
    sha = world.commit("main")
    release = world.release(sha, images=[world.images[0]])
    results = [invoke(promoter, event) for event in release.events]
    assert {r["decision"] for r in results} == {"wait"}
    assert results[0]["reason"] == "release_incomplete"
    assert world.images[1] in results[0]["message"]
    assert deploy_commits(world) == []
    assert [r.outcome for r in history(world, "unresolved")] == ["waiting"] * len(results)


def test_an_unsigned_image_waits_for_its_signature_whose_push_completes_the_release(
    world: FakeWorld, promoter: Promoter
) -> None:
    sha = world.commit("main")
    release = world.release(sha, sign=False)
    assert (deliver(world, promoter, release.events)["decision"], "wait") == ("wait", "wait")
    assert invoke(promoter, release.events[0])["reason"] == "signature_missing"
    result: dict[str, Any] = {}
    for image, digest in release.digests.items():
        result = invoke(promoter, world.sign(image, digest, sha))
    assert result["decision"] == "promote"
    assert len(deploy_commits(world)) == 1


def test_no_branch_tag_means_no_environment_yet(world: FakeWorld, promoter: Promoter) -> None:
    sha = world.commit("main")
    assert deliver(world, promoter, world.release(sha, branch=None).events)["reason"] == "no_environment"
    assert deploy_commits(world) == []


def test_a_release_still_unsigned_after_the_grace_window_is_rejected(world: FakeWorld, promoter: Promoter) -> None:
    sha = world.commit("main")
    release = world.release(sha, sign=False)
    assert deliver(world, promoter, release.events)["reason"] == "signature_missing"  # within the window: wait
    world.clock.tick(timedelta(minutes=20).total_seconds())  # the default window is 15 minutes
    [evaluation] = promoter.process({**release.events_of("branch")[0], "time": world.event_time()})
    assert (evaluation.verdict.value, evaluation.headline.reason) == ("reject", "signature_missing")
    assert "still unsigned" in evaluation.headline.message
    assert deploy_commits(world) == []


# --- rejections ---


def test_a_signature_by_another_key_is_rejected(world: FakeWorld, promoter: Promoter) -> None:
    sha = world.commit("main")
    result = deliver(world, promoter, world.release(sha, signer=CosignKeySigner.generate()).events)
    assert (result["decision"], result["reason"]) == ("reject", "signature_invalid")
    assert deploy_commits(world) == []


def test_a_tag_that_is_no_commit_of_the_source_repository_is_rejected(world: FakeWorld, promoter: Promoter) -> None:
    result = deliver(world, promoter, world.release("0" * 40).events)
    assert (result["decision"], result["reason"]) == ("reject", "commit_not_found")
    assert {r.reason for r in history(world, "prod") if r.outcome == "rejected"} == {"commit_not_found"}


def test_an_ambiguous_short_sha_is_rejected_as_not_found_with_a_hint(world: FakeWorld, promoter: Promoter) -> None:
    """GitHub answers a short SHA that several commits start with as an unknown one; the message says so."""
    for suffix in ("1", "2"):
        world.github.add_commit_with_sha(world.source_repo, "abcdef0" + suffix * 33, "main", f"collides {suffix}")
    result = deliver(world, promoter, world.release("abcdef0" + "1" * 33, tag="abcdef0").events)
    assert (result["decision"], result["reason"]) == ("reject", "commit_not_found")
    assert "more than one commit starts with abcdef0" in result["message"]


def test_a_commit_not_on_the_environments_branch_is_rejected(world: FakeWorld, promoter: Promoter) -> None:
    feature = world.commit("develop")  # develop only, but tagged main
    result = deliver(world, promoter, world.release(feature, branch="main").events)
    assert (result["decision"], result["reason"]) == ("reject", "commit_not_on_branch")
    assert "not on branch main" in result["message"]


def test_a_values_file_with_a_duplicate_key_is_refused_not_fixed(world: FakeWorld, promoter: Promoter) -> None:
    broken = world.values_file("prod") + b"web:\n  replicaCount: 1\n"
    hand_edit(world, "prod", broken)
    result = deliver(world, promoter, world.release(world.commit("main")).events)
    assert (result["decision"], result["reason"]) == ("reject", "values_file_invalid")
    assert "duplicate" in result["message"]
    assert world.values_file("prod") == broken


def test_a_missing_values_file_is_rejected(world: FakeWorld) -> None:
    promoter = world.promoter(world.config(gitops={"values_file": "environments/{env}/missing.yaml"}))
    result = deliver(world, promoter, world.release(world.commit("main")).events)
    assert (result["decision"], result["reason"]) == ("reject", "values_file_missing")


def test_a_values_file_over_the_cap_is_refused_as_too_large(world: FakeWorld, promoter: Promoter) -> None:
    hand_edit(world, "prod", world.values_file("prod") + b"# padding\n" * 110_000)  # 1.1 MB: over 1 MiB
    result = deliver(world, promoter, world.release(world.commit("main")).events)
    assert (result["decision"], result["reason"]) == ("reject", "values_file_too_large")
    assert "limits.values_file_max_bytes (1048576 bytes)" in result["message"]
    assert deploy_commits(world) == []


# --- no-op and superseded ---


def test_an_already_deployed_tag_is_a_noop(world: FakeWorld, promoter: Promoter) -> None:
    sha = world.commit("main")
    release = world.release(sha)
    for event in release.events:
        invoke(promoter, event)
    again = invoke(promoter, release.events[0])
    assert (again["decision"], again["reason"]) == ("noop", "already_deployed")
    assert len(deploy_commits(world)) == 1
    assert [r.outcome for r in history(world, "prod")].count("committed") == 1


def test_an_older_commit_never_replaces_a_newer_one(world: FakeWorld, promoter: Promoter) -> None:
    older, newer = world.commit("main"), world.commit("main")
    old_release = world.release(older, branch=None)
    assert deliver(world, promoter, old_release.events)["reason"] == "no_environment"  # its branch tag is late
    assert deliver(world, promoter, world.release(newer).events)["decision"] == "promote"
    for image, digest in old_release.digests.items():  # the old build's branch tag comes after the new one
        tag_image(world.registry, image, digest, "main")
    result = invoke(
        promoter, ecr_push_event(world.images[0], "main", old_release.digests[world.images[0]], time=world.event_time())
    )
    assert (result["decision"], result["reason"]) == ("superseded", "newer_commit_deployed")
    assert f'imageTag: "{newer[:7]}"'.encode() in world.values_file("prod")
    superseded = next(r for r in history(world, "prod") if r.outcome == "superseded")
    assert (superseded.full_sha, superseded.deployed_sha) == (older, newer[:7])


def test_a_candidate_diverged_from_what_the_environment_runs_is_refused(world: FakeWorld, promoter: Promoter) -> None:
    # prod runs a develop commit (a hotfix deployed by hand); main's next commit does not contain it.
    hotfix = world.commit("develop", "fix: hotfix made on develop")
    hand_edit(world, "prod", world.values_file("prod").replace(b"prod-cf3124b", f'"{hotfix[:7]}"'.encode()))
    sha = world.commit("main")
    results = [invoke(promoter, event) for event in world.release(sha).events]
    rejected = [r for r in results if r["decision"] == "reject"]
    assert rejected and rejected[-1]["reason"] == "not_descendant"
    assert sha in rejected[-1]["message"] and hotfix[:7] in rejected[-1]["message"]
    assert "diverged" in rejected[-1]["message"]
    assert deploy_commits(world) == []


# --- integrity: moved tags, signatures bound to the commit, mutable tags ---


def test_a_promoted_tag_pushed_again_with_another_image_is_a_recorded_tag_moved_rejection(
    world: FakeWorld, promoter: Promoter
) -> None:
    sha, digests = promote(world, promoter)
    commits = deploy_commits(world)
    web = world.images[0]
    swapped = push_image(world.registry, web, [sha[:7]], content=b"not what was verified")
    result = invoke(promoter, ecr_push_event(web, sha[:7], swapped, time=world.event_time()))
    assert (result["decision"], result["reason"]) == ("reject", "tag_moved")
    assert digests[web] in result["message"] and swapped in result["message"]
    assert deploy_commits(world) == commits
    record = next(r for r in history(world, "prod") if r.reason == "tag_moved")
    assert (record.outcome, record.promoted_digests[web], record.digests[web]) == ("rejected", digests[web], swapped)


def test_a_rollback_to_a_moved_tag_is_refused_too(world: FakeWorld, promoter: Promoter) -> None:
    old_sha, _ = promote(world, promoter)
    promote(world, promoter)
    push_image(world.registry, world.images[0], [old_sha[:7]], content=b"swapped under an old release")
    release = parse_release_tag(old_sha[:7], world.config().apps[APP].tag_regex)
    assert release is not None
    evaluation = promoter.evaluate_release(
        ReleaseRequest(APP, release, "rollback", None, env="prod", allow_downgrade=True, respect_pin=False)
    )
    assert evaluation.headline.reason == "tag_moved"


def test_an_old_key_signed_digest_relabelled_as_a_newer_commit_is_rejected(
    world: FakeWorld, promoter: Promoter
) -> None:
    old_sha, old_digests = promote(world, promoter)  # signed: cosign sign --key ... -a git-sha=<old sha>
    commits = deploy_commits(world)
    new_sha = world.commit("main")
    results = []
    for image, digest in old_digests.items():  # the old build, pushed as the new commit's release
        tag_image(world.registry, image, digest, new_sha[:7])
        results.append(invoke(promoter, ecr_push_event(image, new_sha[:7], digest, time=world.event_time())))
    rejected = [r for r in results if r["decision"] == "reject"]
    assert rejected and {r["reason"] for r in rejected} == {"signature_invalid"}
    assert f"made for commit {old_sha}, but the tag names {new_sha[:7]}" in rejected[-1]["message"]
    assert deploy_commits(world) == commits


def test_a_key_signature_without_the_commit_annotation_says_how_to_sign(world: FakeWorld, promoter: Promoter) -> None:
    sha = world.commit("main")
    release = world.release(sha, sign=False)
    for event in release.events:
        invoke(promoter, event)
    results = []
    for image, digest in release.digests.items():
        signed = sign_image(world.registry, image, digest, world.signer)  # no -a git-sha=...
        results.append(invoke(promoter, ecr_push_event(image, signature_tag(digest), signed, time=world.event_time())))
    assert (results[-1]["decision"], results[-1]["reason"]) == ("reject", "signature_commit_unbound")
    assert "cosign sign --key <key> -a git-sha=<full commit SHA>" in results[-1]["message"]
    assert deploy_commits(world) == []


def test_an_exclusion_filter_that_exempts_release_tags_is_refused_with_the_fix(
    world: FakeWorld, promoter: Promoter
) -> None:
    web, api = world.images
    world.ecr.set_mutability(web, "MUTABLE")
    world.ecr.set_mutability(api, "IMMUTABLE_WITH_EXCLUSION", ["sha256-*", "main", "*1*"])
    results = [invoke(promoter, event) for event in world.release(world.commit("main")).events]
    rejected = [r for r in results if r["decision"] == "reject"]
    assert rejected and {r["reason"] for r in rejected} == {"tags_mutable"}
    message = rejected[-1]["message"]
    assert (
        f"aws ecr put-image-tag-mutability --registry-id 033691785857 --region us-east-1 --repository-name {web} "
        "--image-tag-mutability IMMUTABLE_WITH_EXCLUSION --image-tag-mutability-exclusion-filters "
        "'filterType=WILDCARD,filter=sha256-*' filterType=WILDCARD,filter=main filterType=WILDCARD,filter=develop"
    ) in message
    assert "'*1*'" in message and "filter=*1*" not in message  # the fix keeps the harmless filters only
    assert "allow_mutable_tags: true" in message
    assert deploy_commits(world) == []


def test_allow_mutable_tags_accepts_the_risk_and_records_it_on_the_deployment(world: FakeWorld) -> None:
    promoter = world.promoter(world.config(allow_mutable_tags=True))
    for image in world.images:
        world.ecr.set_mutability(image, "MUTABLE")
    sha, _ = promote(world, promoter)
    committed = next(r for r in history(world, "prod") if r.outcome == "committed")
    assert (committed.tag, committed.tag_policy) == (sha[:7], "mutable (allow_mutable_tags)")
    assert "Release tags: mutable (allow_mutable_tags)" in deploy_commits(world)[0]


# --- the EventBridge envelope ---


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"id": "13cde686\nReviewed-by: Mallory <m@example.com>"}, "bad_id"),
        ({"source": "my.app"}, "bad_source"),
        ({"account": "111111111111"}, "unknown_registry"),
        ({"region": "eu-west-1"}, "unknown_registry"),
        ({"time": "yesterday"}, "bad_time"),
        ({"time": "2099-01-01T00:00:00Z"}, "future_time"),
    ],
)
def test_a_forged_envelope_is_malformed_and_costs_no_request(
    world: FakeWorld, promoter: Promoter, changes: dict[str, Any], code: str
) -> None:
    release = world.release(world.commit("main"))
    before = (world.github.request_count, world.registry.request_count, world.ledger.request_count)
    results = [invoke(promoter, {**event, **changes}) for event in release.events]
    assert {(r["decision"], r["reason"]) for r in results} == {("reject", f"malformed_event:{code}")}
    assert (world.github.request_count, world.registry.request_count) == before[:2]
    assert deploy_commits(world) == []


def test_the_commit_names_the_validated_event(world: FakeWorld, promoter: Promoter) -> None:
    event_id = str(uuid.uuid4())
    for event in world.release(world.commit("main")).events:
        invoke(promoter, {**event, "id": event_id})
    assert f"(event {event_id})" in deploy_commits(world)[0]


# --- faults: retried, never decided ---


def test_a_conflicting_write_is_re_read_and_re_applied(world: FakeWorld, promoter: Promoter) -> None:
    sha = world.commit("main")
    release = world.release(sha)
    world.github.before_write.append(lambda: hand_edit(world, "staging", b"global:\n  imageTag: x\n", "ops: elsewhere"))
    world.github.before_write.append(lambda: hand_edit(world, "prod", world.values_file("prod") + b"# note\n"))
    assert deliver(world, promoter, release.events)["decision"] == "promote"
    assert f'imageTag: "{sha[:7]}"'.encode() in world.values_file("prod")
    assert world.values_file("prod").endswith(b"# note\n")  # the concurrent change is kept
    assert world.sleeps == [0.1]  # one backoff: base 0.1 s x (0.5 + jitter 0.5)


def test_a_file_that_keeps_changing_raises_after_the_configured_attempts(world: FakeWorld, promoter: Promoter) -> None:
    release = world.release(world.commit("main"))

    def keep_changing() -> None:
        hand_edit(world, "prod", world.values_file("prod") + b"# again\n")
        world.github.before_write.append(keep_changing)

    world.github.before_write.append(keep_changing)
    with pytest.raises(TransientError, match="compare-and-swap attempts lost"):
        invoke(promoter, release.events[0])
    assert deploy_commits(world) == []
    assert len(world.sleeps) == world.config().github.commit_attempts


def test_a_github_failure_raises_and_the_retry_of_the_event_promotes(world: FakeWorld, promoter: Promoter) -> None:
    release = world.release(world.commit("main"))
    world.github.faults.fail("resolve_commit")
    with pytest.raises(TransientError):
        invoke(promoter, release.events[0])
    assert deploy_commits(world) == []
    assert invoke(promoter, release.events[0])["decision"] == "promote"  # Lambda's retry of the same event


def test_a_commit_whose_answer_was_lost_is_recorded_by_the_retry_not_made_twice(
    world: FakeWorld, promoter: Promoter
) -> None:
    sha = world.commit("main")
    release = world.release(sha)
    world.github.faults.lose_answer("write_file")  # GitHub committed; the promoter saw a timeout
    with pytest.raises(TransientError):
        invoke(promoter, release.events[0])
    assert len(deploy_commits(world)) == 1
    retried = invoke(promoter, release.events[0])
    assert (retried["decision"], retried["reason"]) == ("promote", "committed")
    assert "recovered the record" in retried["message"]
    assert len(deploy_commits(world)) == 1
    [record] = [r for r in history(world, "prod") if r.outcome == "committed"]
    assert record.gitops_commit == world.github.head(world.gitops_repo, "main")
    # A direct commit came through no pull request: the recovery asks GitHub for none (the request budget).
    assert record.pull_request_url is None and "pull_request_for_commit" not in world.github.calls


def test_a_ledger_failure_after_the_commit_heals_on_the_retry(world: FakeWorld, promoter: Promoter) -> None:
    sha = world.commit("main")
    release = world.release(sha)
    world.ledger.faults.fail("record_deployment")
    with pytest.raises(TransientError):
        invoke(promoter, release.events[0])
    assert len(deploy_commits(world)) == 1  # committed; its record was not written
    assert invoke(promoter, release.events[0])["decision"] == "promote"
    [record] = [r for r in history(world, "prod") if r.outcome == "committed"]
    assert record.tag == sha[:7]
    state = world.ledger.environment_state(APP, "prod")
    assert state is not None and state.current_tag == sha[:7]


def test_too_little_time_left_raises_before_the_commit_starts(world: FakeWorld, promoter: Promoter) -> None:
    release = world.release(world.commit("main"))
    deadline = world.clock().timestamp() + 5  # 5 s left, under limits.commit_reserve_seconds
    with promoter.invocation_deadline(deadline), pytest.raises(TransientError, match="commit_reserve_seconds"):
        invoke(promoter, release.events[0])
    assert deploy_commits(world) == []
    assert invoke(promoter, release.events[0])["decision"] == "promote"


def test_a_dry_run_decides_and_writes_nothing(world: FakeWorld) -> None:
    release = world.release(world.commit("main"))
    writes_before = dict(world.ledger.items)
    result = invoke(world.promoter(dry_run=True), release.events[0])
    assert (result["decision"], result["reason"]) == ("promote", "ready")
    assert deploy_commits(world) == []
    assert world.ledger.items == writes_before
