"""The pure rules of the promotion decision and the commit message format."""

from __future__ import annotations

import pytest

from tagrelay.domain import decision as rules
from tagrelay.domain.commit_message import CommitDetails, commit_message, subject
from tagrelay.domain.decision import Evaluation, Outcome, Reason, Verdict
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


def test_a_tag_moved_under_a_running_environment_is_said_as_what_that_environment_runs() -> None:
    old, new = "sha256:" + "1" * 64, "sha256:" + "2" * 64
    assert not rules.judge_tag_moved("abc1234", {}, running_in="prod").decides
    running = rules.judge_tag_moved("abc1234", {"web": (old, new)}, running_in="prod")
    assert _decision(running) == ("fail", Verdict.REJECT, Reason.TAG_MOVED)
    assert running.decision_message == (
        f"prod runs abc1234, and the tag moved: web was deployed as {old} and now points at {new}. A pod started "
        "now would pull an image tagrelay never verified. Find who pushed it (CloudTrail PutImage), restore the "
        "tag or deploy another release"
    )
    assert "tagrelay will not commit" in rules.judge_tag_moved("abc1234", {"web": (old, new)}).detail


def test_a_ruling_without_a_check_decides_only_when_it_decides() -> None:
    evaluation = Evaluation(event_id="sweep")
    assert not evaluation.rule(rules.Ruling("pass", "fine"), ["prod"])
    ruling = rules.Ruling("fail", "detail", Verdict.ALERT, Reason.IMAGE_ARCHIVED, message="the message")
    assert evaluation.rule(ruling, ["prod"])
    assert evaluation.checks == []
    assert [(d.env, d.verdict, d.reason, d.message) for d in evaluation.decisions] == [
        ("prod", Verdict.ALERT, Reason.IMAGE_ARCHIVED, "the message")
    ]


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


# --- the rest of the checks: each rule's deciding case and its passing (or silent) case ---

D1, D2 = "sha256:" + "1" * 64, "sha256:" + "2" * 64
SHA = "cf3124bd29e1b829606e16f2755ebab120506214"


def _decision(ruling: rules.Ruling | None) -> tuple[str, Verdict | None, Reason | None] | None:
    return None if ruling is None else (ruling.status, ruling.verdict, ruling.reason)


def test_an_event_intake_could_not_read_is_rejected_and_one_it_does_not_act_on_is_ignored() -> None:
    malformed = rules.judge_malformed_event("detail.image-tag: not a string", Reason.MALFORMED_BAD_FIELD_TYPE)
    assert _decision(malformed) == ("fail", Verdict.REJECT, Reason.MALFORMED_BAD_FIELD_TYPE)
    assert malformed.detail == "detail.image-tag: not a string"
    ignored = rules.judge_ignored_event("a DELETE action", Reason.NOT_A_PUSH)
    assert _decision(ignored) == ("skip", Verdict.IGNORE, Reason.NOT_A_PUSH)
    orphan = rules.judge_referrer_without_subject("a/web", D1)
    assert _decision(orphan) == ("skip", Verdict.IGNORE, Reason.REFERRER_WITHOUT_SUBJECT)
    assert orphan.detail == f"referrer a/web@{D1} names no subject image"
    unseen = rules.judge_release_tag_not_seen("a/web", D1)
    assert _decision(unseen) == ("wait", Verdict.WAIT, Reason.RELEASE_TAG_NOT_SEEN)
    assert unseen.detail.startswith(f"no release tag has been pushed for a/web@{D1[:19]}… yet;")


def test_readiness_waits_for_every_image_then_passes() -> None:
    one = rules.judge_readiness("cf3124b", {"a/web": D1, "a/api": None})
    assert _decision(one) == ("wait", Verdict.WAIT, Reason.RELEASE_INCOMPLETE)
    assert one.detail == "a/api has no tag cf3124b yet"
    assert (
        rules.judge_readiness("cf3124b", {"a/web": None, "a/api": None}).detail
        == "a/web, a/api have no tag cf3124b yet"
    )
    ready = rules.judge_readiness("cf3124b", {"a/web": D1, "a/api": D2})
    assert ready == rules.Ruling("pass", "all 2 images carry cf3124b")


