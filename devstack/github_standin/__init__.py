"""GitHub stand-in: a small HTTP server that PyGithub talks to as to GitHub, backed by real bare git repos.

Start it with :func:`start_github_standin`, point ``Github(base_url=server.url, …)`` at it, drive faults
and read the request log with :class:`StandinControl`, and look at the commits with ``git log`` in
``StandinControl.repo_path(full_name)``.

Routes (below an optional prefix such as ``/api/v3``): ``GET /repos/{o}/{r}``, ``GET /branches/{b}``,
``GET|PUT /contents/{path}``, ``GET /commits``, ``GET /commits/{ref}``, ``GET /compare/{base}...{head}``,
Git Data ``refs`` (get, list, matching, create, update, delete), ``commits``, ``blobs``, ``trees``, and
the App flow ``GET /repos/{o}/{r}/installation``, ``GET /app``, ``POST /app/installations/{id}/access_tokens``.

Behaviours taken from GitHub (GitHub's REST API docs, as PyGithub 2.x calls it): 409 ``<path> does not match <sha>`` for a stale blob
SHA; 422 ``Invalid request.\\n\\n"sha" wasn't supplied.``; 422 ``No commit found for SHA: <ref>``;
422 ``Update is not a fast forward``; 422 ``Reference already exists``; 401 ``Bad credentials``;
401 ``A JSON web token could not be decoded`` and the expired-``exp`` text; 409 ``Git Repository is
empty.``; 404 ``Not Found``; the secondary-rate-limit message.

Assumptions (GitHub's exact behaviour is not known to us):

* An **ambiguous short SHA** on ``GET /commits/{ref}`` answers exactly as an unknown one: 422 ``No
  commit found for SHA: <ref>``. Users report that GitHub gives no other answer (a short SHA with a
  collision is "not found": code-dot-org/code-dot-org#73862, timescale/timescaledb#8102,
  OHF-Voice/piper1-gpl#283), and GitHub's OpenAPI description documents only the generic 422; so
  clients cannot, and tagrelay does not, tell the two apart. Only commits count as collisions.
  Elsewhere (compare, contents ``ref``, commits ``sha=``) an ambiguous short SHA is treated as
  unknown (404).
* A ``sha`` sent for a file that does not exist answers 409 ``<path> does not match <sha>``.
* A missing branch on PUT contents, an unknown ``sha=`` on the commit list, and a missing ``ref`` on
  GET contents answer 404 ``Not Found`` (GitHub may word the last one ``No commit found for the ref …``).
* If the branch moves between the stand-in's read and its ``update-ref`` (a ``git push`` from outside),
  PUT contents answers 409 ``is at <sha> but expected <sha>`` (the text PyGithub#1787 reports).
* Git Data validation texts ``Tree SHA does not exist``, ``Parent SHA does not exist or is not a commit
  object``, ``Object does not exist``, ``Reference does not exist`` and the ``GitRPC::BadObjectState``
  tree error are best-effort.
* The primary rate limit is reported in headers but never enforced; the per-request budget is shared by
  all callers. Commit ``author``/``committer`` logins are derived from the email's local part.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from requests import Response, Session

from devstack.github_standin.app_auth import generate_app_keypair
from devstack.github_standin.config import GitHubAppSpec, StandinConfig, normalise_prefix
from devstack.process import RunningServer, free_port, start_server

__all__ = ["GitHubAppSpec", "StandinControl", "generate_app_keypair", "start_github_standin"]

_PROJECT_ROOT = Path(__file__).resolve().parents[2]


def start_github_standin(
    workdir: Path,
    *,
    tokens: Sequence[str] = ("test-token",),
    app: GitHubAppSpec | None = None,
    prefix: str = "",
) -> RunningServer:
    """Start the stand-in on a free loopback port; repositories live in ``workdir/github-standin/repos``.

    ``server.url`` is the API base URL for PyGithub (prefix included); ``server.extra`` has
    ``root_url``, ``prefix`` and ``data_dir``. Stop it with ``server.stop()``.
    """
    port = free_port()
    prefix = normalise_prefix(prefix)
    home = workdir / "github-standin"
    data_dir = home / "repos"
    data_dir.mkdir(parents=True, exist_ok=True)
    config_path = home / "config.json"
    config = StandinConfig(tuple(tokens), (app,) if app else ())
    # The file holds tokens: readable by this user only.
    descriptor = os.open(config_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        json.dump(config.to_json(), handle)
    root_url = f"http://127.0.0.1:{port}"
    argv = [sys.executable, "-m", "devstack.github_standin", "--port", str(port), "--data-dir", str(data_dir)]
    argv += ["--prefix", prefix, "--config", str(config_path)]
    server = start_server(
        "github-standin",
        argv,
        url=root_url + prefix,
        ready_path="/_standin/health",
        log_dir=workdir,
        cwd=_PROJECT_ROOT,
    )
    server.extra.update(root_url=root_url, prefix=prefix, data_dir=str(data_dir))
    return server


class StandinControl:
    """A small client of the control API; ``url`` may be the root URL or the API URL (prefix included)."""

    def __init__(self, url: str, *, timeout: float = 30.0) -> None:
        self._base = url.rstrip("/") + "/_standin"
        self._timeout = timeout
        self._session = Session()

    def inject(
        self,
        *,
        method: str,
        path_regex: str,
        status: int | None = None,
        count: int = 1,
        kind: str | None = None,
        body: Any = None,
        headers: dict[str, str] | None = None,
        file: str | None = None,
        content: str | None = None,
        seconds: float | None = None,
    ) -> None:
        """Arm a fault for the next ``count`` requests matching ``method`` (``*``: any) and ``path_regex``.

        ``kind``: None (answer ``status``/``body``/``headers``), ``secondary_rate_limit``,
        ``primary_rate_limit``, ``concurrent_commit`` (another writer commits ``file``/``content`` first)
        or ``delay`` (served after ``seconds``).
        """
        spec: dict[str, Any] = {"method": method, "path_regex": path_regex, "count": count}
        optional = {
            "status": status,
            "kind": kind,
            "body": body,
            "headers": headers,
            "file": file,
            "content": content,
            "seconds": seconds,
        }
        spec.update({name: value for name, value in optional.items() if value is not None})
        self._call("POST", "faults", spec)

    def faults(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._call("GET", "faults").json()
        return result

    def clear_faults(self) -> None:
        self._call("DELETE", "faults")

    def requests(self) -> list[dict[str, Any]]:
        """Every API request served since the last clear: method, path, query, status, time, auth, fault."""
        result: list[dict[str, Any]] = self._call("GET", "requests").json()
        return result

    def clear_requests(self) -> None:
        self._call("DELETE", "requests")

    def keep_bodies(self, enabled: bool = True) -> None:
        """Keep each answer's JSON body in the request log (``body``), to check it against GitHub's schema."""
        self._call("PUT", "requests/bodies", {"enabled": enabled})

    def create_repo(self, full_name: str, default_branch: str = "main") -> Path:
        """Create an empty bare repository (idempotent) and return its path."""
        reply = self._call("POST", "repos", {"full_name": full_name, "default_branch": default_branch})
        return Path(reply.json()["path"])

    def repo_path(self, full_name: str) -> Path:
        """Where ``owner/name`` lives on disk (whether or not it exists yet)."""
        owner, name = full_name.split("/", 1)
        return Path(self._call("GET", "info").json()["data_dir"]) / owner / f"{name}.git"

    def add_token(self, token: str) -> None:
        self._call("POST", "tokens", {"token": token})

    def add_app(self, app: GitHubAppSpec) -> None:
        self._call("POST", "apps", app.to_json())

    def _call(self, method: str, route: str, payload: Any = None) -> Response:
        response = self._session.request(method, f"{self._base}/{route}", json=payload, timeout=self._timeout)
        if response.status_code >= 400:
            raise RuntimeError(f"stand-in control {method} {route} answered {response.status_code}: {response.text}")
        return response
