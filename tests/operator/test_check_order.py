"""The documented check order is the code's: one list in code (domain/decision.py), the promoter's
evaluations follow it, and docs/promotion.md's table lists it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tagrelay.domain.decision import OPERATOR_CHECK_ORDER, PUSH_CHECK_ORDER

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
