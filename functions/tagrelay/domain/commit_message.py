"""The GitOps commit message, in the seed's convention so existing history and tooling keep working.

The seed's CI wrote (mosaic-stories/mosaic-life, .github/workflows/build-push.yml, update-image-tags job):

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

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal, get_args

Trigger = Literal["push", "manual", "rollback"]
TRIGGERS: tuple[Trigger, ...] = get_args(Trigger)
SIGNATURE_LINE = "Committed by tagrelay."


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
    request_id: str | None = None  # operator changes: the request's id, so a retry can find its commit
    tag_policy: str | None = None  # "immutable" | "mutable (allow_mutable_tags)"


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
        f"Actor: {_one_line(details.actor)}",
        *([f"Request: {details.request_id}"] if details.request_id else []),
        "",
        "This will deploy:",
        *(f"- {image}:{details.tag}" for image in details.digests),
        "",
        "Image digests:",
        *(f"- {image}@{digest}" for image, digest in details.digests.items()),
        "",
        f"Signature: {details.signer}",
        *([f"Release tags: {details.tag_policy}"] if details.tag_policy else []),
        "",
        SIGNATURE_LINE,
    ]
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class ParsedCommit:
    """What one of tagrelay's own commit messages says (parse_commit_message)."""

    trigger: Trigger
    env: str
    tag: str
    full_sha: str | None = None
    source_branch: str | None = None
    actor: str | None = None
    event_id: str | None = None
    request_id: str | None = None
    digests: dict[str, str] = field(default_factory=dict)


_SUBJECTS: tuple[tuple[Trigger, re.Pattern[str]], ...] = (
    ("manual", re.compile(r"^deploy\((?P<env>[^)]+)\): manual update to image tag (?P<tag>\S+)$")),
    ("rollback", re.compile(r"^rollback\((?P<env>[^)]+)\): revert to (?P<tag>\S+)$")),
    ("push", re.compile(r"^deploy\((?P<env>[^)]+)\): update image tag to (?P<tag>\S+)$")),
)
_FIELD = re.compile(r"^(?P<name>Triggered by|Branch|Commit|Actor|Request): (?P<value>.*)$")
_EVENT = re.compile(r"\(event (?P<id>[^)]+)\)$")
_DIGEST = re.compile(r"^- (?P<image>[^@\s]+)@(?P<digest>sha256:[0-9a-f]{64})$")


def parse_commit_message(message: str) -> ParsedCommit | None:
    """The facts in a commit message tagrelay wrote, or None for any other commit.

    A commit is tagrelay's when its subject is one of the three subjects and its body ends with the
    signature line; a person who copies the seed's subject by hand (CI did) writes no such body.
    Used to recover the ledger record of a commit whose invocation died before recording it.
    """
    lines = message.strip().splitlines()
    if not lines or lines[-1].strip() != SIGNATURE_LINE:
        return None
    found_subject = next(
        ((trigger, match) for trigger, pattern in _SUBJECTS if (match := pattern.match(lines[0].strip()))), None
    )
    if found_subject is None:
        return None
    trigger, match = found_subject
    fields: dict[str, str] = {}
    digests: dict[str, str] = {}
    for line in lines[1:]:
        if found := _FIELD.match(line):
            fields.setdefault(found["name"], found["value"].strip())
        elif found := _DIGEST.match(line.strip()):
            digests[found["image"]] = found["digest"]
    event = _EVENT.search(fields.get("Triggered by", ""))
    return ParsedCommit(
        trigger=trigger,
        env=match["env"],
        tag=match["tag"],
        full_sha=fields.get("Commit"),
        source_branch=fields.get("Branch"),
        actor=fields.get("Actor"),
        event_id=event["id"] if event else None,
        request_id=fields.get("Request"),
        digests=digests,
    )


def _one_line(text: str) -> str:
    """Outside text (a git author name) on one line: no control character can forge a trailer."""
    return "".join(char if char.isprintable() else " " for char in text).strip() or "unknown"