def test_a_release_tag_that_moved_since_its_event_is_noted_and_evaluated_as_it_is_now() -> None:
    assert rules.judge_event_digest("cf3124b", D1, D1) is None
    assert rules.judge_event_digest("cf3124b", D1, None) is None  # the event's image is not one of the app's
    moved = rules.judge_event_digest("cf3124b", D1, D2)
    assert moved == rules.Ruling("skip", "cf3124b moved since the event; evaluating its current digest")


def test_the_environment_is_named_or_found_by_branch_tags_else_the_release_waits() -> None:
    assert rules.judge_named_environment("prod", by_operator=True).detail == "prod (named by the operator)"
    assert rules.judge_named_environment("prod", by_operator=False).detail == "prod (from the tag's prefix)"
    branches = {"prod": "main", "staging": "develop"}
    none = rules.judge_branch_tags("cf3124b", "a/web", branches, [])
    assert _decision(none) == ("wait", Verdict.WAIT, Reason.NO_ENVIRONMENT)
    assert none.detail == "no branch tag (main, develop) of a/web points at cf3124b's digest yet"
    found = rules.judge_branch_tags("cf3124b", "a/web", branches, ["staging"])
    assert found == rules.Ruling("pass", "staging (tag develop)")


def test_a_values_file_tagrelay_cannot_edit_is_refused_with_what_to_do() -> None:
    missing = rules.judge_values_file_missing("o/g:environments/prod/values.yaml does not exist")
    assert _decision(missing) == ("fail", Verdict.REJECT, Reason.VALUES_FILE_MISSING)
    assert missing.detail == "o/g:environments/prod/values.yaml does not exist"  # the check: what GitHub said
    evaluation = Evaluation(event_id="e")
    evaluation.apply("prod: values file", missing, ["prod"])
    assert evaluation.decisions[0].message == "o/g:environments/prod/values.yaml does not exist; create it first"
    large = rules.judge_values_file_too_large("values.yaml is 2000000 bytes", 1_048_576)
    assert _decision(large) == ("fail", Verdict.REJECT, Reason.VALUES_FILE_TOO_LARGE)
    assert "limits.values_file_max_bytes (1048576 bytes); split the file, or raise the limit" in large.detail
    invalid = rules.judge_values_file_invalid("o/g:environments/prod/values.yaml", "is not UTF-8")
    assert _decision(invalid) == ("fail", Verdict.REJECT, Reason.VALUES_FILE_INVALID)
    assert invalid.detail == (
        "o/g:environments/prod/values.yaml is not UTF-8; fix the file by hand, tagrelay will not rewrite it"
    )


def test_a_file_that_already_holds_the_tag_is_a_noop_unless_it_is_our_unrecorded_commit() -> None:
    path, field = "environments/prod/values.yaml", "global.imageTag"
    noop = rules.judge_already_deployed(path, field, "cf3124b", recovered_commit=None)
    assert _decision(noop) == ("skip", Verdict.NOOP, Reason.ALREADY_DEPLOYED)
    assert noop.detail == "environments/prod/values.yaml already sets global.imageTag to cf3124b"
    recovered = rules.judge_already_deployed(path, field, "cf3124b", recovered_commit="9" * 40)
    assert _decision(recovered) == ("pass", Verdict.PROMOTE, Reason.COMMITTED)
    assert recovered.detail == f"already at cf3124b by our commit {'9' * 40}"
    assert recovered.message == f"recovered the record of commit {'9' * 12}"


def test_an_operator_change_is_refused_when_the_environment_changed_since_it_was_prepared() -> None:
    assert rules.judge_precondition("prod", expected_tag="aaaaaaa", current_tag="aaaaaaa") is None
    assert rules.judge_precondition("prod", expected_tag=None, current_tag=None) is None
    stale = rules.judge_precondition("prod", expected_tag="aaaaaaa", current_tag="bbbbbbb")
    assert _decision(stale) == ("fail", Verdict.REJECT, Reason.PRECONDITION_FAILED)
    assert stale is not None and stale.detail.startswith("prod now runs bbbbbbb, not aaaaaaa as when the command")
    assert "now runs no tag, not aaaaaaa" in str(
        rules.judge_precondition("prod", expected_tag="aaaaaaa", current_tag=None)
    )


