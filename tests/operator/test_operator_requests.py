"""Operator requests as the promoter function receives them: strict payloads, verified identities, the
operators.principals allow-list, unknown apps and environments. Invoked through boto3 and the local
Lambda API; the payloads a real CLI would never send are built by hand here."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.credentials import ReadOnlyCredentials

from devstack.scenario import SeedScenario
from devstack.stack import LocalStack
from tagrelay.adapters.identity import default_sts_endpoint, sign_caller_identity
from tagrelay.domain.operator import request_binding
from tests.operator.support import Configure, invoke_raw, records, run, state

pytestmark = pytest.mark.stack


def signed(stack: LocalStack, request: dict[str, Any], *, binding_of: dict[str, Any] | None = None) -> dict[str, Any]:
    """``request`` with an identity proof for the stack's credentials, bound to ``binding_of`` (default: itself)."""
    env = stack.aws_env
    credentials = ReadOnlyCredentials(env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"], env["AWS_SESSION_TOKEN"])
    proof = sign_caller_identity(
        credentials,
        endpoint=default_sts_endpoint("us-east-1"),
        region="us-east-1",
        binding=request_binding(binding_of or request),
    )
    return {**request, "identity": proof}


PIN: dict[str, Any] = {
    "tagrelay_operation": "pin",
    "app": "mosaic-life",
    "env": "prod",
    "reason": "freeze",
    "request_id": "5d0c2b8e-4f7d-4a0e-9b7a-1c2d3e4f5a6b",
    "expect_current_tag": "prod-cf3124b",
}


def test_without_a_verified_identity_nothing_happens(
    stack: LocalStack, scenario: SeedScenario, operator_env: Configure
) -> None:
    operator_env()
    cases = {
        "no identity": (PIN, "identity_missing"),
        "a proof for another request": (signed(stack, PIN, binding_of={**PIN, "env": "staging"}), "identity_invalid"),
        "a proof for the same request elsewhere": (
            {**signed(stack, {**PIN, "env": "staging"}), "env": "prod"},
            "identity_invalid",
        ),
        "a forged identity field": (
            {**PIN, "identity": {"arn": "arn:aws:iam::123456789012:role/admin"}},
            "identity_invalid",
        ),
    }
    for case, (payload, reason) in cases.items():
        answer = invoke_raw(stack, payload)

        assert (answer["ok"], answer["outcome"], answer["reason"]) == (False, "refused", reason), (case, answer)
        assert "actor" not in answer, case
    assert state("prod") is None and records("prod") == []


def test_payloads_are_validated_strictly_and_unknown_apps_or_environments_refused(
    stack: LocalStack, scenario: SeedScenario, operator_env: Configure
) -> None:
    operator_env()
    cases: dict[str, tuple[dict[str, Any], str, str]] = {
        "an unknown field": ({**PIN, "force": True}, "invalid_request", "unknown field(s) for pin: force"),
        "an unknown operation": ({**PIN, "tagrelay_operation": "destroy"}, "invalid_request", "must be one of"),
        "a bad SHA": (
            {**{k: v for k, v in PIN.items() if k != "reason"}, "tagrelay_operation": "deploy", "sha": "HEAD~1"},
            "invalid_request",
            "sha must be 7 to 40",
        ),
        "an unknown app": ({**PIN, "app": "shop"}, "unknown_app", "no app 'shop'; configured: mosaic-life"),
        "an unknown environment": ({**PIN, "env": "qa"}, "unknown_environment", "no environment 'qa'"),
    }
    for case, (request, reason, message) in cases.items():
        answer = invoke_raw(stack, signed(stack, request))

        assert (answer["ok"], answer["reason"]) == (False, reason), (case, answer)
        assert message in answer["message"], (case, answer)
    assert state("prod") is None


def test_operators_principals_limit_who_may_act_on_an_environment(
    stack: LocalStack,
    scenario: SeedScenario,
    operator_env: Configure,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    iam = stack.aws_client("iam")
    user = f"oncall-{scenario.gitops_repo.split('/')[0]}"[:64]
    alice = iam.create_user(UserName=user)["User"]["Arn"]
    key = iam.create_access_key(UserName=user)["AccessKey"]
    operator_env(operators={"principals": {"prod": [alice], "*": ["arn:aws:iam::123456789012:role/platform"]}})

    code, _, err = run(capsys, "pin", "--env", "prod", "--reason", "freeze")

    assert code == 1
    assert "refused (not_allowed): arn:aws:sts::123456789012:user/moto may not act on prod" in err
    assert "operators.principals.prod" in err
    assert state("prod") is None

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", key["AccessKeyId"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", key["SecretAccessKey"])
    monkeypatch.delenv("AWS_SESSION_TOKEN")
    code, _, err = run(capsys, "pin", "--env", "prod", "--reason", "freeze")

    assert (code, err) == (0, ""), err
    pinned = state("prod")
    assert pinned is not None and pinned.pinned_by == alice
    [record] = [r for r in records("prod") if r.outcome == "pinned"]
    assert (record.outcome, record.actor, record.trigger) == ("pinned", alice, "manual")
    # staging lists nobody but the platform role: alice may not act there.
    assert run(capsys, "unpin", "--env", "staging")[0] == 1
