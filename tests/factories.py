"""Builders of real-shaped test inputs: EventBridge ECR events (wire-formats.md §1.2) and configurations."""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

from tagrelay.config import Config, parse_config

ENV_PREFIXED_PATTERN = r"^(?P<env>prod|staging)-(?P<sha>[0-9a-f]{7})$"


def digest_of(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def ecr_push_event(
    repository: str = "mosaic-life/web",
    tag: str | None = "abc1234",
    digest: str | None = None,
    *,
    action: str = "PUSH",
    result: str = "SUCCESS",
    event_id: str | None = None,
) -> dict[str, Any]:
    """An `ECR Image Action` event as EventBridge delivers it (same keys and order as AWS's sample)."""
    detail: dict[str, Any] = {
        "result": result,
        "repository-name": repository,
        "image-digest": digest or digest_of(f"{repository}:{tag}"),
        "action-type": action,
        "artifact-media-type": "application/vnd.oci.image.config.v1+json",
        "manifest-media-type": "application/vnd.oci.image.manifest.v1+json",
    }
    if tag is not None:
        detail["image-tag"] = tag
    return {
        "version": "0",
        "id": event_id or str(uuid.uuid4()),
        "detail-type": "ECR Image Action",
        "source": "aws.ecr",
        "account": "033691785857",
        "time": "2026-11-26T10:00:00Z",
        "region": "us-east-1",
        "resources": [],
        "detail": detail,
    }


def app_config(**overrides: Any) -> dict[str, Any]:
    app: dict[str, Any] = {
        "source_repo": "mosaic-stories/mosaic-life",
        "registry": "033691785857.dkr.ecr.us-east-1.amazonaws.com",
        "images": ["mosaic-life/web", "mosaic-life/core-api"],
        "gitops": {"repo": "mosaic-stories/gitops"},
        "environments": {"prod": {"branch": "main"}, "staging": {"branch": "develop"}},
        "signature": "none",
    }
    app.update(overrides)
    return app


def config(**app_overrides: Any) -> Config:
    return parse_config(
        {"apps": {"mosaic-life": app_config(**app_overrides)}, "github": {"auth": {"token_secret": "github-token"}}}
    )