def test_the_commit_must_exist_and_be_the_one_an_operator_named() -> None:
    unknown = rules.judge_commit_not_found("cf3124b", "o/src", "No commit found for SHA: cf3124b")
    assert _decision(unknown) == ("fail", Verdict.REJECT, Reason.COMMIT_NOT_FOUND)
    assert unknown.detail == "cf3124b is not a commit of o/src (No commit found for SHA: cf3124b)"
    found = rules.judge_commit("cf3124b", SHA, subject="fix", author="octocat", requested_sha=None)
    assert found == rules.Ruling("pass", f"cf3124b is {SHA} ('fix' by octocat)")
    assert not rules.judge_commit("cf3124b", SHA, subject="s", author="a", requested_sha=SHA[:12]).decides
    other = rules.judge_commit("cf3124b", SHA, subject="s", author="a", requested_sha="cf3124bX")
    assert _decision(other) == ("fail", Verdict.REJECT, Reason.COMMIT_NOT_FOUND)
    assert other.detail == f"cf3124bX is not a prefix of {SHA}, the commit cf3124b names"


def test_signatures_must_name_the_commit_the_tag_resolves_to() -> None:
    assert rules.judge_signature_binding("cf3124b", "cf3124b", SHA, {}) is None
    assert rules.judge_signature_binding("cf3124b", "cf3124b", SHA, {"a/web": SHA, "a/api": SHA[:7]}) is None
    other = "cf3124b" + "0" * 33
    unbound = rules.judge_signature_binding("cf3124b", "cf3124b", SHA, {"a/web": SHA, "a/api": other})
    assert _decision(unbound) == ("fail", Verdict.REJECT, Reason.SIGNATURE_INVALID)
    assert unbound is not None
    assert (
        unbound.detail
        == f"cf3124b resolves to {SHA}, but a/api is signed for commit {other}; sign the release's own commit"
    )
    # A signature shorter than the tag's SHA does not name a commit precisely enough.
    assert rules.judge_signature_binding("cf3124b", "cf3124b", SHA, {"a/web": SHA[:6]}) is not None


@pytest.mark.parametrize(
    ("status", "on_branch"), [("identical", True), ("ahead", True), ("behind", False), ("diverged", False)]
)
def test_the_commit_must_be_on_the_environments_branch(status: str, on_branch: bool) -> None:
    ruling = rules.judge_branch("main", SHA, status)
    if on_branch:
        assert ruling == rules.Ruling("pass", f"main contains {SHA[:12]}")
    else:
        assert _decision(ruling) == ("fail", Verdict.REJECT, Reason.COMMIT_NOT_ON_BRANCH)
        assert ruling.detail == f"commit {SHA[:12]} is not on branch main (GitHub compare says {status!r})"


def test_order_is_not_judged_against_an_unknown_deployed_commit_nor_for_a_rollback() -> None:
    unknown = rules.judge_order("prod", "prod-0000000", "0" * 7, SHA, None, manual=False)
    assert unknown == rules.Ruling("skip", "deployed tag prod-0000000 names no known commit")
    assert rules.judge_rollback_order() == rules.Ruling("skip", "a rollback: the no-downgrade guard does not apply")
    assert not rules.judge_rollback_order().decides


def test_a_registry_without_an_archive_skips_the_archive_check() -> None:
    ruling = rules.judge_unarchivable("registry.example.com")
    assert ruling == rules.Ruling("skip", "registry.example.com is not ECR: images are never archived")


