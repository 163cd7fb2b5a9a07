"""Level-triggered promotion under every arrival order, and under concurrency.

* A two-image release whose pieces (each image's release tag, the branch tags, the signatures) arrive
  in a sample of the possible orders (all 320 run on the fakes: tests/services/test_promotion_orders.py):
  exactly one commit, made by the event of the last piece that decides.
* Ten promotions of different commits to one environment at once: the final value is the newest
  commit, every promotion ends in a recorded decision, the GitOps history is linear, nothing is forced.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from devstack.lambda_context import lambda_context
from devstack.scenario import SeedScenario
from tagrelay.adapters.store import Ledger
from tagrelay.config import load_config
from tagrelay.errors import TransientError
from tagrelay.runtime import build_promoter
from tests.services.orders import deciding_pieces, last_deciding_step, play, valid_orders

pytestmark = pytest.mark.stack


# A sample of the 320 orders (tests/services/test_promotion_orders.py runs them all on the fakes):
# the first and the last, and every 40th between, through the handler, the registry, GitHub and DynamoDB.
SAMPLE_EVERY = 40


# no_cover: its many repetitions walk paths the other tests cover; tracing them triples its time (docs/development.md)
@pytest.mark.slow
@pytest.mark.no_cover
def test_a_sample_of_arrival_orders_gives_one_commit_made_by_the_last_deciding_piece(
    scenario: SeedScenario, promoter_env: Callable[..., Any]
) -> None:
    from tagrelay.handlers.promoter import handler

    promoter_env()
    web, api = scenario.images
    orders = valid_orders((web, api))
    sample = [*orders[::SAMPLE_EVERY], orders[-1]]
    deciding = deciding_pieces((web, api))
    commits_before = len(scenario.gitops.shas("main", path="environments/prod/values.yaml"))

    def deliver(event: dict[str, Any]) -> str:
        decision: str = handler(event, lambda_context("promoter"))["decision"]
        return decision

    for case, order in enumerate(sample):
        sha = scenario.commit("main", f"feat: case {case}")
        promoted_at = play(order, sha, registry=scenario.stack.registry.url, signer=scenario.signer, deliver=deliver)
        assert promoted_at == [last_deciding_step(order, deciding)], (case, order, promoted_at)

    commits_after = len(scenario.gitops.shas("main", path="environments/prod/values.yaml"))
    assert commits_after - commits_before == len(sample)


def test_ten_concurrent_promotions_end_at_the_newest_commit_with_nothing_lost(
    scenario: SeedScenario, promoter_env: Callable[..., Any]
) -> None:
    config_path = promoter_env(tag_pattern="^(?P<env>prod|staging)-(?P<sha>[0-9a-f]{7})$")
    config = load_config(config_path)
    shas = [scenario.commit("main", f"feat: concurrent {n}") for n in range(10)]
    releases = [scenario.release(sha, tag=f"prod-{sha[:7]}", branch=None) for sha in shas]
    head_before = scenario.gitops.head("main")

    def promote(event: dict[str, Any]) -> dict[str, Any]:
        # One promoter per thread, like separate Lambda containers; a TransientError is retried the
        # way Lambda retries an asynchronous invocation (twice).
        for attempt in range(3):
            try:
                evaluations = build_promoter(config).process(event)
                return {"decision": evaluations[0].verdict.value, "attempt": attempt}
            except TransientError:
                continue
        raise AssertionError("still failing after Lambda's retries")

    with ThreadPoolExecutor(max_workers=10) as pool:
        results = list(pool.map(promote, [release.events_of("release")[0] for release in releases]))

    newest = f"prod-{shas[-1][:7]}"
    assert f'imageTag: "{newest}"'.encode() in scenario.values_file("prod")
    assert {r["decision"] for r in results} <= {"promote", "superseded"}
    assert results[shas.index(shas[-1])]["decision"] == "promote"

    # Every promotion ended in exactly one recorded decision: committed or superseded.
    records = Ledger("tagrelay-ledger").history("mosaic-life", "prod", limit=100).records
    by_tag: dict[str, list[str]] = {}
    for record in records:
        by_tag.setdefault(record.tag or "", []).append(record.outcome)
    assert sorted(by_tag) == sorted(f"prod-{sha[:7]}" for sha in shas)
    assert all(len(outcomes) == 1 and outcomes[0] in ("committed", "superseded") for outcomes in by_tag.values())

    # The GitOps history is linear (no force) and never goes backwards.
    ours = scenario.gitops.shas("main", path="environments/prod/values.yaml")
    new_commits = ours[: ours.index(head_before)] if head_before in ours else ours
    log = scenario.gitops.log("main")
    deployed_in_order = [line.split()[-1] for line in reversed(log.splitlines()) if "update image tag to prod-" in line]
    positions = [
        shas.index(next(s for s in shas if s.startswith(tag.removeprefix("prod-")))) for tag in deployed_in_order
    ]
    assert positions == sorted(positions), deployed_in_order
    assert len(new_commits) == sum(1 for r in results if r["decision"] == "promote")
