"""The control API under ``/_standin/`` (no auth): repositories, credentials, faults and the request log.

For tests, the demo and the benchmarks only; GitHub has nothing like it. Served both at the root and
below the API prefix, so a client holding either URL reaches it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devstack.github_standin.api import ApiError, GitHubApi, Reply
from devstack.github_standin.config import GitHubAppSpec
from devstack.github_standin.faults import FaultBook, RequestLog
from devstack.github_standin.gitstore import BareRepo

CONTROL_PREFIX = "/_standin/"


@dataclass(frozen=True)
class ControlContext:
    data_dir: Path
    prefix: str
    api: GitHubApi
    faults: FaultBook
    requests: RequestLog


def handle_control(context: ControlContext, method: str, route: str, body: bytes, api_url: str) -> Reply:
    """``route`` is the part after ``/_standin/``, e.g. ``faults``."""
    try:
        payload = json.loads(body) if body.strip() else {}
    except json.JSONDecodeError:
        return Reply(400, {"message": "body is not JSON"})
    if not isinstance(payload, dict):
        return Reply(400, {"message": "body must be a JSON object"})
    try:
        return _dispatch(context, method, route.strip("/"), payload, api_url)
    except ValueError as error:
        return Reply(422, {"message": str(error)})


def _dispatch(context: ControlContext, method: str, route: str, payload: dict[str, Any], api_url: str) -> Reply:  # noqa: PLR0911 - the route table of the stand-in's control API: one case per route
    match (method, route):
        case ("GET", "health"):
            return Reply(200, {"ok": True})
        case ("GET", "info"):
            return Reply(200, {"data_dir": str(context.data_dir), "prefix": context.prefix, "api_url": api_url})
        case ("POST", "repos"):
            return _create_repository(context, payload)
        case ("POST", "tokens"):
            token = payload.get("token")
            if not isinstance(token, str) or not token:
                raise ValueError("token must be a non-empty string")
            context.api.credentials.add_token(token)
            return Reply(204)
        case ("POST", "apps"):
            context.api.credentials.add_app(GitHubAppSpec.from_json(payload))
            return Reply(204)
        case ("GET", "faults"):
            return Reply(200, context.faults.list())
        case ("POST", "faults"):
            return Reply(201, context.faults.add(payload).describe())
        case ("DELETE", "faults"):
            context.faults.clear()
            return Reply(204)
        case ("GET", "requests"):
            return Reply(200, context.requests.entries())
        case ("DELETE", "requests"):
            context.requests.clear()
            return Reply(204)
        case ("PUT", "requests/bodies"):
            context.requests.keep_bodies = bool(payload.get("enabled"))
            return Reply(204)
    return Reply(404, {"message": f"no control route {method} /_standin/{route}"})


def _create_repository(context: ControlContext, payload: dict[str, Any]) -> Reply:
    """Create an empty bare repository (idempotent: 200 if it already exists)."""
    full_name = payload.get("full_name")
    if not isinstance(full_name, str) or full_name.count("/") != 1:
        raise ValueError("full_name must look like owner/name")
    owner, name = full_name.split("/")
    try:
        path = context.api.repo_path(owner, name)
    except ApiError as error:
        raise ValueError(f"invalid repository name {full_name!r}") from error
    existed = BareRepo(path).exists()
    repo = BareRepo.init(path, str(payload.get("default_branch") or "main"))
    body = {"full_name": full_name, "path": str(path), "default_branch": repo.default_branch()}
    return Reply(200 if existed else 201, body)
