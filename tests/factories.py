"""Builders of real-shaped test inputs: ECR events (from devstack.events) and configurations."""

from __future__ import annotations

from typing import Any

from devstack.events import digest_of, ecr_push_event
from tagrelay.config import Config, parse_config

__all__ = ["ENV_PREFIXED_PATTERN", "app_config", "config", "digest_of", "ecr_push_event"]

ENV_PREFIXED_PATTERN = r"^(?P<env>prod|staging)-(?P<sha>[0-9a-f]{7})$"


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
