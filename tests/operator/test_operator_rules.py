"""The pure rules of operator requests (domain/operator.py): the payload, its binding, the tag of a SHA,
the default rollback target."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tagrelay.domain.decision import Reason
from tagrelay.domain.operator import (
    InvalidOperatorRequest,
    hint_for,
    is_operator_request,
    parse_operator_request,
    release_tag_for,
    request_binding,
    rollback_target,
)
from tagrelay.domain.records import DecisionRecord, EnvironmentState

SHA = "1e07581f00dbeefcafe0123456789abcdef01234"
# What every change carries: the command's request id and the tag it planned against.
ONCE: dict[str, Any] = {"request_id": "0b5e3c1e-7f0a-4a57-9d27-3c4e2f1a9b80", "expect_current_tag": "prod-cf3124b"}
DEPLOY: dict[str, Any] = {"tagrelay_operation": "deploy", "app": "mosaic-life", "env": "prod", "sha": SHA, **ONCE}
PIN: dict[str, Any] = {"tagrelay_operation": "pin", "app": "a", "env": "prod", **ONCE}


def test_a_valid_request_is_parsed_with_its_defaults() -> None:
    request = parse_operator_request({**DEPLOY, "identity": {"headers": {}, "body": ""}})

    assert (request.operation, request.app, request.env, request.sha, request.pin) == (
        "deploy",
        "mosaic-life",
        "prod",
        SHA,
        True,
    )
    assert request.identity == {"headers": {}, "body": ""}
    assert (request.request_id, request.expect_current_tag) == (ONCE["request_id"], "prod-cf3124b")
    assert is_operator_request(DEPLOY) and not is_operator_request({"detail-type": "ECR Image Action"})
    rollback = parse_operator_request(
        {"tagrelay_operation": "rollback", "app": "a", "env": "prod", "sha": SHA, "pin": False, **ONCE}
    )
    assert (rollback.sha, rollback.pin) == (SHA, False)
    never_deployed = parse_operator_request({**PIN, "reason": "freeze", "expect_current_tag": None})
    assert never_deployed.expect_current_tag is None
    plan = parse_operator_request({"tagrelay_operation": "plan", "app": "a", "env": "prod", "for": "rollback"})
    assert (plan.planned_for, plan.sha, plan.request_id) == ("rollback", None, None)


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({**DEPLOY, "tagrelay_operation": "nuke"}, "tagrelay_operation must be one of deploy, rollback, pin, unpin"),
        ({k: v for k, v in DEPLOY.items() if k != "sha"}, "deploy needs the field(s) sha"),
        ({k: v for k, v in DEPLOY.items() if k != "request_id"}, "deploy needs the field(s) request_id; is the"),
        ({**DEPLOY, "request_id": "x"}, "request_id must be 8 to 64"),
        ({**DEPLOY, "expect_current_tag": 7}, "expect_current_tag must be the environment's current tag"),
        ({**DEPLOY, "expect_current_tag": "a\nb"}, "expect_current_tag must be the environment's current tag"),
        ({"tagrelay_operation": "plan", "app": "a", "env": "prod", "for": "nuke"}, "for must be one of deploy"),
        ({"tagrelay_operation": "plan", "app": "a", "env": "prod"}, "plan needs the field(s) for"),
        ({**DEPLOY, "force": True}, "unknown field(s) for deploy: force"),
        ({**DEPLOY, "reason": "x"}, "unknown field(s) for deploy: reason"),  # deploy takes no reason
        ({**DEPLOY, "env": "Prod"}, "env must be a configured name"),
        ({**DEPLOY, "app": ["mosaic-life"]}, "app must be a configured name"),
        ({**DEPLOY, "sha": "1E07581"}, "sha must be 7 to 40 lower-case hexadecimal"),
        ({**DEPLOY, "sha": "1e0758"}, "sha must be 7 to 40"),
        ({**DEPLOY, "identity": "arn:aws:iam::1:role/x"}, "identity must be an object"),
        ({**PIN, "reason": " "}, "reason must be a non-empty"),
        ({**PIN, "reason": "a\nb"}, "one line of text"),
        ({**PIN, "reason": "x" * 301}, "longer than 300"),
        ({**DEPLOY, "tagrelay_operation": "rollback", "pin": "yes"}, "pin must be true or false"),
    ],
)
def test_invalid_requests_are_refused_naming_the_field(payload: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidOperatorRequest, match=re.escape(message)):
        parse_operator_request(payload)


def test_the_binding_covers_every_field_but_the_identity_and_not_their_order() -> None:
    binding = request_binding(DEPLOY)

    assert binding == request_binding(dict(reversed(list(DEPLOY.items()))))
    assert binding == request_binding({**DEPLOY, "identity": {"headers": {"a": "b"}, "body": ""}})
    assert len({binding, *(request_binding({**DEPLOY, key: "x"}) for key in DEPLOY)}) == len(DEPLOY) + 1
    assert re.fullmatch(r"[0-9a-f]{64}", binding)


def test_the_release_tag_of_a_sha_follows_the_apps_grammar() -> None:
    bare = re.compile(r"^(?P<sha>[0-9a-f]{7})$")
    prefixed = re.compile(r"^(?P<env>prod|staging)-(?P<sha>[0-9a-f]{7})$")

    assert release_tag_for(SHA, "prod", bare).tag == "1e07581"
    tag = release_tag_for(SHA, "staging", prefixed)
    assert (tag.tag, tag.sha, tag.env) == ("staging-1e07581", "1e07581", "staging")
    with pytest.raises(ValueError, match="'qa-1e07581' does not match the app's tag_pattern"):
        release_tag_for(SHA, "qa", prefixed)
    with pytest.raises(ValueError, match="does not match"):
        release_tag_for(SHA, "prod", re.compile(r"^(?P<sha>[0-9a-f]{8})$"))


def deployment(name: str, status: str | None, trigger: str = "push", tag: str | None = None) -> DecisionRecord:
    return DecisionRecord(
        decision_id=name, app="a", env="prod", outcome="committed", reason="committed", message="",
        created_at="2026-11-26T00:00:00.000Z", trigger=trigger, tag=tag or name, status=status,
    )  # fmt: skip


def current(record: DecisionRecord) -> EnvironmentState:
    return EnvironmentState(app="a", env="prod", current_decision_id=record.decision_id, current_tag=record.tag)


def test_the_default_rollback_target_is_the_last_success_before_the_current_deployment() -> None:
    a, b, c = deployment("a", "SUCCEEDED"), deployment("b", "SUCCEEDED"), deployment("c", "DEGRADED")
    assert rollback_target([c, b, a], current(c)) == b
    # The current one itself is never the target, even when it succeeded.
    assert rollback_target([b, a], current(b)) == a
    # Not a degraded, superseded or still-running deployment.
    d, e = deployment("d", "SUPERSEDED"), deployment("e", "SYNCING")
    assert rollback_target([e, d, c, a], current(e)) == a


def test_the_default_rollback_target_skips_the_running_tag_and_what_was_rolled_back() -> None:
    a, b, c = deployment("a", "SUCCEEDED"), deployment("b", "SUCCEEDED"), deployment("c", "SUCCEEDED")
    back_to_b = deployment("r", "SUCCEEDED", trigger="rollback", tag="b")
    # c was rolled back to b: rolling back again goes to a (not c, not b again).
    assert rollback_target([back_to_b, c, b, a], current(back_to_b)) == a
    # Records newer than the current deployment (a race) are not candidates.
    assert rollback_target([c, b, a], current(b)) == a
    assert rollback_target([a], current(a)) is None
    assert rollback_target([], EnvironmentState(app="a", env="prod")) is None


def test_hints_say_what_to_do_and_a_rollback_is_never_told_to_roll_back() -> None:
    assert hint_for(Reason.NEWER_COMMIT_DEPLOYED, "deploy", "prod", "abc1234") == (
        "to go back on purpose, run: tagrelay rollback --env prod --to abc1234"
    )
    assert hint_for(Reason.NEWER_COMMIT_DEPLOYED, "rollback", "prod", None) is None
    assert "tagrelay unpin --env prod" in (hint_for(Reason.ENVIRONMENT_PINNED, "deploy", "prod", None) or "")
    assert hint_for(Reason.COMMITTED, "deploy", "prod", None) is None


def test_the_operators_section_names_its_errors_and_closes_unlisted_environments() -> None:
    from ruamel.yaml import YAML

    from devstack.stack import EXAMPLE_CONFIG
    from tagrelay.config import ConfigError, parse_config

    data = YAML(typ="safe", pure=True).load(EXAMPLE_CONFIG.read_text())
    oncall, platform = "arn:aws:iam::033691785857:role/oncall", "arn:aws:iam::033691785857:role/platform"
    operators = parse_config({**data, "operators": {"principals": {"prod": [oncall], "*": [platform]}}}).operators

    assert (operators.allowed("prod"), operators.allowed("staging")) == ([oncall, platform], [platform])
    assert parse_config(data).operators.allowed("prod") is None  # no list: IAM alone decides
    for bad, message in (
        ({"principals": {"Prod": []}}, "operators.principals: 'Prod' is neither an environment name nor '*'"),
        ({"principals": {"prod": ["oncall"]}}, "operators.principals: prod: 'oncall' is not an IAM ARN"),
        ({"sts_endpoint": "http://sts.example"}, "operators.sts_endpoint: must be an https URL"),
    ):
        with pytest.raises(ConfigError, match=re.escape(message)):
            parse_config({**data, "operators": bad})
