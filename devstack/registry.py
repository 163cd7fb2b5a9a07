"""Debian's ``docker-registry`` (the CNCF distribution registry): the local stand-in for ECR's registry API.

It speaks the same OCI distribution API that ECR speaks, so the registry adapter is tested against a real
server. Differences that matter: no authentication, no OCI 1.1 referrers
API, blobs served directly instead of through a redirect, and a 404 for OCI manifests unless the
request's Accept header lists the OCI type (the adapter always sends it).
"""

from __future__ import annotations

import secrets
import shutil
from pathlib import Path

from devstack.process import RunningServer, ServerStartError, free_port, start_server

REGISTRY_BINARY = "docker-registry"


def registry_config(*, port: int, data_dir: Path, http_secret: str) -> str:
    """The registry's YAML configuration: loopback only, no auth, deletes allowed, access log off."""
    # The packaged /etc/docker/registry/config.yml enables htpasswd auth and listens on :5000, so we
    # always write our own. Deletes are enabled so that tests can remove a tag's manifest.
    return f"""\
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: {data_dir}
  delete:
    enabled: true
http:
  addr: 127.0.0.1:{port}
  secret: {http_secret}
  headers:
    X-Content-Type-Options: [nosniff]
"""


def start_registry(workdir: Path) -> RunningServer:
    """Start ``docker-registry serve`` on a free loopback port, storing data under ``workdir``.

    Ready when ``GET /v2/`` answers 200. Stop it with ``server.stop()`` (by pid).
    """
    binary = shutil.which(REGISTRY_BINARY)
    if binary is None:
        raise ServerStartError(
            f"{REGISTRY_BINARY} is not installed (apt-get install docker-registry; scripts/bootstrap does it)"
        )
    root = workdir / "registry"
    data_dir = root / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    config_path = root / "config.yml"
    # A fixed secret per start silences the "No HTTP secret provided" warning; one instance needs no sharing.
    config_path.write_text(registry_config(port=port, data_dir=data_dir, http_secret=secrets.token_hex(16)))
    server = start_server(
        "registry",
        [binary, "serve", str(config_path)],
        url=f"http://127.0.0.1:{port}",
        ready_path="/v2/",
        log_dir=root,
        is_ready=lambda response: response.status_code == 200,
    )
    server.extra["data_dir"] = str(data_dir)
    return server
