"""The pure rules of the promotion decision and the commit message format."""

from __future__ import annotations

import pytest

from tagrelay.domain import decision as rules
from tagrelay.domain.commit_message import CommitDetails, commit_message, subject
from tagrelay.domain.decision import Evaluation, Reason, Verdict
from tagrelay.domain.facts import SignatureVerdict


def test_readiness_lists_the_images_without_the_tag() -> None:
    assert rules.missing_images({"a/web": "sha256:1", "a/api": None}) == ["a/api"]
    assert rules.missing_images({"a/web": "sha256:1", "a/api": "sha256:2"}) == []


def test_environments_are_those_whose_branch_tag_points_at_the_digest() -> None:
    heads = {"prod": "sha256:new", "staging": "sha256:old", "qa": None}
    assert rules.environments_for_digest(heads, "sha256:new") == ["prod"]
    assert rules.environments_for_digest(heads, "sha256:other") == []


@pytest.mark.parametrize(
    ("status", "reachable"), [("identical", True), ("ahead", True), ("behind", False), ("diverged", False)]
)
def test_a_commit_is_on_the_branch_when_the_branch_is_at_or_ahead_of_it(status: str, reachable: bool) -> None:
    assert rules.reachable_from_branch(status) is reachable


@pytest.mark.parametrize(
    ("status", "older"), [("behind", True), ("ahead", False), ("diverged", False), ("identical", False)]
)
def test_only_an_ancestor_of_the_deployed_commit_is_a_downgrade(status: str, older: bool) -> None:
    assert rules.candidate_is_older(status) is older


def test_the_headline_of_several_decisions_is_the_most_significant() -> None:
    evaluation = Evaluation(event_id="e")
    evaluation.decide("staging", Verdict.NOOP, Reason.ALREADY_DEPLOYED, "m")
    evaluation.decide("prod", Verdict.PROMOTE, Reason.COMMITTED, "m")
    assert evaluation.verdict is Verdict.PROMOTE
    assert evaluation.headline.env == "prod"
    evaluation.decide("qa", Verdict.REJECT, Reason.COMMIT_NOT_ON_BRANCH, "m")
    assert evaluation.headline.verdict is Verdict.REJECT


def test_the_commit_message_keeps_the_seed_convention_and_adds_digests_and_signer() -> None:
    message = commit_message(
        CommitDetails(
            env="prod",
            tag="prod-cf3124b",
            trigger="push",
            source_branch="main",
            full_sha="cf3124bd29e1b829606e16f2755ebab120506214",
            actor="octocat",
            digests={"mosaic-life/web": "sha256:" + "1" * 64, "mosaic-life/core-api": "sha256:" + "2" * 64},
            signer="verified, key sha256:abcd",
            event_id="e-1",
        )
    )
    lines = message.splitlines()
    assert lines[0] == "deploy(prod): update image tag to prod-cf3124b"
    assert "Branch: main" in lines
    assert "Commit: cf3124bd29e1b829606e16f2755ebab120506214" in lines
    assert "Actor: octocat" in lines
    start = lines.index("This will deploy:")
    assert lines[start + 1 : start + 3] == ["- mosaic-life/web:prod-cf3124b", "- mosaic-life/core-api:prod-cf3124b"]
    assert f"- mosaic-life/core-api@sha256:{'2' * 64}" in lines
    assert "Signature: verified, key sha256:abcd" in lines
    assert lines[2].startswith("Triggered by: ecr-push")


def test_manual_and_rollback_subjects() -> None:
    assert subject("manual", "prod", "abc1234") == "deploy(prod): manual update to image tag abc1234"
    assert subject("rollback", "prod", "xyz5678") == "rollback(prod): revert to xyz5678"


# --- the checks' rules, as pure functions over facts (services/promote.py records their rulings) ---


def _verdict(status: str, *, code: Reason | None = None, signer: str | None = None) -> SignatureVerdict:
    return SignatureVerdict(status, signer, None if status in ("verified", "not_required") else f"{status}!", code=code)  # type: ignore[arg-type]


