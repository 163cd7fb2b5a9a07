"""Exactly once on the wire: identity proofs and request ids, driven through the entry points a user
and AWS use (the `tagrelay` command against the local Lambda API, boto3's Invoke with a captured
payload). A captured proof replayed is refused by the function (STS verified it once); a repeated
request id gets the original answer. The faults between two writes, a push racing a rollback and a
change computed against a tag that moved since run on the fakes (tests/services/test_operate.py).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.client import BaseClient

from devstack.scenario import Release, SeedScenario
from devstack.stack import LocalStack
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
from tests.tracking.support import deployment

pytestmark = pytest.mark.stack


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


# ------------------------------------------------------------------------ a push racing a rollback


# ------------------------------------------------------------------------ the environment state heals


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
