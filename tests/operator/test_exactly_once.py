"""Exactly once under faults: each failure found by fault injection, driven through the entry points a
user and AWS use (the `tagrelay` command against the local Lambda API, the promoter handler with
real-shaped events).

Faults come from the local servers' own fault controls: the DynamoDB fault proxy in front of moto
(devstack/dynamodb_faults.py; boto3 makes 3 attempts, so a count of 3 makes one write fail) and the
GitHub stand-in's. Where two requests must interleave in one order, the in-process promoter's GitHub
client is wrapped to run the other request at that point.
"""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Iterator, Mapping
from typing import Any

import pytest
from botocore.client import BaseClient

from devstack.lambda_context import lambda_context
from devstack.scenario import Release, SeedScenario
from devstack.stack import LocalStack
from tagrelay.errors import TransientError
from tests.operator.support import (
    Configure,
    deployed,
    gitops_tag,
    invoke_raw,
    pushed,
    records,
    run,
    run_json,
    state,
    subjects,
)
from tests.tracking.support import deliver, deployment

pytestmark = pytest.mark.stack

# A write fails when every one of boto3's attempts (standard retry mode: 3) is throttled.
ALL_ATTEMPTS = 3
# botocore's JSON: the pin's audit record, and the update that makes a deployment current.
PIN_RECORD = r'"outcome":\s*\{"S":\s*"pinned"\}'
STATE_ADVANCE = r"current_decision_id = :id"


@pytest.fixture
def invocations(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[str, dict[str, Any]]]]:
    """Every AWS API call the test process makes through botocore: (operation, parameters), as sent."""
    seen: list[tuple[str, dict[str, Any]]] = []
    original = getattr(BaseClient, "_make_api_call")  # noqa: B009 - private to botocore, untyped

    def recording(self: BaseClient, operation_name: str, api_params: dict[str, Any]) -> Any:
        seen.append((operation_name, dict(api_params)))
        return original(self, operation_name, api_params)

    monkeypatch.setattr(BaseClient, "_make_api_call", recording)
    yield seen


def three_releases(scenario: SeedScenario, setup: Any) -> tuple[Release, Release, Release]:
    """A and B reached SUCCEEDED in prod; C, running now, is DEGRADED."""
    a = deployed(scenario, setup, "prod")
    b = deployed(scenario, setup, "prod")
    c = deployed(scenario, setup, "prod", mark="degraded")
    assert deployment("prod", c.tag).status == "DEGRADED"
    return a, b, c


def rollback_commits(scenario: SeedScenario) -> list[str]:
    return [s for s in subjects(scenario, 50) if s.startswith("rollback(prod)")]


# ------------------------------------------------------------------------ a rerun rollback


def test_running_a_rollback_again_after_its_last_ledger_write_failed_does_not_go_back_further(
    stack: LocalStack, scenario: SeedScenario, operator_env: Configure, capsys: pytest.CaptureFixture[str]
) -> None:
    setup = operator_env()
    _, b, c = three_releases(scenario, setup)
    stack.dynamodb_faults.inject(operation="PutItem", body_regex=PIN_RECORD, count=ALL_ATTEMPTS)

    code, _, err = run(capsys, "rollback", "--env", "prod", "--reason", "checkout errors")

    assert code == 1 and "run the same command again" in err, err
    assert gitops_tag(scenario, "prod") == b.tag  # the commit happened; its last record did not
    stack.dynamodb_faults.clear()

    code, answer, err = run_json(capsys, "rollback", "--env", "prod", "--reason", "checkout errors")

    assert code == 0, err
    assert (answer["outcome"], answer["tag"], answer["previous_tag"]) == ("committed", b.tag, c.tag), answer
    assert gitops_tag(scenario, "prod") == b.tag
    assert rollback_commits(scenario) == [f"rollback(prod): revert to {b.tag}"]
    assert [r.tag for r in records("prod") if r.trigger == "rollback" and r.outcome == "committed"] == [b.tag]
    pinned = state("prod")
    assert pinned is not None and pinned.pinned and pinned.current_tag == b.tag