def test_the_commit_decisions_dry_run_and_committed_say_what_was_or_would_be_written() -> None:
    dry = rules.judge_dry_run("global.imageTag", "cf3124b")
    assert _decision(dry) == ("pass", Verdict.PROMOTE, Reason.READY)
    assert (dry.detail, dry.message) == ("would set global.imageTag to cf3124b", "dry run: nothing written")
    done = rules.judge_committed(
        "o/g", "9" * 40, ["web.image.tag", "api.image.tag"], "cf3124b", field="global.imageTag", previous_tag="aaaaaaa"
    )
    assert _decision(done) == ("pass", Verdict.PROMOTE, Reason.COMMITTED)
    assert done.detail == f"{'9' * 12} sets web.image.tag, api.image.tag to cf3124b"
    assert done.message == f"o/g@{'9' * 12}: global.imageTag 'aaaaaaa' -> 'cf3124b'"
    first = rules.judge_committed("o/g", "9" * 40, ["t"], "cf3124b", field="t", previous_tag=None)
    assert first.message == f"o/g@{'9' * 12}: t None -> 'cf3124b'"


def test_a_pull_request_github_does_not_merge_yet_waits() -> None:
    url = "https://github.com/o/g/pull/7"
    merged = rules.judge_pull_request(url, "cf3124b", merged_commit="9" * 40, github_says="")
    assert merged == rules.Ruling("pass", f"{url} merged as {'9' * 12}")
    waiting = rules.judge_pull_request(url, "cf3124b", merged_commit=None, github_says="review required")
    assert _decision(waiting) == ("wait", Verdict.WAIT, Reason.PULL_REQUEST_OPEN)
    assert waiting.detail.startswith(
        f"{url} proposes cf3124b and waits: GitHub does not merge it yet (review required)"
    )


def test_an_archived_image_alerts_only_where_it_is_deployed() -> None:
    restored = rules.judge_image_restored("a/web", D1)
    assert _decision(restored) == ("skip", Verdict.IGNORE, Reason.IMAGE_RESTORED)
    assert (restored.detail, restored.message) == (
        f"a/web@{D1} was restored to ECR standard storage",
        f"a/web@{D1} was restored; nothing to do",
    )
    unused = rules.judge_archived_not_deployed("a/web", D1)
    assert _decision(unused) == ("skip", Verdict.IGNORE, Reason.IMAGE_ARCHIVED_NOT_DEPLOYED)
    alert = rules.judge_archived_deployed("prod", "cf3124b", "a/web", D1)
    assert _decision(alert) == ("fail", Verdict.ALERT, Reason.IMAGE_ARCHIVED)
    assert alert.detail == rules.archived_deployed_message("prod", "cf3124b", "a/web", D1)
    assert "tagrelay rollback --env prod" in alert.detail and "--target-storage-class STANDARD" in alert.detail


def test_a_ruling_may_decide_with_another_message_than_its_check_detail() -> None:
    evaluation = Evaluation(event_id="e")
    evaluation.apply("prod: commit", rules.judge_dry_run("t", "cf3124b"), ["prod"], previous_tag="aaaaaaa")
    assert evaluation.checks[0].detail == "would set t to cf3124b"
    assert (evaluation.decisions[0].message, evaluation.decisions[0].previous_tag) == (
        "dry run: nothing written",
        "aaaaaaa",
    )


def test_an_operator_change_that_waits_or_is_rejected_is_recorded_as_refused() -> None:
    assert rules.ledger_outcome(Verdict.REJECT, by_operator=True) is Outcome.REFUSED
    assert rules.ledger_outcome(Verdict.WAIT, by_operator=True) is Outcome.REFUSED
    assert rules.ledger_outcome(Verdict.PROMOTE, by_operator=True) is Outcome.COMMITTED
    assert rules.ledger_outcome(Verdict.REJECT, by_operator=False) is Outcome.REJECTED  # a release, from a push
    assert rules.ledger_outcome(Verdict.WAIT, by_operator=False) is Outcome.WAITING


def test_a_deployment_another_invocation_recorded_first_is_this_events_noop() -> None:
    noop = rules.judge_deployment_already_recorded("o/gitops", "9" * 40)
    assert _decision(noop) == ("skip", Verdict.NOOP, Reason.ALREADY_DEPLOYED)
    assert noop.recorded_as() == (
        Outcome.NOOP,
        Reason.ALREADY_DEPLOYED,
        f"the deployment of o/gitops@{'9' * 12} was already recorded",
    )
    with pytest.raises(ValueError, match="decides nothing"):
        rules.Ruling("pass", "fine").recorded_as()
