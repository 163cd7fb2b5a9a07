"""Level-triggered promotion under every arrival order, and under concurrency.

* A two-image release whose pieces (each image's release tag, the branch tags, the signatures) arrive
  in every possible order: exactly one commit, made by the event of the last piece that decides.
* Ten promotions of different commits to one environment at once: the final value is the newest
  commit, every promotion ends in a recorded decision, the GitOps history is linear, nothing is forced.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import pytest

from devstack.events import ecr_push_event
from devstack.images import push_image, sign_image, tag_image
from devstack.lambda_context import lambda_context
from devstack.scenario import SeedScenario
from tagrelay.adapters.store import Ledger
from tagrelay.config import load_config
from tagrelay.domain.tags import signature_tag
from tagrelay.errors import TransientError
from tagrelay.runtime import build_promoter

pytestmark = pytest.mark.stack


@dataclass(frozen=True)
class Piece:
    image: str
    kind: str  # release | branch | signature


def valid_orders(images: tuple[str, str]) -> list[tuple[Piece, ...]]:
    """Every order of the six pieces in which a signature comes after its image exists in the registry
    (cosign signs a digest it has resolved, so it cannot precede both of the image's tag pushes)."""
    pieces = [Piece(image, kind) for image in images for kind in ("release", "branch", "signature")]
    orders = []
    for order in itertools.permutations(pieces):
        position = {piece: index for index, piece in enumerate(order)}
        if all(
            position[Piece(i, "signature")] > min(position[Piece(i, "release")], position[Piece(i, "branch")])
            for i in images
        ):
            orders.append(order)
    return orders


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_every_arrival_order_gives_one_commit_made_by_the_last_deciding_piece(
    scenario: SeedScenario, promoter_env: Callable[..., Any]
) -> None:
    from tagrelay.handlers.promoter import handler

    promoter_env()
    web, api = scenario.images
    orders = valid_orders((web, api))
    assert len(orders) == 320
    registry = scenario.stack.registry.url
    # The environment is decided by the branch tag of the app's first image (docs/promotion.md); the
    # other image's branch tag is pushed too, in every position, and must never cause a commit.
    deciding = {
        Piece(web, "release"),
        Piece(api, "release"),
        Piece(web, "branch"),
        Piece(web, "signature"),
        Piece(api, "signature"),
    }
    commits_before = len(scenario.gitops.shas("main", path="environments/prod/values.yaml"))

    for case, order in enumerate(orders):
        sha = scenario.commit("main", f"feat: case {case}")
        tag = sha[:7]
        digests: dict[str, str] = {}
        promoted_at: list[int] = []
        for step, piece in enumerate(order):
            content = f"{piece.image}@{sha}".encode()  # same bytes whichever tag creates the manifest
            if piece.kind == "signature":
                signed = sign_image(
                    registry, piece.image, digests[piece.image], scenario.signer, annotations={"git-sha": sha}
                )
                event = ecr_push_event(piece.image, signature_tag(digests[piece.image]), signed)
            else:
                pushed_tag = tag if piece.kind == "release" else "main"
                if piece.image in digests:
                    tag_image(registry, piece.image, digests[piece.image], pushed_tag)
                else:
                    digests[piece.image] = push_image(registry, piece.image, [pushed_tag], content=content)
                event = ecr_push_event(piece.image, pushed_tag, digests[piece.image])
            result = handler(event, lambda_context("promoter"))
            assert result["decision"] in ("wait", "promote", "noop"), (case, order, result)
            if result["decision"] == "promote":
                promoted_at.append(step)
        last_deciding = max(step for step, piece in enumerate(order) if piece in deciding)
        assert promoted_at == [last_deciding], (case, order, promoted_at)

    commits_after = len(scenario.gitops.shas("main", path="environments/prod/values.yaml"))
    assert commits_after - commits_before == len(orders)


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