def test_signatures_reject_when_invalid_wait_when_missing_and_reject_once_overdue() -> None:
    ok = _verdict("verified", signer="key k")
    assert rules.judge_signatures({"web": ok}, overdue=None) == rules.Ruling("pass", "web: key k")
    unbound = _verdict("invalid", code=Reason.SIGNATURE_COMMIT_UNBOUND)
    assert rules.judge_signatures({"web": unbound, "api": ok}, overdue=None).reason is Reason.SIGNATURE_COMMIT_UNBOUND
    mixed = {"web": unbound, "api": _verdict("invalid")}
    assert rules.judge_signatures(mixed, overdue=None).reason is Reason.SIGNATURE_INVALID
    waiting = rules.judge_signatures({"web": _verdict("missing"), "api": ok}, overdue=None)
    assert (waiting.status, waiting.verdict, waiting.reason) == ("wait", Verdict.WAIT, Reason.SIGNATURE_MISSING)
    late = rules.judge_signatures({"web": _verdict("missing")}, overdue="31 min")
    assert (late.verdict, late.reason) == (Verdict.REJECT, Reason.SIGNATURE_MISSING) and "31 min" in late.detail
    off = rules.judge_signatures({"web": _verdict("not_required")}, overdue=None)
    assert (off.status, off.decides) == ("skip", False)


def test_order_supersedes_older_rejects_diverged_and_lets_a_manual_deploy_through() -> None:
    def judge(status: str, *, manual: bool = False) -> rules.Ruling:
        return rules.judge_order("prod", "prod-aaaaaaa", "a" * 40, "b" * 40, status, manual=manual)

    assert (judge("behind").verdict, judge("behind").reason) == (Verdict.SUPERSEDED, Reason.NEWER_COMMIT_DEPLOYED)
    assert (judge("diverged").verdict, judge("diverged").reason) == (Verdict.REJECT, Reason.NOT_DESCENDANT)
    assert judge("diverged", manual=True).status == "skip" and not judge("diverged", manual=True).decides
    assert judge("ahead").status == "pass" and not judge("ahead").decides


def test_tag_rules_reject_a_moved_tag_and_mutable_tags_unless_the_risk_is_accepted() -> None:
    assert not rules.judge_tag_moved("abc1234", {}).decides
    moved = rules.judge_tag_moved("abc1234", {"web": ("sha256:" + "1" * 64, "sha256:" + "2" * 64)})
    assert moved.reason is Reason.TAG_MOVED and "CloudTrail" in moved.detail
    problems = {"web": "mutable"}
    assert rules.judge_tag_mutability("abc1234", {}, app="a", allow_mutable_tags=False).status == "pass"
    assert rules.judge_tag_mutability("abc1234", problems, app="a", allow_mutable_tags=True).status == "skip"
    refused = rules.judge_tag_mutability("abc1234", problems, app="a", allow_mutable_tags=False)
    assert refused.reason is Reason.TAGS_MUTABLE and "apps.a.allow_mutable_tags: true" in refused.detail


def test_applying_a_ruling_records_the_check_and_decides_for_each_environment() -> None:
    evaluation = Evaluation(event_id="e")
    assert not evaluation.apply("order", rules.Ruling("pass", "fine"), ["prod"])
    assert evaluation.apply("order", rules.Ruling("fail", "no", Verdict.REJECT, Reason.NOT_DESCENDANT), ["prod", "qa"])
    assert [(c.name, c.status) for c in evaluation.checks] == [("order", "pass"), ("order", "fail")]
    assert [(d.env, d.reason) for d in evaluation.decisions] == [
        ("prod", Reason.NOT_DESCENDANT),
        ("qa", Reason.NOT_DESCENDANT),
    ]


def test_an_archived_image_is_never_committed_and_a_pin_holds_the_environment() -> None:
    assert rules.judge_archive("prod", {}, 2) == rules.Ruling("pass", "all 2 images are ACTIVE in ECR")
    archived = rules.judge_archive("prod", {"web": ("sha256:" + "1" * 64, "ARCHIVED")}, 2)
    assert archived.reason is Reason.IMAGE_ARCHIVED and "--target-storage-class STANDARD" in archived.detail
    assert rules.judge_pin("prod", pinned=False, pin_reason=None) is None
    pinned = rules.judge_pin("prod", pinned=True, pin_reason="incident 42")
    assert pinned is not None and (pinned.verdict, pinned.reason) == (Verdict.SKIP, Reason.ENVIRONMENT_PINNED)
    assert "incident 42" in pinned.detail and "tagrelay unpin --env prod" in pinned.detail
