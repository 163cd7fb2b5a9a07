"""`tagrelay history`'s paging and merge across environments (services/history.py) on the fakes: every
page boundary, including those inside a partition among hidden transient records, resumes exactly.
The default sizes through the local stack's DynamoDB are in tests/tracking/test_history_status_cli.py."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.world import FakeWorld
from tests.services.support import cli, deliver_installed, pushed


def history_json(capsys: pytest.CaptureFixture[str], *argv: str) -> dict[str, Any]:
    code, out, err = cli(capsys, "history", "-o", "json", *argv)
    assert code == 0, err
    data: dict[str, Any] = json.loads(out)
    return data


# no_cover: its many repetitions walk paths the other tests cover; tracing them triples its time (docs/development.md)
@pytest.mark.no_cover
@pytest.mark.parametrize(
    ("records_per_query", "queries_per_page"),
    [(1, 1000), (1, 1), (2, 2), (None, None)],
    ids=["one record per query", "one query per source and page", "two by two", "default"],
)
def test_history_pages_without_gaps_or_repeats(
    world: FakeWorld,
    install: Callable[..., Path],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    records_per_query: int | None,
    queries_per_page: int | None,
) -> None:
    from tagrelay.services import history

    if records_per_query is not None:
        monkeypatch.setattr(history, "MIN_FETCH", records_per_query)
        monkeypatch.setattr(history, "MAX_QUERIES_PER_SOURCE", queries_per_page)
    install()
    tags = []
    for env in ("prod", "staging", "prod", "staging", "prod"):
        release = pushed(world, env)
        assert "promote" in deliver_installed(world, release.events)
        tags.append(release.tag)

    for options in ([], ["--all"]):
        everything = history_json(capsys, "--limit", "100", *options)["records"]
        if not options:
            assert [r["tag"] for r in everything] == tags[::-1]  # newest first across both environments
        else:
            assert len(everything) > len(tags)  # the transient records of each release's events
        seen: list[str] = []
        sizes: list[int] = []
        token: str | None = None
        while True:
            page = history_json(capsys, "--limit", "2", *options, *(["--next", token] if token else []))
            assert len(page["records"]) <= 2
            seen += [r["decision_id"] for r in page["records"]]
            sizes.append(len(page["records"]))
            token = page["next"]
            if token is None:
                break
        assert seen == [r["decision_id"] for r in everything]
        if queries_per_page == 1000:
            # Pages end early only when reads are capped: here every page but the last is full (the last
            # may be empty: a full page cannot know that nothing follows).
            assert all(size == 2 for size in sizes[:-1]), sizes


def test_a_token_only_continues_the_query_that_printed_it(
    world: FakeWorld, install: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    install()
    for env in ("prod", "prod", "staging"):
        assert "promote" in deliver_installed(world, pushed(world, env).events)
    token = history_json(capsys, "--env", "prod", "--limit", "1")["next"]
    assert token
    code, _, err = cli(capsys, "history", "--env", "staging", "--next", token)
    assert code == 2 and "the token belongs to another query (--env prod)" in err
    code, _, err = cli(capsys, "history", "--next", "not-a-token")
    assert code == 2 and "not a token printed by 'tagrelay history'" in err
    code, _, err = cli(capsys, "history", "--sha", "xyz")
    assert code == 2 and "--sha must be 4 to 40 hexadecimal characters" in err
