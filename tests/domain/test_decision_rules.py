"""The pure rules of the promotion decision and the commit message format."""

from __future__ import annotations

import pytest

from tagrelay.domain import decision as rules
from tagrelay.domain.commit_message import CommitDetails, commit_message, subject
from tagrelay.domain.decision import Evaluation, Reason, Verdict


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
