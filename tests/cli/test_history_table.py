"""`tagrelay history`'s table: each deployment says which risks its app's configuration accepted."""

from __future__ import annotations

import pytest

from tagrelay.cli.history import print_table
from tagrelay.domain.records import DecisionRecord
from tagrelay.services.history import HistoryQuery

QUERY = HistoryQuery(sources=(), app=None, env="prod", sha=None, include_transient=False)


def deployment(tag: str, *, signature_policy: str, tag_policy: str) -> DecisionRecord:
    return DecisionRecord(
        decision_id=f"d-{tag}",
        app="mosaic-life",
        env="prod",
        outcome="committed",
        reason="promoted",
        message="committed",
        created_at="2026-12-05T10:00:00+00:00",
        trigger="push",
        tag=tag,
        status="SUCCEEDED",
        status_reason="synced and Healthy",
        signature_policy=signature_policy,
        tag_policy=tag_policy,
    )


def test_history_shows_unsigned_and_mutable_tag_deployments_as_such(capsys: pytest.CaptureFixture[str]) -> None:
    print_table(
        [
            deployment("aaaaaaa", signature_policy="required", tag_policy="immutable"),
            deployment("bbbbbbb", signature_policy="none", tag_policy="immutable"),
            deployment("ccccccc", signature_policy="required", tag_policy="mutable (allow_mutable_tags)"),
        ],
        QUERY,
    )

    rows = {row.split()[4]: row for row in capsys.readouterr().out.splitlines()[1:]}
    assert "[" not in rows["aaaaaaa"] and "synced and Healthy" in rows["aaaaaaa"]
    assert "[signature: none] synced and Healthy" in rows["bbbbbbb"]
    assert "[tags: mutable] synced and Healthy" in rows["ccccccc"]
