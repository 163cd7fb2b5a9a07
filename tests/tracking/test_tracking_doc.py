"""docs/tracking.md says what the code does: one outcome-rules table, in the order of the code's rules,
and a state diagram whose arrows are the allowed transitions, each labelled with rules of that table."""

from __future__ import annotations

import re
from pathlib import Path

from tagrelay.domain.outcome import ALLOWED_TRANSITIONS, ENVIRONMENT_RULES, RULES, DeploymentState
from tagrelay.services.track import PLAN_RULES

DOC = Path(__file__).resolve().parents[2] / "docs" / "tracking.md"


def section(title: str) -> str:
    text = DOC.read_text(encoding="utf-8")
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## )", text, flags=re.MULTILINE | re.DOTALL)
    assert match, f"docs/tracking.md has no section {title!r}"
    return match.group(1)


def rules_table() -> list[tuple[str, str, str]]:
    """(#, rule, outcome) of every row of the outcome-rules table."""
    rows = re.findall(r"^\| ([^|]+?) \| `(\w+)` \| ([^|]+?) \|", section("Outcome rules"), flags=re.MULTILINE)
    return [(number.strip(), rule, outcome.strip()) for number, rule, outcome in rows]


def diagram() -> dict[tuple[str, str], list[str]]:
    """(from, to) -> rule labels of every arrow between two states of the diagram."""
    block = re.search(r"```mermaid\n(.*?)```", section("States"), flags=re.DOTALL)
    assert block
    arrows: dict[tuple[str, str], list[str]] = {}
    for source, target, label in re.findall(r"^\s*(\w+) --> (\w+)(?:: (.*))?$", block.group(1), flags=re.MULTILINE):
        arrows[(source, target)] = [name.strip() for name in label.split(",")] if label else []
    return arrows


def test_there_is_exactly_one_outcome_rules_table_and_it_lists_the_codes_rules_in_order() -> None:
    expected = [(str(index), rule.name, str(rule.outcome)) for index, rule in enumerate(RULES, start=1)]
    expected += [("environment", name, outcome) for name, outcome in ENVIRONMENT_RULES]
    expected += [("plan", name, outcome) for name, outcome in PLAN_RULES]

    assert rules_table() == expected
    assert DOC.read_text(encoding="utf-8").count("| # | rule | outcome |") == 1


def test_the_diagrams_arrows_are_the_allowed_transitions() -> None:
    arrows = {pair for pair in diagram() if "[*]" not in pair}
    allowed = {(before.value, after.value) for before, afters in ALLOWED_TRANSITIONS.items() for after in afters}

    assert arrows == allowed


def test_each_arrow_is_labelled_with_rules_that_lead_to_its_target_and_every_outcome_rule_has_one() -> None:
    outcomes = {rule: outcome for _, rule, outcome in rules_table()}
    labelled: set[str] = set()
    for (source, target), labels in diagram().items():
        if source not in DeploymentState.__members__ or target not in DeploymentState.__members__:
            continue
        assert labels, f"the arrow {source} --> {target} names no rule"
        for label in labels:
            assert label in outcomes, f"{source} --> {target}: {label} is not a rule of the table"
            assert target in outcomes[label], f"{source} --> {target}: rule {label} leads to {outcomes[label]}"
            labelled.add(label)
    leading_to_a_state = {
        rule for rule, outcome in outcomes.items() if any(state.value in outcome for state in DeploymentState)
    }
    assert labelled == leading_to_a_state
