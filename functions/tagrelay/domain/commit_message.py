"""The GitOps commit message, in the seed's convention so existing history and tooling keep working.

The seed's CI wrote (reference-system.md §4):

    deploy(prod): update image tag to prod-cf3124b

    Triggered by: push
    Branch: main
    Commit: cf3124bd29e1b829606e16f2755ebab120506214
    Actor: <login>

    This will deploy:
    - mosaic-life/web:prod-cf3124b
    - mosaic-life/core-api:prod-cf3124b

tagrelay keeps the subject and those lines (tools match on "update image tag to"), and adds the
image digests and the verified signer, so the commit itself says exactly what was deployed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

Trigger = Literal["push", "manual", "rollback"]


@dataclass(frozen=True)
class CommitDetails:
    env: str
    tag: str
    trigger: Trigger
    source_branch: str
    full_sha: str
    actor: str
    digests: Mapping[str, str]  # image repository -> digest, in the app's image order
    signer: str
    event_id: str | None = None


def subject(trigger: Trigger, env: str, tag: str) -> str:
    if trigger == "manual":
        return f"deploy({env}): manual update to image tag {tag}"
    if trigger == "rollback":
        return f"rollback({env}): revert to {tag}"
    return f"deploy({env}): update image tag to {tag}"


def commit_message(details: CommitDetails) -> str:
    triggered_by = {"push": "ecr-push", "manual": "manual", "rollback": "rollback"}[details.trigger]
    lines = [
        subject(details.trigger, details.env, details.tag),
        "",
        f"Triggered by: {triggered_by}" + (f" (event {details.event_id})" if details.event_id else ""),
        f"Branch: {details.source_branch}",
        f"Commit: {details.full_sha}",
        f"Actor: {details.actor}",
        "",
        "This will deploy:",
        *(f"- {image}:{details.tag}" for image in details.digests),
        "",
        "Image digests:",
        *(f"- {image}@{digest}" for image, digest in details.digests.items()),
        "",
        f"Signature: {details.signer}",
        "",
        "Committed by tagrelay.",
    ]
    return "\n".join(lines) + "\n"
