"""The vocabulary is typed and everything reads it from one place: a new reason or deployment state
cannot be half-added (written but not documented, recorded but without its metric, alarm or
notification)."""

from __future__ import annotations

from pathlib import Path

from infra import alarms, pipeline_metrics
from tagrelay.domain.decision import LEDGER_OUTCOME, Outcome, Reason, Verdict
from tagrelay.domain.deployment_events import GITHUB_STATE, DeploymentEvent
from tagrelay.domain.outcome import ALLOWED_TRANSITIONS, TERMINAL_STATES, DeploymentState
from tagrelay.domain.records import TRANSIENT_OUTCOMES

DOCS = Path(__file__).resolve().parents[2] / "docs"


def test_every_reason_is_in_the_documented_list() -> None:
    reference = (DOCS / "promotion.md").read_text().split("## 7. Reason codes", 1)[1]
    undocumented = [
        reason.value
        for reason in Reason
        if f"`{reason.value}`" not in reference
        and f"`{reason.value.removeprefix('malformed_event:')}`" not in reference
    ]
    assert undocumented == []


def test_every_verdict_has_its_ledger_outcome_and_its_metric() -> None:
    assert set(LEDGER_OUTCOME) == set(Verdict)
    assert set(LEDGER_OUTCOME.values()) <= set(Outcome)
    assert set(pipeline_metrics.DECISIONS) == set(Verdict)
    assert {Outcome.WAITING, Outcome.NOOP, Outcome.IGNORED} == TRANSIENT_OUTCOMES


def test_every_deployment_state_has_its_transitions_metric_alarm_and_notification() -> None:
    assert set(ALLOWED_TRANSITIONS) == set(DeploymentState)
    assert set(GITHUB_STATE) == set(DeploymentState)
    assert set(pipeline_metrics.OUTCOMES) == set(TERMINAL_STATES)
    assert set(pipeline_metrics.FAILED_OUTCOMES) == {state for state in DeploymentState if state.is_failure}
    assert alarms._camel(DeploymentState.SYNC_FAILED) == "SyncFailed"
    for state in DeploymentState:  # each has its words in a notification
        event = DeploymentEvent("a", "prod", "abc1234", "a" * 40, "o/src", state, "d", "push", "o/gitops", None, None)
        assert event.summary().startswith("a abc1234 to prod: ")
