"""Level-triggered promotion under every arrival order, on the fakes: all 320 physically possible
orders of a two-image release's pieces give exactly one commit, made by the event of the last piece
that decides (tests/services/orders.py). The real signature verifier checks real cosign signatures in
the fake registry; tests/integration/test_promotion_orders.py runs a sample of the same orders
through the promoter handler on the local stack.
"""

from __future__ import annotations

import pytest

from tests.fakes.world import FakeWorld
from tests.services.orders import deciding_pieces, last_deciding_step, play, valid_orders

VALUES = "environments/prod/values.yaml"


# no_cover: its many repetitions walk paths the other tests cover; tracing them triples its time (docs/development.md)
@pytest.mark.slow
@pytest.mark.no_cover
def test_every_arrival_order_gives_one_commit_made_by_the_last_deciding_piece() -> None:
    world = FakeWorld.create()
    promoter = world.promoter()
    web, api = world.images
    orders = valid_orders((web, api))
    assert len(orders) == 320
    deciding = deciding_pieces((web, api))
    commits_before = len(world.github.log(world.gitops_repo, "main"))

    def deliver(event: dict[str, object]) -> str:
        world.clock.tick()
        [evaluation] = promoter.process(event)
        return evaluation.verdict.value

    for case, order in enumerate(orders):
        sha = world.commit("main", f"feat: case {case}")
        promoted_at = play(
            order, sha, registry=world.registry, signer=world.signer, deliver=deliver, event_time=world.event_time
        )
        assert promoted_at == [last_deciding_step(order, deciding)], (case, order, promoted_at)
        assert f'imageTag: "{sha[:7]}"'.encode() in world.values_file("prod")

    commits = world.github.log(world.gitops_repo, "main")
    assert len(commits) - commits_before == len(orders)
    assert all(c.message.startswith("deploy(prod): update image tag to ") for c in commits[: len(orders)])
    committed = [r for r in world.ledger.history("mosaic-life", "prod", limit=1000).records if r.outcome == "committed"]
    assert len(committed) == len(orders)
