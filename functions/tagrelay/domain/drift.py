"""Drift: whether what GitOps holds, what Argo CD synced and what runs agree (`tagrelay status`).

Pure: services/status.py reads GitHub, the ledger, the registry and Argo CD into an EnvironmentStatus;
``assess`` judges it. Each problem names what to look at.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from tagrelay.domain.outcome import HEALTHY, SYNCED

if TYPE_CHECKING:
    from tagrelay.config import App


@dataclass
class EnvironmentStatus:
    app: str
    env: str
    values_file: str
    gitops_tag: str | None = None
    argocd_configured: bool = True
    argocd_app: str | None = None
    sync_status: str | None = None
    synced_revision: str | None = None
    synced_tag: str | None = None
    health: str | None = None
    health_message: str | None = None
    # image repository -> tags running (from summary.images), for this app's images only
    running: dict[str, list[str]] = field(default_factory=dict)
    ledger_tag: str | None = None
    ledger_status: str | None = None
    ledger_commit: str | None = None
    # image -> [digest tagrelay promoted the ledger's tag with, digest the tag points at now]
    moved: dict[str, list[str]] = field(default_factory=dict)
    agree: bool = False
    problems: list[str] = field(default_factory=list)
    unavailable: str | None = None  # why part of the picture is missing (Argo CD or GitHub unreadable)


def assess(status: EnvironmentStatus) -> EnvironmentStatus:
    """Fill ``agree`` and ``problems`` from what was read: each problem names what to look at."""
    problems: list[str] = [status.unavailable] if status.unavailable else []
    if not status.argocd_configured:
        problems.append("argocd is not configured: only the GitOps side is known")
    elif status.argocd_app is None:
        problems.append(f"{status.env} names no argocd_app: only the GitOps side is known")
    elif status.sync_status is not None and status.gitops_tag is not None:
        problems += _argocd_problems(status, status.gitops_tag)
    problems += _ledger_problems(status)
    status.agree = _tags_agree(status) and not status.moved
    status.problems = problems
    return status


def _argocd_problems(status: EnvironmentStatus, tag: str) -> list[str]:
    """Argo CD's side against the GitOps tag: the synced revision, the images running, health."""
    problems: list[str] = []
    if status.synced_tag != tag:
        shown = status.synced_tag or "an unreadable tag"
        problems.append(
            f"Argo CD last synced {shown} ({(status.synced_revision or '?')[:7]}), but GitOps says {tag}"
            f" (sync status {status.sync_status}): the new commit is not synced yet, or its sync fails"
        )
    elif status.sync_status != SYNCED:
        problems.append(f"sync status is {status.sync_status}: the cluster differs from the GitOps revision")
    problems += [
        problem for image, tags in status.running.items() if (problem := _running_problem(status, image, tags, tag))
    ]
    if status.health not in (None, HEALTHY):
        problems.append(f"health is {status.health}" + (f": {status.health_message}" if status.health_message else ""))
    return problems


def _running_problem(status: EnvironmentStatus, image: str, tags: list[str], tag: str) -> str | None:
    if not tags:
        return f"{image} is not running (no pod lists it)"
    if tag not in tags:
        pending = status.synced_tag != tag and status.synced_tag in tags
        why = f"Argo CD has not synced {tag} yet" if pending else "the wrong image is deployed"
        return f"{image} runs {', '.join(tags)}, not {tag}: {why}"
    if len(tags) > 1:
        others = ", ".join(t for t in tags if t != tag)
        return f"{image} runs {others} beside {tag}: old pods remain (a rollout in progress, or stuck)"
    return None


def _ledger_problems(status: EnvironmentStatus) -> list[str]:
    """tagrelay's record against the registry (a moved tag) and against GitOps (a hand edit)."""
    problems = [
        f"{image}:{status.ledger_tag} moved: tagrelay promoted it as {promoted}, it now points at {now} "
        "(tag_moved): a pod started now may run an image nobody verified (docs/integrity.md)"
        for image, (promoted, now) in status.moved.items()
    ]
    if status.ledger_tag is not None and status.gitops_tag is not None and status.ledger_tag != status.gitops_tag:
        problems.append(
            f"tagrelay's last deployment was {status.ledger_tag}: the values file was changed outside tagrelay"
        )
    return problems


def _tags_agree(status: EnvironmentStatus) -> bool:
    tag = status.gitops_tag
    return (
        status.argocd_app is not None
        and not status.unavailable
        and tag is not None
        and status.synced_tag == tag
        and status.sync_status == SYNCED
        and bool(status.running)
        and all(tags == [tag] for tags in status.running.values())
    )


def running_tags(app: App, images: Sequence[str]) -> dict[str, list[str]]:
    """summary.images (``host/repository:tag[@digest]``) → {repository: sorted tags} for the app's images."""
    running: dict[str, list[str]] = {image: [] for image in app.images}
    for listed in images:
        reference = listed.split("@", 1)[0]
        name, _, tag = reference.rpartition(":")
        if not name or "/" in tag:
            continue
        for image in app.images:
            if name == f"{app.registry_host}/{image}":
                running[image] = sorted({*running[image], tag})
    return running
