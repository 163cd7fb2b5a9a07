"""The OCI 1.1 referrers API in front of Debian's registry, which lacks it.

ECR answers ``GET /v2/<repo>/referrers/<digest>`` (OCI distribution-spec 1.1, "Listing Referrers"; ECR supports it since 2024-06-27, AWS What's New); distribution 2.8 does
not, so the tests of cosign v3 bundles could only reach the referrers tag-schema fallback. This proxy
forwards every request to the registry unchanged and remembers each manifest pushed through it that
has a ``subject``; it answers the referrers API from that memory, as the distribution spec describes
(an image index of descriptors with ``artifactType`` and annotations, filtered by ``artifactType`` with
``OCI-Filters-Applied``, an empty list rather than a 404).

Run: ``python -m devstack.referrers_proxy --backend http://127.0.0.1:5000 --port 5001``, or
``start_referrers_proxy(backend_url, workdir)``, which starts it as a child process (stop it by pid).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import socket
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests

from devstack.process import RunningServer, free_port, start_server

_REFERRERS = re.compile(r"^/v2/(?P<repo>.+)/referrers/(?P<digest>sha256:[0-9a-f]{64})$")
_MANIFEST = re.compile(r"^/v2/(?P<repo>.+)/manifests/(?P<reference>[^/]+)$")
_HOP_HEADERS = {"connection", "keep-alive", "transfer-encoding", "content-length", "host"}
OCI_INDEX = "application/vnd.oci.image.index.v1+json"


class ReferrersStore:
    """(repository, subject digest) → descriptors of the manifests that refer to it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._referrers: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}

    def add(self, repository: str, manifest: bytes, media_type: str) -> None:
        try:
            document = json.loads(manifest)
        except ValueError:
            return
        subject = document.get("subject") if isinstance(document, dict) else None
        if not isinstance(subject, dict) or not isinstance(subject.get("digest"), str):
            return
        digest = "sha256:" + hashlib.sha256(manifest).hexdigest()
        descriptor: dict[str, Any] = {"mediaType": media_type, "size": len(manifest), "digest": digest}
        artifact_type = document.get("artifactType") or (document.get("config") or {}).get("mediaType")
        if artifact_type:
            descriptor["artifactType"] = artifact_type
        if isinstance(document.get("annotations"), dict):
            descriptor["annotations"] = document["annotations"]
        with self._lock:
            self._referrers.setdefault((repository, subject["digest"]), {})[digest] = descriptor

    def list(self, repository: str, digest: str, artifact_type: str | None) -> list[dict[str, Any]]:
        with self._lock:
            found = list(self._referrers.get((repository, digest), {}).values())
        return [d for d in found if artifact_type is None or d.get("artifactType") == artifact_type]


def make_handler(backend: str, store: ReferrersStore) -> type[BaseHTTPRequestHandler]:
    session = requests.Session()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self) -> None:
            super().setup()
            # Headers and body go out in separate writes; without this, Nagle holds the body until the
            # client's delayed ACK (~40 ms per request on Linux).
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def log_message(self, format: str, *args: Any) -> None:
            return

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            match = _REFERRERS.match(url.path)
            if match is None:
                self._forward()
                return
            artifact_type = parse_qs(url.query).get("artifactType", [None])[0]
            manifests = store.list(match["repo"], match["digest"], artifact_type)
            body = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests}).encode()
            self.send_response(200)
            self.send_header("Content-Type", OCI_INDEX)
            self.send_header("Content-Length", str(len(body)))
            if artifact_type is not None:
                self.send_header("OCI-Filters-Applied", "artifactType")
            self.end_headers()
            self.wfile.write(body)

        def do_HEAD(self) -> None:
            self._forward()

        def do_POST(self) -> None:
            self._forward()

        def do_PATCH(self) -> None:
            self._forward()

        def do_DELETE(self) -> None:
            self._forward()

        def do_PUT(self) -> None:
            body = self._forward()
            match = _MANIFEST.match(urlsplit(self.path).path)
            if match is not None and body is not None:
                store.add(match["repo"], body, self.headers.get("Content-Type", ""))

        def _forward(self) -> bytes | None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else None
            headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_HEADERS}
            answer = session.request(
                self.command, backend + self.path, data=body, headers=headers, allow_redirects=False, timeout=30
            )
            self.send_response(answer.status_code)
            for name, value in answer.headers.items():
                if name.lower() not in _HOP_HEADERS:
                    # The registry's Location headers name itself; clients must come back through us.
                    self.send_header(name, value.replace(backend, f"http://{self.headers.get('Host')}"))
            content = answer.content if self.command != "HEAD" else b""
            # A HEAD answer announces the length a GET would have, without a body.
            announced = str(answer.headers.get("Content-Length", "0")) if self.command == "HEAD" else str(len(content))
            self.send_header("Content-Length", announced)
            self.end_headers()
            if content:
                self.wfile.write(content)
            return body if answer.status_code == 201 else None

    return Handler


def start_referrers_proxy(backend_url: str, workdir: Path) -> RunningServer:
    """The proxy as a child process on a free loopback port, ready when the registry answers through it."""
    port = free_port()
    return start_server(
        "referrers-proxy",
        [sys.executable, "-m", "devstack.referrers_proxy", "--backend", backend_url, "--port", str(port)],
        url=f"http://127.0.0.1:{port}",
        ready_path="/v2/",
        log_dir=workdir / "referrers-proxy",
        cwd=Path(__file__).resolve().parent.parent,
        is_ready=lambda response: response.status_code == 200,
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", required=True, help="the registry's URL, e.g. http://127.0.0.1:5000")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    server = ThreadingHTTPServer(("127.0.0.1", args.port), make_handler(args.backend.rstrip("/"), ReferrersStore()))
    server.serve_forever()


if __name__ == "__main__":
    main()
