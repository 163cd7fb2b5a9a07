"""The documented check order is the code's: one list in code (domain/decision.py), the promoter's
evaluations follow it, and docs/promotion.md's table lists it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from devstack.lambda_context import lambda_context
from devstack.scenario import SeedScenario
from tagrelay.domain.decision import OPERATOR_CHECK_ORDER, PUSH_CHECK_ORDER
from tests.operator.support import Configure, pushed, run_json

pytestmark = pytest.mark.stack

PROMOTION_DOC = Path(__file__).resolve().parents[2] / "docs" / "promotion.md"


def generic(name: str, envs: tuple[str, ...] = ("prod", "staging")) -> str:
    """A recorded check name with its environment replaced by the list's placeholder."""
    for env in envs:
        if name.startswith(f"{env}: "):
            return "{env}: " + name.removeprefix(f"{env}: ")
    return name


def follows(names: list[str], order: tuple[str, ...]) -> bool:
    """Whether ``names`` (checks skipped on the way left out) appear in ``order``'s order."""
    position = 0
    for name in names:
        try:
            position = order.index(name, position) + 1
        except ValueError:
            return False
    return True


def documented_order() -> list[str]:
    section = PROMOTION_DOC.read_text(encoding="utf-8").split("## 3. Checks, in order")[1].split("\n## ")[0]
    return re.findall(r"^\| \d+ \| `([a-z ]+)` \|", section, flags=re.MULTILINE)


def test_the_document_lists_the_codes_order() -> None:
    assert documented_order() == [name.removeprefix("{env}: ") for name in PUSH_CHECK_ORDER]
    assert OPERATOR_CHECK_ORDER[:2] == ("commit", "{env}: branch")  # the paragraph below the table


def test_the_order_check_can_fail() -> None:
    assert follows(["readiness", "signatures", "commit"], PUSH_CHECK_ORDER)
    assert not follows(["signatures", "readiness"], PUSH_CHECK_ORDER)
    assert not follows(["commit", "readiness"], PUSH_CHECK_ORDER)
    assert follows(["commit", "{env}: branch", "readiness"], OPERATOR_CHECK_ORDER)


def test_a_push_is_evaluated_in_the_documented_order(scenario: SeedScenario, operator_env: Configure) -> None:
    from tagrelay.handlers.promoter import handler

    operator_env()
    release = scenario.release(scenario.commit("main"), branch="main")
    results = [handler(event, lambda_context("promoter")) for event in release.events]
    assert "promote" in [r["decision"] for r in results]
    for result in results:
        names = [generic(check["name"]) for check in result["checks"] if check["name"] != "event digest"]
        assert follows(names, PUSH_CHECK_ORDER), names


def test_an_operator_request_is_evaluated_in_its_documented_order(
    scenario: SeedScenario, operator_env: Configure, capsys: pytest.CaptureFixture[str]
) -> None:
    operator_env()
    release = pushed(scenario, "staging")
    code, answer, _ = run_json(capsys, "deploy", release.sha[:7], "--env", "staging")
    assert code == 0
    names = [generic(check["name"]) for check in answer["checks"]]
    assert names[:2] == ["commit", "{env}: branch"]
    assert follows(names, OPERATOR_CHECK_ORDER), names
    assert not follows(names, PUSH_CHECK_ORDER)  # the orders differ, and the code keeps them apart

    develop_only = pushed(scenario, "staging")
    code, answer, _ = run_json(capsys, "deploy", develop_only.sha, "--env", "prod")
    assert code == 1 and answer["reason"] == "commit_not_on_branch"
    assert [generic(check["name"]) for check in answer["checks"]] == ["commit", "{env}: branch"]