# ------------------------------------------------------------------------ a push racing a rollback


def test_a_push_that_passed_the_pin_check_just_before_a_rollback_does_not_undo_it(
    scenario: SeedScenario,
    operator_env: Configure,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from tagrelay import runtime

    setup = operator_env()
    _, b, _ = three_releases(scenario, setup)
    newer = pushed(scenario, "prod")
    github = runtime.promoter().deps.github
    write_file = github.write_file
    rollbacks: list[int] = []

    def rollback_first(*args: Any, **kwargs: Any) -> Any:
        # The push has read the values file and passed the pin check; the rollback pins and commits now.
        if not rollbacks:
            rollbacks.append(run(capsys, "rollback", "--env", "prod")[0])
        return write_file(*args, **kwargs)

    monkeypatch.setattr(github, "write_file", rollback_first)

    decisions = deliver(newer, setup)

    assert rollbacks == [0]
    assert "promote" not in decisions, decisions
    assert gitops_tag(scenario, "prod") == b.tag
    pinned = state("prod")
    assert pinned is not None and pinned.pinned and pinned.current_tag == b.tag
    skipped = [r for r in records("prod") if r.tag == newer.tag and r.outcome == "skipped"]
    assert skipped and {r.reason for r in skipped} == {"environment_pinned"}


# ------------------------------------------------------------------------ the environment state heals


def test_a_failed_environment_state_update_heals_on_the_retry_and_a_rollback_then_goes_one_step_back(
    stack: LocalStack, scenario: SeedScenario, operator_env: Configure, capsys: pytest.CaptureFixture[str]
) -> None:
    from tagrelay.handlers.promoter import handler

    setup = operator_env()
    deployed(scenario, setup, "prod")
    b = deployed(scenario, setup, "prod")
    c = pushed(scenario, "prod")
    setup.control.tick(1)
    stack.dynamodb_faults.inject(operation="UpdateItem", body_regex=STATE_ADVANCE, count=ALL_ATTEMPTS)

    failed = None
    for event in c.events:  # until the event that completes the release fails after committing
        try:
            handler(event, lambda_context("promoter"))
        except TransientError:
            failed = event
            break
    assert failed is not None and gitops_tag(scenario, "prod") == c.tag
    stale = state("prod")
    assert stale is not None and stale.current_tag == b.tag

    handler(failed, lambda_context("promoter"))  # Lambda retries the invocation

    current = state("prod")
    assert current is not None and current.current_tag == c.tag
    assert current.current_decision_id == deployment("prod", c.tag).decision_id
    setup.control.settle()
    code, answer, err = run_json(capsys, "rollback", "--env", "prod")
    assert code == 0, err
    assert (answer["tag"], answer["previous_tag"]) == (b.tag, c.tag)


# ------------------------------------------------------------------------ identity proofs are single-use


def test_a_captured_rollback_payload_replayed_is_refused_and_does_not_step_back_again(
    stack: LocalStack,
    scenario: SeedScenario,
    operator_env: Configure,
    capsys: pytest.CaptureFixture[str],
    invocations: list[tuple[str, dict[str, Any]]],
) -> None:
    setup = operator_env()
    _, b, _ = three_releases(scenario, setup)
    code, _, err = run(capsys, "rollback", "--env", "prod")
    assert code == 0, err
    [*_, (_, parameters)] = [call for call in invocations if call[0] == "Invoke"]
    captured = json.loads(parameters["Payload"])
    assert captured["tagrelay_operation"] == "rollback"

    for _ in range(2):
        answer = invoke_raw(stack, captured)

        assert (answer["ok"], answer["reason"]) == (False, "identity_replayed"), answer
    assert gitops_tag(scenario, "prod") == b.tag
    assert len(rollback_commits(scenario)) == 1


def test_a_captured_pin_payload_replayed_is_refused(
    stack: LocalStack,
    scenario: SeedScenario,
    operator_env: Configure,
    capsys: pytest.CaptureFixture[str],
    invocations: list[tuple[str, dict[str, Any]]],
) -> None:
    operator_env()
    assert run(capsys, "pin", "--env", "staging", "--reason", "load test")[0] == 0
    assert run(capsys, "unpin", "--env", "staging")[0] == 0
    pin_payload = next(
        json.loads(p["Payload"])
        for op, p in invocations
        if op == "Invoke" and json.loads(p["Payload"])["tagrelay_operation"] == "pin"
    )

    answer = invoke_raw(stack, pin_payload)

    assert (answer["ok"], answer["reason"]) == (False, "identity_replayed"), answer
    unpinned = state("staging")
    assert unpinned is not None and not unpinned.pinned
    # (One instant on the simulator's manual clock: the order of the two records is not asserted.)
    assert sorted(r.outcome for r in records("staging") if r.outcome in ("pinned", "unpinned")) == [
        "pinned",
        "unpinned",
    ]


# ------------------------------------------------------------------------ preconditions and request ids


def test_an_operator_change_computed_against_a_tag_that_no_longer_holds_is_refused_as_a_conflict(
    scenario: SeedScenario,
    operator_env: Configure,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from tagrelay import runtime
    from tagrelay.ports import PromoterFunction

    setup = operator_env()
    _, b, c = three_releases(scenario, setup)
    newer = pushed(scenario, "prod")
    pushes: list[list[str]] = []
    deployed = runtime.promoter_function

    class PushAfterPlanning:
        def __init__(self, function: PromoterFunction) -> None:
            self.function = function

        def call(self, operation: str, fields: Mapping[str, Any]) -> dict[str, Any]:
            if operation != "plan" and not pushes:
                with contextlib.redirect_stdout(io.StringIO()):  # the handler's metrics are not the command's output
                    pushes.append(deliver(newer, setup))  # lands between the command's plan and its change
            return self.function.call(operation, fields)

    monkeypatch.setattr(runtime, "promoter_function", lambda *a, **k: PushAfterPlanning(deployed(*a, **k)))

    code, answer, err = run_json(capsys, "rollback", "--env", "prod")

    assert "promote" in pushes[0]
    assert code == 1 and answer["reason"] == "precondition_failed", answer
    assert f"prod now runs {newer.tag}" in answer["message"] and c.tag in answer["message"]
    assert "run the command again" in err
    assert gitops_tag(scenario, "prod") == newer.tag
    assert rollback_commits(scenario) == []
    unpinned = state("prod")
    assert unpinned is not None and not unpinned.pinned and unpinned.current_tag == newer.tag
    assert b.tag != newer.tag


def test_a_repeated_request_id_gets_the_original_outcome_and_changes_nothing(
    stack: LocalStack,
    scenario: SeedScenario,
    operator_env: Configure,
    capsys: pytest.CaptureFixture[str],
    invocations: list[tuple[str, dict[str, Any]]],
) -> None:
    operator_env()
    release = pushed(scenario, "staging")
    code, first, _ = run_json(capsys, "deploy", release.sha, "--env", "staging")
    assert code == 0 and first["outcome"] == "committed"
    [*_, (_, parameters)] = [call for call in invocations if call[0] == "Invoke"]
    sent = json.loads(parameters["Payload"])
    later = pushed(scenario, "staging")

    # The same request (same id, same precondition), with a fresh identity proof: what a retry sends.
    from tests.operator.test_operator_requests import signed

    request = {key: value for key, value in sent.items() if key != "identity"}
    answer = invoke_raw(stack, signed(stack, request))

    assert (answer["ok"], answer["outcome"], answer["gitops_commit"]) == (True, "committed", first["gitops_commit"])
    assert answer["replayed"] is True
    assert gitops_tag(scenario, "staging") == release.tag
    # The same id with another request is refused.
    other = signed(stack, {**request, "sha": later.sha})
    refused = invoke_raw(stack, other)
    assert (refused["ok"], refused["reason"]) == (False, "request_id_reused"), refused
    assert gitops_tag(scenario, "staging") == release.tag
