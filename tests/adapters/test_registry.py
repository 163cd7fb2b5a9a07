"""The registry adapter against the real Debian registry, moto's ECR, and a scripted local server.

The scripted server produces what the real registry cannot: 5xx, 429, 401/403, slow answers,
redirects to blob storage, and bodies that do not match their digest.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
import pytest

from devstack import images
from devstack.process import RunningServer, free_port
from tagrelay.adapters.registry import MANIFEST_ACCEPT, EcrAuth, Registry, RegistryLimits, registry_for
from tagrelay.config import App
from tagrelay.errors import MisconfiguredError, RegistryError, TransientError

if TYPE_CHECKING:
    from mypy_boto3_ecr import ECRClient

pytestmark = pytest.mark.stack

REPOSITORY = "demo/web"


@pytest.fixture(scope="module")
def pushed(registry_server: RunningServer) -> str:
    """An image tagged abc1234 and main; returns its digest."""
    digest = images.push_image(registry_server.url, REPOSITORY, ["abc1234"], content=b"web at abc1234")
    images.tag_image(registry_server.url, REPOSITORY, digest, "main")
    return digest


# --- a scripted HTTP server, for faults the real registry cannot produce ---------------------------


@dataclass
class Reply:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]


class ScriptedServer:
    """Answers each path with scripted replies (the last one repeats) and records every request."""

    def __init__(self) -> None:
        self.routes: dict[str, list[Reply]] = {}
        self.seen: list[Seen] = []
        self._stopping = threading.Event()
        script = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self._answer(with_body=True)

            def do_HEAD(self) -> None:
                self._answer(with_body=False)

            def _answer(self, *, with_body: bool) -> None:
                script.seen.append(Seen(self.command, self.path, dict(self.headers.items())))
                replies = script.routes.get(self.path.split("?", 1)[0]) or [Reply(404, b'{"errors":[]}')]
                reply = replies.pop(0) if len(replies) > 1 else replies[0]
                if reply.delay and script._stopping.wait(reply.delay):
                    return
                try:
                    self.send_response(reply.status)
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(reply.body)))
                    self.end_headers()
                    if with_body:
                        self.wfile.write(reply.body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout test)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    def hits(self, path: str) -> int:
        return sum(1 for seen in self.seen if seen.path.split("?", 1)[0] == path)

    def stop(self) -> None:
        self._stopping.set()
        self._httpd.shutdown()
        self._httpd.server_close()


@pytest.fixture
def scripted() -> Iterator[ScriptedServer]:
    server = ScriptedServer()
    yield server
    server.stop()


class StaticAuth:
    """A fixed credential, to see where the Authorization header goes."""

    def __init__(self, header: str) -> None:
        self.header = header
        self.invalidated = 0

    def authorization(self) -> str:
        return self.header

    def invalidate(self) -> None:
        self.invalidated += 1

    def describe(self) -> str:
        return "a static test credential"


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


# --- against the real registry ----------------------------------------------------------------------


def test_resolve_tag_returns_the_digest_with_one_request(registry_server: RunningServer, pushed: str) -> None:
    registry = Registry(registry_server.url)
    assert registry.resolve_tag(REPOSITORY, "abc1234") == pushed
    assert registry.request_count == 1
    assert registry.resolve_tag(REPOSITORY, "main") == pushed
    assert registry.request_count == 2


def test_resolve_tag_is_none_for_an_unknown_tag_or_repository(registry_server: RunningServer, pushed: str) -> None:
    registry = Registry(registry_server.url)
    assert registry.resolve_tag(REPOSITORY, "fffffff") is None
    assert registry.resolve_tag("demo/never-pushed", "abc1234") is None
    assert registry.request_count == 2


def test_get_manifest_by_tag_and_by_digest(registry_server: RunningServer, pushed: str) -> None:
    registry = Registry(registry_server.url)
    by_tag = registry.get_manifest(REPOSITORY, "abc1234")
    by_digest = registry.get_manifest(REPOSITORY, pushed)
    assert by_tag is not None and by_digest is not None
    assert by_tag == by_digest
    assert by_tag.digest == pushed == sha256(by_tag.raw)
    assert by_tag.media_type == images.OCI_MANIFEST
    assert [layer["mediaType"] for layer in by_tag.document()["layers"]] == [images.OCI_LAYER_GZIP]
    assert registry.request_count == 2


def test_get_manifest_is_none_when_unknown(registry_server: RunningServer, pushed: str) -> None:
    registry = Registry(registry_server.url)
    assert registry.get_manifest(REPOSITORY, "sha256:" + "0" * 64) is None
    assert registry.get_manifest(REPOSITORY, "no-such-tag") is None
    assert registry.get_manifest("demo/never-pushed", "abc1234") is None
    assert registry.request_count == 3


def test_get_blob_returns_verified_content(registry_server: RunningServer, pushed: str) -> None:
    registry = Registry(registry_server.url)
    manifest = registry.get_manifest(REPOSITORY, pushed)
    assert manifest is not None
    config_digest = manifest.document()["config"]["digest"]
    config = registry.get_blob(REPOSITORY, config_digest)
    assert sha256(config) == config_digest
    assert json.loads(config)["os"] == "linux"
    assert registry.request_count == 2


def test_get_blob_of_an_unknown_digest_is_a_registry_error(registry_server: RunningServer, pushed: str) -> None:
    registry = Registry(registry_server.url)
    with pytest.raises(RegistryError, match="unknown to the registry"):
        registry.get_blob(REPOSITORY, "sha256:" + "1" * 64)


def test_signature_tags_resolve_like_any_tag(registry_server: RunningServer) -> None:
    digest = images.push_image(registry_server.url, REPOSITORY, ["def5678"])
    signature_digest = images.sign_image(registry_server.url, REPOSITORY, digest, images.CosignKeySigner.generate())
    registry = Registry(registry_server.url)
    assert registry.resolve_tag(REPOSITORY, images.signature_tag(digest)) == signature_digest


def test_invalid_names_are_refused_before_any_request(registry_server: RunningServer) -> None:
    registry = Registry(registry_server.url)
    with pytest.raises(ValueError, match="repository"):
        registry.resolve_tag("Demo/../x", "abc1234")
    with pytest.raises(ValueError, match="tag"):
        registry.resolve_tag(REPOSITORY, "a/b")
    with pytest.raises(ValueError, match="digest"):
        registry.get_blob(REPOSITORY, "sha256:abc")
    assert registry.request_count == 0


# --- faults, from the scripted server ---------------------------------------------------------------


def test_accept_header_lists_oci_and_docker_manifest_types(scripted: ScriptedServer) -> None:
    body = b'{"schemaVersion":2}'
    scripted.routes["/v2/demo/web/manifests/abc1234"] = [Reply(200, body, {"Docker-Content-Digest": sha256(body)})]
    Registry(scripted.url).resolve_tag(REPOSITORY, "abc1234")
    Registry(scripted.url).get_manifest(REPOSITORY, "abc1234")
    for seen in scripted.seen:
        accepted = {value.strip() for value in seen.headers["Accept"].split(",")}
        assert accepted == {
            "application/vnd.oci.image.manifest.v1+json",
            "application/vnd.docker.distribution.manifest.v2+json",
            "application/vnd.oci.image.index.v1+json",
            "application/vnd.docker.distribution.manifest.list.v2+json",
        }
    assert scripted.seen[0].headers["Accept"] == MANIFEST_ACCEPT


def test_manifest_by_digest_must_hash_to_that_digest(scripted: ScriptedServer) -> None:
    wanted = "sha256:" + "a" * 64
    scripted.routes[f"/v2/demo/web/manifests/{wanted}"] = [Reply(200, b'{"schemaVersion":2}')]
    with pytest.raises(RegistryError, match="does not match its digest"):
        Registry(scripted.url).get_manifest(REPOSITORY, wanted)


def test_manifest_by_tag_must_hash_to_the_announced_digest(scripted: ScriptedServer) -> None:
    announced = "sha256:" + "b" * 64
    scripted.routes["/v2/demo/web/manifests/abc1234"] = [
        Reply(200, b'{"schemaVersion":2}', {"Docker-Content-Digest": announced})
    ]
    with pytest.raises(RegistryError, match="announced"):
        Registry(scripted.url).get_manifest(REPOSITORY, "abc1234")


def test_manifest_that_is_not_json_is_a_registry_error(scripted: ScriptedServer) -> None:
    body = b"<html>not a manifest</html>"
    scripted.routes[f"/v2/demo/web/manifests/{sha256(body)}"] = [Reply(200, body)]
    with pytest.raises(RegistryError, match="not valid JSON"):
        Registry(scripted.url).get_manifest(REPOSITORY, sha256(body))


def test_blob_must_hash_to_its_digest(scripted: ScriptedServer) -> None:
    wanted = "sha256:" + "c" * 64
    scripted.routes[f"/v2/demo/web/blobs/{wanted}"] = [Reply(200, b"other bytes")]
    with pytest.raises(RegistryError, match="does not match its digest"):
        Registry(scripted.url).get_blob(REPOSITORY, wanted)


def test_oversized_blob_is_refused(scripted: ScriptedServer) -> None:
    blob = b"x" * 2048
    scripted.routes[f"/v2/demo/web/blobs/{sha256(blob)}"] = [Reply(200, blob)]
    with pytest.raises(RegistryError, match="more than the 1024"):
        Registry(scripted.url).get_blob(REPOSITORY, sha256(blob), max_bytes=1024)


def test_tag_without_a_digest_header_is_a_registry_error(scripted: ScriptedServer) -> None:
    scripted.routes["/v2/demo/web/manifests/abc1234"] = [Reply(200)]
    with pytest.raises(RegistryError, match="Docker-Content-Digest"):
        Registry(scripted.url).resolve_tag(REPOSITORY, "abc1234")


def test_blob_redirect_is_followed_without_the_registry_credentials(scripted: ScriptedServer) -> None:
    blob = b"payload stored in S3"
    scripted.routes[f"/v2/demo/web/blobs/{sha256(blob)}"] = [
        Reply(307, headers={"Location": "/storage/blob?X-Amz-Signature=presigned"})
    ]
    scripted.routes["/storage/blob"] = [Reply(200, blob)]
    registry = Registry(scripted.url, auth=StaticAuth("Basic c2VjcmV0"))
    assert registry.get_blob(REPOSITORY, sha256(blob)) == blob
    registry_request, storage_request = scripted.seen
    assert registry_request.headers.get("Authorization") == "Basic c2VjcmV0"
    assert storage_request.path == "/storage/blob?X-Amz-Signature=presigned"
    assert "Authorization" not in storage_request.headers
    assert registry.request_count == 1


@pytest.mark.parametrize("status", [500, 502, 503, 429])
def test_server_errors_are_retried_twice_then_transient(scripted: ScriptedServer, status: int) -> None:
    scripted.routes["/v2/demo/web/manifests/abc1234"] = [Reply(status, b'{"errors":[{"code":"UNAVAILABLE"}]}')]
    registry = Registry(scripted.url)
    with pytest.raises(TransientError, match=str(status)) as raised:
        registry.get_manifest(REPOSITORY, "abc1234")
    assert raised.value.system == "registry"
    assert scripted.hits("/v2/demo/web/manifests/abc1234") == 3
    assert registry.request_count == 1


def test_a_server_error_that_passes_is_absorbed_by_the_retry(scripted: ScriptedServer) -> None:
    digest = "sha256:" + "d" * 64
    scripted.routes["/v2/demo/web/manifests/abc1234"] = [
        Reply(503),
        Reply(200, headers={"Docker-Content-Digest": digest}),
    ]
    registry = Registry(scripted.url)
    assert registry.resolve_tag(REPOSITORY, "abc1234") == digest
    assert scripted.hits("/v2/demo/web/manifests/abc1234") == 2


def test_unreachable_registry_is_transient() -> None:
    registry = Registry(f"http://127.0.0.1:{free_port()}")
    with pytest.raises(TransientError, match="cannot reach"):
        registry.resolve_tag(REPOSITORY, "abc1234")


def test_slow_registry_is_transient(scripted: ScriptedServer) -> None:
    scripted.routes["/v2/demo/web/manifests/abc1234"] = [Reply(200, b"{}", delay=5.0)]
    with pytest.raises(TransientError, match=r"no complete answer within 0.3s \(limits.http_deadline_seconds\)"):
        Registry(scripted.url, limits=RegistryLimits(deadline=0.3)).get_manifest(REPOSITORY, "abc1234")
    # The deadline covers the retries: once it has passed, none is sent.
    assert scripted.hits("/v2/demo/web/manifests/abc1234") == 1


def test_the_deadline_holds_when_its_timer_runs_late(scripted: ScriptedServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """Under load the timer thread can fire after the read timeout of the same length has already failed
    the request: its retry must still not be sent, because the clock, not the timer, says the deadline passed."""

    class LateTimer(threading.Timer):
        def __init__(self, interval: float, function: Any) -> None:
            super().__init__(interval + 1.0, function)

    monkeypatch.setattr(threading, "Timer", LateTimer)  # adapters/http.py looks it up on each deadline
    scripted.routes["/v2/demo/web/manifests/abc1234"] = [Reply(200, b"{}", delay=5.0)]
    with pytest.raises(TransientError, match=r"no complete answer within 0.3s"):
        Registry(scripted.url, limits=RegistryLimits(deadline=0.3)).get_manifest(REPOSITORY, "abc1234")
    assert scripted.hits("/v2/demo/web/manifests/abc1234") == 1


def test_refused_credentials_are_a_misconfiguration_without_the_token(scripted: ScriptedServer) -> None:
    scripted.routes["/v2/demo/web/manifests/abc1234"] = [Reply(401, b'{"errors":[{"code":"UNAUTHORIZED"}]}')]
    auth = StaticAuth("Basic dG9wLXNlY3JldA==")
    with pytest.raises(MisconfiguredError, match="refused the credentials") as raised:
        Registry(scripted.url, auth=auth).get_manifest(REPOSITORY, "abc1234")
    assert "dG9wLXNlY3JldA" not in str(raised.value)
    assert "static test credential" in str(raised.value)
    assert auth.invalidated == 1
    assert scripted.hits("/v2/demo/web/manifests/abc1234") == 1  # a refusal is not retried


def test_denied_access_names_the_permissions_to_grant(scripted: ScriptedServer) -> None:
    scripted.routes["/v2/demo/web/manifests/abc1234"] = [Reply(403, b'{"errors":[{"code":"DENIED"}]}')]
    with pytest.raises(MisconfiguredError, match=r"ecr:BatchGetImage") as raised:
        Registry(scripted.url).get_manifest(REPOSITORY, "abc1234")
    assert "demo/web" in str(raised.value)
    assert "DENIED" in str(raised.value)


def test_unexpected_client_error_is_a_registry_error(scripted: ScriptedServer) -> None:
    scripted.routes["/v2/demo/web/manifests/abc1234"] = [Reply(400, b'{"errors":[{"code":"TAG_INVALID"}]}')]
    with pytest.raises(RegistryError, match="TAG_INVALID"):
        Registry(scripted.url).get_manifest(REPOSITORY, "abc1234")


def test_repository_unknown_is_none(scripted: ScriptedServer) -> None:
    scripted.routes["/v2/demo/web/manifests/abc1234"] = [Reply(404, b'{"errors":[{"code":"NAME_UNKNOWN"}]}')]
    assert Registry(scripted.url).get_manifest(REPOSITORY, "abc1234") is None


# --- ECR credentials, from moto's ECR -----------------------------------------------------------------


def counted_ecr_client() -> tuple[ECRClient, list[str]]:
    client: ECRClient = boto3.client("ecr", region_name="us-east-1")
    calls: list[str] = []
    client.meta.events.register("before-call.ecr.GetAuthorizationToken", lambda **_: calls.append("token"))
    return client, calls


def test_ecr_token_reaches_the_registry_as_basic_auth(moto_server: RunningServer, scripted: ScriptedServer) -> None:
    digest = "sha256:" + "e" * 64
    scripted.routes["/v2/demo/web/manifests/abc1234"] = [Reply(200, headers={"Docker-Content-Digest": digest})]
    registry = Registry(scripted.url, auth=EcrAuth("123456789012", "us-east-1"))
    assert registry.resolve_tag(REPOSITORY, "abc1234") == digest
    # moto's token is base64("AWS:<account>-auth-token"), sent as is after "Basic ".
    token = base64.b64encode(b"AWS:123456789012-auth-token").decode()
    assert scripted.seen[0].headers["Authorization"] == f"Basic {token}"


def test_ecr_token_is_fetched_lazily_and_cached_until_it_expires(moto_server: RunningServer) -> None:
    client, calls = counted_ecr_client()
    # moto's tokens expire on 2015-01-01; a clock before that sees a fresh token.
    now = [datetime(2014, 12, 31, 0, 0, tzinfo=UTC)]
    auth = EcrAuth("123456789012", "us-east-1", client=client, clock=lambda: now[0])
    assert calls == []
    first = auth.authorization()
    assert auth.authorization() == first
    assert calls == ["token"]
    now[0] = datetime(2014, 12, 31, 23, 55, tzinfo=UTC)  # within the refresh margin of the expiry
    auth.authorization()
    assert calls == ["token", "token"]
    auth.invalidate()
    auth.authorization()
    assert len(calls) == 3


def test_ecr_denied_token_is_a_misconfiguration() -> None:
    from botocore.exceptions import ClientError

    class DeniedClient:
        def get_authorization_token(self, **_: object) -> object:
            error = {"Error": {"Code": "AccessDeniedException", "Message": "not allowed"}}
            raise ClientError(error, "GetAuthorizationToken")  # type: ignore[arg-type]

    auth = EcrAuth("123456789012", "us-east-1", client=DeniedClient())  # type: ignore[arg-type]
    with pytest.raises(MisconfiguredError, match="ecr:GetAuthorizationToken"):
        auth.authorization()


def app_with_registry(registry: str) -> App:
    return App.model_validate(
        {
            "source_repo": "o/r",
            "registry": registry,
            "images": [REPOSITORY],
            "gitops": {"repo": "o/gitops"},
            "environments": {"prod": {"branch": "main"}},
            "signature": "none",
        }
    )


def test_registry_for_uses_ecr_credentials_only_for_ecr_hosts() -> None:
    ecr = registry_for(app_with_registry("123456789012.dkr.ecr.eu-west-1.amazonaws.com"))
    assert ecr.base_url == "https://123456789012.dkr.ecr.eu-west-1.amazonaws.com"
    assert isinstance(ecr.auth, EcrAuth)
    assert (ecr.auth.account, ecr.auth.region) == ("123456789012", "eu-west-1")
    local = registry_for(app_with_registry("http://127.0.0.1:5000"))
    assert local.base_url == "http://127.0.0.1:5000"
    assert local.auth is None


def test_the_adapter_never_lists_tags() -> None:
    # The design bounds requests per event; a tag listing is unbounded.
    source = Path(__file__).parents[2] / "functions" / "tagrelay" / "adapters" / "registry.py"
    assert "tags/list" not in source.read_text()
