"""What the stand-in accepts: personal-style tokens and GitHub Apps (``--config`` JSON or the control API).

The file looks like::

    {"tokens": ["test-token"],
     "apps": [{"app_id": 1234, "installation_id": 5678, "public_key_pem": "-----BEGIN PUBLIC KEY-----\\n…",
               "permissions": {"contents": "write", "metadata": "read"}}]}
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_APP_PERMISSIONS: Mapping[str, str] = {"contents": "write", "metadata": "read"}


@dataclass(frozen=True)
class GitHubAppSpec:
    """A GitHub App the stand-in knows: JWTs signed by the matching private key authenticate as it."""

    app_id: int
    public_key_pem: str
    installation_id: int
    permissions: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_APP_PERMISSIONS))
    slug: str = "tagrelay-standin"

    def to_json(self) -> dict[str, Any]:
        return {
            "app_id": self.app_id,
            "public_key_pem": self.public_key_pem,
            "installation_id": self.installation_id,
            "permissions": dict(self.permissions),
            "slug": self.slug,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> GitHubAppSpec:
        try:
            return cls(
                app_id=int(data["app_id"]),
                public_key_pem=str(data["public_key_pem"]),
                installation_id=int(data["installation_id"]),
                permissions=dict(data.get("permissions") or DEFAULT_APP_PERMISSIONS),
                slug=str(data.get("slug") or "tagrelay-standin"),
            )
        except (KeyError, TypeError, ValueError) as error:
            raise ValueError(f"app needs app_id, installation_id (integers) and public_key_pem: {error}") from error


@dataclass(frozen=True)
class StandinConfig:
    tokens: tuple[str, ...] = ()
    apps: tuple[GitHubAppSpec, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"tokens": list(self.tokens), "apps": [app.to_json() for app in self.apps]}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> StandinConfig:
        tokens = data.get("tokens") or []
        if not isinstance(tokens, list) or not all(isinstance(token, str) and token for token in tokens):
            raise ValueError("tokens must be a list of non-empty strings")
        apps = data.get("apps") or []
        if not isinstance(apps, list):
            raise ValueError("apps must be a list")
        return cls(tuple(tokens), tuple(GitHubAppSpec.from_json(app) for app in apps))

    @classmethod
    def load(cls, path: Path) -> StandinConfig:
        return cls.from_json(json.loads(path.read_text()))


def normalise_prefix(prefix: str) -> str:
    """The API base path as ``""`` or ``/api/v3`` (leading slash, no trailing slash)."""
    clean = prefix.strip().strip("/")
    return f"/{clean}" if clean else ""
