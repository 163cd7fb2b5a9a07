"""`tagrelay history` and `tagrelay status` against the ledger, the GitHub stand-in and the simulator.

The records come from real promotions and tracker runs (tests/tracking/support.py), so the command
reads exactly what the Lambdas write.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from devstack.images import CosignKeySigner
from devstack.scenario import SeedScenario
from tests.tracking.support import Configure, TrackerSetup, cli, deliver, lines_with, promote, track

pytestmark = pytest.mark.stack


def deployed(scenario: SeedScenario, setup: TrackerSetup, env: str, **kwargs: Any) -> str:
    """Promote, let Argo CD finish, record the outcome; returns the tag."""
    release = promote(scenario, setup, env, **kwargs)
    setup.control.settle()
    track()
    return release.tag


def history_json(capsys: pytest.CaptureFixture[str], *argv: str) -> dict[str, Any]:
    code, out, err = cli(capsys, "history", "-o", "json", *argv)
    assert code == 0, err
    data: dict[str, Any] = json.loads(out)
    return data


# --------------------------------------------------------------------------------------------- history


def test_history_lists_outcomes_newest_first_and_hides_transient_records(
    scenario: SeedScenario, tracker_env: Configure, capsys: pytest.CaptureFixture[str]
) -> None:
    setup = tracker_env()
    good = deployed(scenario, setup, "prod", every_event=True)  # its duplicate events: transient records
    bad = deployed(scenario, setup, "staging", mark="degraded")
    forged_sha = scenario.commit("main")
    forged = scenario.release(forged_sha, branch="main", signer=CosignKeySigner.generate())
    deliver(forged, setup)

    code, out, err = cli(capsys, "history")

    assert (code, err) == (0, "")
    header, *rows = out.splitlines()
    assert header.split()[:6] == ["WHEN", "(UTC)", "APP", "ENV", "TAG", "RESULT"]
    shown = [tuple(row.split()[3:6]) for row in rows]
    assert list(dict.fromkeys(shown)) == [
        ("prod", forged.tag, "rejected"),
        ("staging", bad, "DEGRADED"),
        ("prod", good, "SUCCEEDED"),
    ]
    [rejections] = lines_with(out, forged.tag)  # folded into one row with a count
    assert "rejected x" in rejections and "signature_invalid" in rejections
    assert "health is Degraded" in lines_with(out, bad)[0]
    [succeeded] = lines_with(out, good, "SUCCEEDED")
    assert "synced and Healthy" in succeeded
    assert "waiting" not in out and "noop" not in out

    code, out, _ = cli(capsys, "history", "--all")
    assert code == 0 and ("waiting" in out or "noop" in out)


def test_history_json_carries_the_tracking_fields_and_durations(
    scenario: SeedScenario, tracker_env: Configure, capsys: pytest.CaptureFixture[str]
) -> None:
    setup = tracker_env()
    tag = deployed(scenario, setup, "prod")

    data = history_json(capsys, "--env", "prod")

    assert data["next"] is None
    [record] = data["records"]
    assert (record["tag"], record["outcome"], record["status"]) == (tag, "committed", "SUCCEEDED")
    for name in ("committed_at", "sync_started_at", "synced_at", "healthy_at", "finished_at", "gitops_commit"):
        assert record[name], name
    durations = record["durations"]
    assert 0 < durations["to_sync_seconds"] < durations["to_healthy_seconds"] <= durations["lead_time_seconds"]


# Every page-boundary case on the fakes (whose paging tests/contract/test_ledger.py holds to DynamoDB's):
# tests/services/test_history.py. Here: DynamoDB's own LastEvaluatedKey, with small queries and the default.
# no_cover: its many repetitions walk paths the other tests cover; tracing them triples its time (docs/development.md)
@pytest.mark.no_cover
@pytest.mark.parametrize(
    ("records_per_query", "queries_per_page"),
    [(1, 1000), (None, None)],
    ids=["one record per query", "default"],
)
def test_history_pages_without_gaps_or_repeats(
    scenario: SeedScenario,
    tracker_env: Configure,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    records_per_query: int | None,
    queries_per_page: int | None,
) -> None:
    from tagrelay.services import history

    if records_per_query is not None:
        # Many small queries: every page boundary falls inside a partition, among transient records;
        # with one query per page, pages also end early (or empty) and must still resume exactly.
        monkeypatch.setattr(history, "MIN_FETCH", records_per_query)
        monkeypatch.setattr(history, "MAX_QUERIES_PER_SOURCE", queries_per_page)
    setup = tracker_env()
    tags = [
        promote(scenario, setup, env, every_event=True).tag for env in ("prod", "staging", "prod", "staging", "prod")
    ]

    for options in ([], ["--all"]):
        everything = history_json(capsys, "--limit", "100", *options)["records"]
        if not options:
            assert [r["tag"] for r in everything] == tags[::-1]  # newest first across both environments
        seen: list[str] = []
        token: str | None = None
        pages = 0
        while True:
            page = history_json(capsys, "--limit", "2", *options, *(["--next", token] if token else []))
            assert len(page["records"]) <= 2
            seen += [r["decision_id"] for r in page["records"]]
            pages += 1
            token = page["next"]
            if token is None:
                break
        assert seen == [r["decision_id"] for r in everything]
        if queries_per_page == 1000:
            assert pages == (len(everything) + 1) // 2

    if records_per_query is not None:
        return
    # The table's last line is the command for the next page.
    code, out, _ = cli(capsys, "history", "--env", "prod", "--limit", "1")
    assert code == 0
    [more] = lines_with(out, "more: tagrelay history --env prod --limit 1 --next ")
    code, out, _ = cli(capsys, *more.removeprefix("more: tagrelay ").split())
    assert code == 0 and tags[2] in out and tags[4] not in out


def test_history_by_sha_spans_environments(
    scenario: SeedScenario, tracker_env: Configure, capsys: pytest.CaptureFixture[str]
) -> None:
    setup = tracker_env()
    tag = deployed(scenario, setup, "prod")
    deployed(scenario, setup, "prod")

    records = history_json(capsys, "--sha", tag)["records"]

    assert {r["tag"] for r in records} == {tag}
    assert [r["status"] for r in records if r["outcome"] == "committed"] == ["SUCCEEDED"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--env", "qa"], "no environment 'qa'; configured: prod, staging"),
        (["--app", "other"], "no app 'other' in the configuration"),
        (["--sha", "xyz"], "--sha must be 4 to 40 hexadecimal characters"),
        (["--limit", "0"], "--limit must be between 1 and 100"),
        (["--next", "not-a-token"], "--next: not a token printed by 'tagrelay history'"),
    ],
)
def test_history_refuses_with_a_clear_message(
    tracker_env: Configure, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    tracker_env()
    code, out, err = cli(capsys, "history", *argv)
    assert (code, out) == (2, "")
    assert err.startswith("tagrelay: ") and message in err


def test_a_next_token_only_continues_the_query_that_printed_it(
    scenario: SeedScenario, tracker_env: Configure, capsys: pytest.CaptureFixture[str]
) -> None:
    setup = tracker_env()
    for _ in range(2):
        promote(scenario, setup, "prod")
    token = history_json(capsys, "--env", "prod", "--limit", "1")["next"]
    assert token

    code, _, err = cli(capsys, "history", "--env", "staging", "--next", token)

    assert code == 2 and "the token belongs to another query (--env prod)" in err


# --------------------------------------------------------------------------------------------- status


def status_json(capsys: pytest.CaptureFixture[str], *argv: str) -> dict[str, dict[str, Any]]:
    code, out, err = cli(capsys, "status", "-o", "json", *argv)
    assert code == 0, err
    return {entry["env"]: entry for entry in json.loads(out)}


def test_status_agrees_when_gitops_argo_cd_and_the_pods_say_the_same(
    scenario: SeedScenario, tracker_env: Configure, capsys: pytest.CaptureFixture[str]
) -> None:
    setup = tracker_env()
    tag = deployed(scenario, setup, "prod")

    prod = status_json(capsys, "--env", "prod")["prod"]

    assert (prod["gitops_tag"], prod["synced_tag"], prod["sync_status"], prod["health"]) == (
        tag,
        tag,
        "Synced",
        "Healthy",
    )
    assert prod["running"] == {image: [tag] for image in scenario.images}
    assert (prod["ledger_tag"], prod["ledger_status"]) == (tag, "SUCCEEDED")
    assert prod["agree"] is True and prod["problems"] == []

    code, out, err = cli(capsys, "status", "--env", "prod")
    assert (code, err) == (0, "")
    header, row = out.splitlines()
    assert header.split()[:2] == ["ENVIRONMENT", "GITOPS"]
    assert row.split()[:2] == ["mosaic-life/prod", tag] and " yes " in row


def test_status_shows_a_commit_argo_cd_has_not_synced_yet(
    scenario: SeedScenario, tracker_env: Configure, capsys: pytest.CaptureFixture[str]
) -> None:
    setup = tracker_env(argocd={"refresh_after_commit": False})
    old = deployed(scenario, setup, "prod")
    new = promote(scenario, setup, "prod").tag  # no nudge: Argo CD notices at its next poll

    prod = status_json(capsys, "--env", "prod")["prod"]

    assert (prod["gitops_tag"], prod["synced_tag"], prod["agree"]) == (new, old, False)
    assert any(f"Argo CD last synced {old}" in p and f"GitOps says {new}" in p for p in prod["problems"])
    assert any(f"runs {old}, not {new}: Argo CD has not synced {new} yet" in p for p in prod["problems"])


def test_status_finds_the_wrong_image_running(
    scenario: SeedScenario, tracker_env: Configure, capsys: pytest.CaptureFixture[str]
) -> None:
    setup = tracker_env()
    bad = deployed(scenario, setup, "staging", mark="degraded")

    code, out, err = cli(capsys, "status", "--env", "staging")

    assert (code, err) == (0, "")
    row = out.splitlines()[1]  # the table row; the problems follow it
    assert row.startswith("mosaic-life/staging") and "Degraded" in row and " NO " in row
    web = scenario.images[0]
    assert lines_with(out, f"{web} runs", f"beside {bad}: old pods remain")
    assert lines_with(out, "health is Degraded", "exceeded its progress deadline")


def test_status_notices_a_values_file_changed_outside_tagrelay(
    scenario: SeedScenario, tracker_env: Configure, capsys: pytest.CaptureFixture[str]
) -> None:
    setup = tracker_env()
    ours = deployed(scenario, setup, "prod")
    path = "environments/prod/values.yaml"
    text = scenario.gitops.read_file(path).decode()
    scenario.gitops.commit_files({path: text.replace(f'"{ours}"', '"hotfix1"')}, "manual rollback", branch="main")
    setup.control.settle()

    prod = status_json(capsys, "--env", "prod")["prod"]

    assert prod["gitops_tag"] == "hotfix1" and prod["synced_tag"] == "hotfix1"
    assert f"tagrelay's last deployment was {ours}: the values file was changed outside tagrelay" in prod["problems"]


def test_status_with_argo_cd_unreachable_prints_what_it_knows_and_fails(
    scenario: SeedScenario, tracker_env: Configure, capsys: pytest.CaptureFixture[str]
) -> None:
    setup = tracker_env()
    setup.control.inject_fault(503, count=4)

    code, out, err = cli(capsys, "status", "--env", "prod")

    assert code == 1
    assert "mosaic-life/prod" in out and "Argo CD unreachable" in out
    assert err.startswith("tagrelay: incomplete report; mosaic-life/prod: Argo CD unreachable")


def test_status_refuses_a_rejected_token_and_an_unknown_environment(
    tracker_env: Configure, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from devstack.argocd_sim import make_token

    tracker_env()
    code, out, err = cli(capsys, "status", "--env", "qa")
    assert (code, out) == (2, "") and "no environment 'qa'; configured: prod, staging" in err

    monkeypatch.setenv("ARGOCD_AUTH_TOKEN", make_token("intruder"))
    code, out, err = cli(capsys, "status")
    assert (code, out) == (1, "") and "token is invalid or expired" in err
