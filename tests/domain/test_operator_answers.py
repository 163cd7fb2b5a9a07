"""What an operator request comes to (domain/operator.py's answers): each refusal from the facts the
service gathered, and the answers of the changes that go through. Pure: no stack, no fakes."""

from __future__ import annotations

import re

from tagrelay.domain import operator as rules
from tagrelay.domain.decision import Outcome, Reason, Verdict
from tagrelay.domain.operator import Answer
from tagrelay.domain.records import DecisionRecord, EnvironmentState
from tagrelay.domain.tags import ReleaseTag

ARN = "arn:aws:sts::123456789012:assumed-role/oncall/alice"
SHA = "1e07581f00dbeefcafe0123456789abcdef01234"
PREFIXED = re.compile(r"^(?P<env>[a-z]+)-(?P<sha>[0-9a-f]{7})$")


def refusal(reason: Reason, message: str) -> Answer:
    return Answer(Outcome.REFUSED, reason, message)


def test_an_answer_is_ok_unless_it_refuses() -> None:
    assert not rules.refused(Reason.UNKNOWN_APP, "m").ok
    assert Answer(Outcome.NOOP, Reason.NOT_PINNED, "m").ok


def test_an_invalid_payload_and_an_unverified_caller_are_refused_with_what_was_wrong() -> None:
    assert rules.refuse_invalid_request("sha must be hex") == refusal(
        Reason.INVALID_REQUEST, "invalid operator request: sha must be hex"
    )
    assert rules.refuse_unverified_identity("identity_replayed", "the proof was used before") == refusal(
        Reason.IDENTITY_REPLAYED, "the caller's identity could not be verified: the proof was used before"
    )


def test_only_a_listed_principal_may_act_when_a_list_is_configured() -> None:
    assert rules.judge_principal(ARN, "prod", None) is None  # no list: IAM alone decides
    assert rules.judge_principal(ARN, "prod", ["arn:aws:iam::123456789012:role/oncall"]) is None
    assert rules.judge_principal(ARN, "prod", ["arn:aws:iam::123456789012:role/release"]) == refusal(
        Reason.NOT_ALLOWED, f"{ARN} may not act on prod (operators.principals)"
    )
    assert rules.judge_principal(ARN, "prod", []) is not None  # a list for other environments only


def test_an_unknown_app_or_environment_is_refused_naming_the_configured_ones() -> None:
    assert rules.judge_app("web", {"web": 1, "api": 2}) is None
    assert rules.judge_app("wbe", {"web": 1, "api": 2}) == refusal(
        Reason.UNKNOWN_APP, "no app 'wbe'; configured: web, api"
    )
    assert rules.judge_environment("web", "prod", ["staging", "prod"]) is None
    assert rules.judge_environment("web", "qa", ["staging", "prod"]) == refusal(
        Reason.UNKNOWN_ENVIRONMENT, "web has no environment 'qa'; configured: staging, prod"
    )


def test_a_request_id_names_one_request() -> None:
    assert rules.judge_request_id("r-0000001", fingerprint="f1", earlier_fingerprint=None) is None
    assert rules.judge_request_id("r-0000001", fingerprint="f1", earlier_fingerprint="f1") is None  # a repeat
    assert rules.judge_request_id("r-0000001", fingerprint="f2", earlier_fingerprint="f1") == refusal(
        Reason.REQUEST_ID_REUSED, "request id r-0000001 was used for another request; nothing was changed"
    )


def test_a_deploy_is_planned_only_for_a_named_commit_a_rollback_also_without() -> None:
    assert rules.judge_plan("deploy", SHA) is None
    assert rules.judge_plan("rollback", None) is None
    assert rules.judge_plan("pin", None) is None
    assert rules.judge_plan("deploy", None) == refusal(
        Reason.INVALID_REQUEST, "a deploy names the commit to deploy (sha)"
    )


def test_a_values_file_tagrelay_cannot_read_is_refused_with_what_the_store_or_parser_said() -> None:
    assert rules.refuse_values_file_missing("o/g:environments/prod/values.yaml does not exist") == refusal(
        Reason.VALUES_FILE_MISSING, "o/g:environments/prod/values.yaml does not exist; create it first"
    )
    assert rules.refuse_values_file_unreadable("prod", "line 3: not a mapping") == refusal(
        Reason.VALUES_FILE_INVALID, "the values file of prod cannot be read: line 3: not a mapping"
    )


def test_a_change_is_refused_when_the_environment_changed_since_the_command_planned() -> None:
    assert rules.judge_still_current("prod", expected_tag="prod-aaaaaaa", current_tag="prod-aaaaaaa") is None
    assert rules.judge_still_current("prod", expected_tag=None, current_tag=None) is None
    assert rules.judge_still_current("prod", expected_tag="prod-aaaaaaa", current_tag=None) == refusal(
        Reason.PRECONDITION_FAILED,
        "prod now runs no tag, not prod-aaaaaaa as when the command was prepared: nothing was changed; "
        "run the command again to act on what runs now",
    )


