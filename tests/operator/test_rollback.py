"""`tagrelay rollback` and `tagrelay pin`/`unpin` end to end, with outcomes recorded by the tracker.

Releases are promoted by pushes through the promoter handler, Argo CD (simulated) syncs them, and the
tracker records SUCCEEDED or DEGRADED; the rollback then goes through the command, the Lambda API and
the promoter function, like in production. The rollback target's rules, refusals and faults are
tested on the fakes (tests/services/test_operate.py).
"""

from __future__ import annotations

import pytest

from devstack.scenario import SeedScenario
from tests.operator.support import (
    Configure,
    deployed,
    gitops_tag,
    pushed,
    records,
    run,
    run_json,
    state,
    subjects,
)
from tests.tracking.support import deliver, deployment

pytestmark = pytest.mark.stack

MOTO_CALLER = "arn:aws:sts::123456789012:user/moto"


def test_rollback_returns_to_the_last_succeeded_release_pins_and_a_push_is_then_skipped(
    scenario: SeedScenario, operator_env: Configure, capsys: pytest.CaptureFixture[str]
) -> None:
    setup = operator_env()
    good = deployed(scenario, setup, "prod")
    bad = deployed(scenario, setup, "prod", mark="degraded")
    assert deployment("prod", bad.tag).status == "DEGRADED"

    code, out, err = run(capsys, "rollback", "--env", "prod", "--reason", "checkout errors")

    assert (code, err) == (0, "")
    assert f"mosaic-life/prod: {good.tag} (was {bad.tag}) committed as" in out
    assert f"pinned: rollback to {good.tag} by {MOTO_CALLER}: checkout errors" in out
    assert subjects(scenario)[0] == f"rollback(prod): revert to {good.tag}"
    assert gitops_tag(scenario, "prod") == good.tag
    # The pin's record and the deployment's (same instant on the simulator's manual clock).
    [pinned] = [r for r in records("prod") if r.trigger == "rollback" and r.outcome == "pinned"]
    [rollback] = [r for r in records("prod") if r.trigger == "rollback" and r.outcome == "committed"]
    assert (pinned.outcome, pinned.actor, pinned.tag) == ("pinned", MOTO_CALLER, good.tag)
    assert (rollback.outcome, rollback.actor, rollback.tag, rollback.previous_tag) == (
        "committed",
        MOTO_CALLER,
        good.tag,
        bad.tag,
    )
    pin = state("prod")
    assert pin is not None and pin.pinned and pin.pinned_by == MOTO_CALLER
    assert pin.pin_reason == f"rollback to {good.tag} by {MOTO_CALLER}: checkout errors"

    # The next push to main is recorded as skipped (pinned), through the promoter handler: not committed.
    newer = pushed(scenario, "prod")
    assert "skip" in deliver(newer, setup)
    skipped = [r for r in records("prod") if r.outcome == "skipped"]  # one per event of the release
    assert {(r.reason, r.tag, r.trigger) for r in skipped} == {("environment_pinned", newer.tag, "push")}
    assert "prod is pinned (rollback to" in skipped[0].message and "tagrelay unpin --env prod" in skipped[0].message
    assert gitops_tag(scenario, "prod") == good.tag

    # Unpinned, the next push promotes as usual.
    code, out, _ = run(capsys, "unpin", "--env", "prod", "--reason", "fix verified on staging")
    assert code == 0 and "prod is unpinned" in out
    fix = pushed(scenario, "prod")
    assert "promote" in deliver(fix, setup)
    assert gitops_tag(scenario, "prod") == fix.tag
    assert [r.outcome for r in records("prod") if r.outcome in ("pinned", "unpinned")] == ["unpinned", "pinned"]


def test_pin_skips_pushes_until_unpin_and_each_is_an_audit_record(
    scenario: SeedScenario, operator_env: Configure, capsys: pytest.CaptureFixture[str]
) -> None:
    setup = operator_env()
    running = deployed(scenario, setup, "staging")

    code, out, err = run(capsys, "pin", "--env", "staging", "--reason", "load test until 16:00")
    assert (code, err) == (0, "")
    assert out.strip() == (
        f"mosaic-life/staging: staging is pinned at {running.tag}: pushes are recorded as skipped until "
        "'tagrelay unpin --env staging'"
    )
    code, answer, _ = run_json(capsys, "pin", "--env", "staging", "--reason", "load test until 17:00")
    assert code == 0 and answer["pin"]["reason"] == "load test until 17:00"  # a second pin replaces the reason

    held = pushed(scenario, "staging")
    assert set(deliver(held, setup)) == {"skip"}  # every event of the release, through the promoter handler
    assert gitops_tag(scenario, "staging") == running.tag
    # A second later: records of one instant sort by their random ids, and the unpin would split the run
    # of skipped records in `history` about one time in seven.
    setup.control.tick(1)

    assert run(capsys, "unpin", "--env", "staging")[0] == 0
    code, answer, _ = run_json(capsys, "unpin", "--env", "staging")
    assert (code, answer["outcome"], answer["message"]) == (0, "noop", "staging was not pinned; nothing to do")
    # (One instant on the simulator's manual clock: the records' order among themselves is not asserted.)
    audit = [(r.outcome, r.message) for r in records("staging") if r.outcome in ("pinned", "unpinned")]
    assert sorted(audit, reverse=True) == [
        ("unpinned", f"unpinned by {MOTO_CALLER}"),
        ("pinned", f"pinned at {running.tag} by {MOTO_CALLER}: load test until 17:00"),
        ("pinned", f"pinned at {running.tag} by {MOTO_CALLER}: load test until 16:00"),
    ]
    code, out, _ = run(capsys, "history", "--env", "staging")
    assert code == 0 and "pinned" in out and "unpinned" in out
    # Who did it and how, in the table too (the JSON has the whole ARN): the pins were an operator's,
    # the deployment a push by the commit's author.
    header, *rows = out.splitlines()
    assert header.split()[6:8] == ["TRIGGER", "ACTOR"]
    audit_rows = [row.split() for row in rows if row.split()[5] in ("pinned", "unpinned")]
    assert len(audit_rows) == 3
    assert all(row[6:8] == ["manual", "moto"] for row in audit_rows), audit_rows
    skipped = [row.split() for row in rows if row.split()[5] == "skipped"]
    assert skipped and skipped[0][7:9] == ["push", "seed"]  # one row (xN) for the events of one release, by its author
