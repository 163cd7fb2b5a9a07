"""The arrival-order property of a two-image release, shared by its run on the fakes (every order) and
its sample on the local stack: the pieces of a release (each image's release tag, the branch tags,
the signatures) arrive in any physically possible order, and exactly one commit is made, by the event
of the last piece that decides.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from devstack.events import ecr_push_event
from devstack.images import Registry, Signer, push_image, sign_image, tag_image
from tagrelay.domain.tags import signature_tag


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


def deciding_pieces(images: tuple[str, str]) -> set[Piece]:
    """The environment is decided by the branch tag of the app's first image (docs/promotion.md); the
    other image's branch tag is pushed too, in every position, and must never cause a commit."""
    first, second = images
    return {
        Piece(first, "release"),
        Piece(second, "release"),
        Piece(first, "branch"),
        Piece(first, "signature"),
        Piece(second, "signature"),
    }


def play(
    order: Sequence[Piece],
    sha: str,
    *,
    registry: Registry,
    signer: Signer,
    deliver: Callable[[dict[str, Any]], str],
    event_time: Callable[[], str] | None = None,
) -> list[int]:
    """Push the pieces in ``order`` as CI and cosign would, delivering each push's event; returns the
    steps whose event promoted. ``deliver`` answers the decision for one event."""
    tag = sha[:7]
    digests: dict[str, str] = {}
    promoted_at: list[int] = []
    stamp = {"time": event_time()} if event_time else {}
    for step, piece in enumerate(order):
        content = f"{piece.image}@{sha}".encode()  # same bytes whichever tag creates the manifest
        if piece.kind == "signature":
            signed = sign_image(registry, piece.image, digests[piece.image], signer, annotations={"git-sha": sha})
            event = ecr_push_event(piece.image, signature_tag(digests[piece.image]), signed, **stamp)
        else:
            pushed_tag = tag if piece.kind == "release" else "main"
            if piece.image in digests:
                tag_image(registry, piece.image, digests[piece.image], pushed_tag)
            else:
                digests[piece.image] = push_image(registry, piece.image, [pushed_tag], content=content)
            event = ecr_push_event(piece.image, pushed_tag, digests[piece.image], **stamp)
        decision = deliver(event)
        assert decision in ("wait", "promote", "noop"), (order, step, decision)
        if decision == "promote":
            promoted_at.append(step)
    return promoted_at


def last_deciding_step(order: Sequence[Piece], deciding: set[Piece]) -> int:
    return max(step for step, piece in enumerate(order) if piece in deciding)