def test_the_release_tag_of_a_sha_or_why_the_grammar_gives_none() -> None:
    assert rules.judge_release_tag(SHA, "prod", PREFIXED) == ReleaseTag("prod-1e07581", "1e07581", "prod")
    refused = rules.judge_release_tag(SHA, "prod", re.compile(r"^(?P<sha>[0-9a-f]{8})$"))
    assert isinstance(refused, Answer) and refused.reason is Reason.TAG_NOT_DERIVABLE
    assert refused.message.startswith("cannot derive the release tag of 1e07581 for prod:")


def deployment(name: str, status: str | None, tag: str | None = None) -> DecisionRecord:
    return DecisionRecord(
        decision_id=name, app="a", env="prod", outcome="committed", reason="committed", message="",
        created_at="2026-11-26T00:00:00.000Z", trigger="push", tag=tag or name, status=status,
    )  # fmt: skip


def running(record: DecisionRecord) -> EnvironmentState:
    return EnvironmentState(
        app="a", env="prod", current_decision_id=record.decision_id, current_tag=record.tag, committed_at="t"
    )


def test_a_rollback_without_a_target_needs_a_recorded_deployment_and_an_earlier_success() -> None:
    assert rules.judge_rollback_source("a", "prod", running(deployment("prod-ccccccc", "DEGRADED"))) is None
    assert rules.judge_rollback_source("a", "prod", None) == refusal(
        Reason.NO_DEPLOYMENT_RECORDED, "no deployment of a/prod is recorded, so there is no earlier one to go back to"
    )
    assert rules.judge_rollback_source("a", "prod", EnvironmentState(app="a", env="prod")) is not None

    b, c = deployment("prod-bbbbbbb", "SUCCEEDED"), deployment("prod-ccccccc", "DEGRADED")
    assert rules.default_rollback_release("a", "prod", [c, b], running(c), PREFIXED) == ReleaseTag(
        "prod-bbbbbbb", "bbbbbbb", "prod"
    )
    assert rules.default_rollback_release("a", "prod", [c], running(c), PREFIXED) == refusal(
        Reason.NO_EARLIER_SUCCESS, "no deployment of prod reached SUCCEEDED before the current one (prod-ccccccc)"
    )
    old = deployment("v1", "SUCCEEDED")  # a tag of a grammar the app no longer has
    assert rules.default_rollback_release("a", "prod", [c, old], running(c), PREFIXED) == refusal(
        Reason.NO_EARLIER_SUCCESS, "v1 no longer matches a's tag_pattern"
    )


def test_a_deploy_is_done_when_the_promoter_committed_or_the_tag_already_runs_else_refused() -> None:
    committed = rules.judge_evaluated("prod", "prod-1e07581", Verdict.PROMOTE, Reason.COMMITTED, "committed as 9f")
    assert committed == Answer(Outcome.COMMITTED, Reason.COMMITTED, "committed as 9f")
    noop = rules.judge_evaluated("prod", "prod-1e07581", Verdict.NOOP, Reason.ALREADY_DEPLOYED, "values sets it")
    assert noop == Answer(Outcome.NOOP, Reason.ALREADY_DEPLOYED, "prod already runs prod-1e07581; nothing to commit")
    for verdict in (Verdict.REJECT, Verdict.WAIT, Verdict.SUPERSEDED, Verdict.SKIP, Verdict.ALERT, Verdict.IGNORE):
        refused = rules.judge_evaluated("prod", "prod-1e07581", verdict, Reason.SIGNATURE_MISSING, "no signature")
        assert refused == refusal(Reason.SIGNATURE_MISSING, "no signature"), verdict


def test_the_answers_of_changes_that_go_through() -> None:
    assert rules.answer_completed_earlier("prod-1e07581", "9" * 40) == Answer(
        Outcome.COMMITTED,
        Reason.COMMITTED,
        f"completed: an earlier attempt of this request committed prod-1e07581 as {'9' * 12}",
    )
    assert rules.answer_planned("prod", None, "rollback", "no release") == Answer(
        Outcome.PLANNED, Reason.PLANNED, "prod runs no tag; rollback target: no release"
    )
    pinned = EnvironmentState(
        app="a", env="prod", current_tag="prod-1e07581", pinned=True, pinned_by=ARN, pin_reason="incident 7"
    )
    assert rules.answer_pinned("prod", pinned).message == (
        "prod is pinned at prod-1e07581: pushes are recorded as skipped until 'tagrelay unpin --env prod'"
    )
    assert rules.answer_pinned("prod", None).message.startswith("prod is pinned at its current tag:")


def test_unpinning_an_environment_that_is_not_pinned_changes_nothing() -> None:
    assert rules.judge_unpin("prod", None) == Answer(
        Outcome.NOOP, Reason.NOT_PINNED, "prod was not pinned; nothing to do"
    )
    assert rules.judge_unpin("prod", EnvironmentState(app="a", env="prod")).outcome is Outcome.NOOP
    pinned = EnvironmentState(app="a", env="prod", pinned=True, pinned_by=ARN, pin_reason="incident 7")
    assert rules.judge_unpin("prod", pinned) == Answer(
        Outcome.UNPINNED,
        Reason.ENVIRONMENT_UNPINNED,
        f"prod is unpinned (it was pinned by {ARN}: incident 7); the next push promotes as usual",
    )
