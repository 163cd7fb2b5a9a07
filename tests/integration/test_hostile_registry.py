"""A hostile or broken registry cannot exhaust the promoter: driven through the promoter handler.

The app's registry is a real socket server on loopback (devstack/hostile_registry.py) in front of the
Debian registry: it forwards everything, except the signature manifest, which it answers with a 200 MB
body, a body dripped a byte at a time, or headers dripped a line at a time. The 2,000-layer signature
is a real manifest in the real registry. No client is patched.

Each bound is shown without a timing assertion: by what the server managed to send before the client
went away, and by the requests the promoter made.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from devstack.hostile_registry import Drip, Flood, HostileRegistry
from devstack.images import put_blob, put_signature_manifest, simple_signing_payload
from devstack.scenario import SeedScenario
from tagrelay.domain.tags import signature_tag
from tagrelay.errors import TransientError
from tests.integration.test_promoter_handler import deploy_commits, history, invoke

pytestmark = pytest.mark.stack

SIGNATURE_MANIFEST = r"/manifests/sha256-[0-9a-f]{64}\.sig$"
SHORT_LIMITS = {"http_deadline_seconds": 1.0, "http_connect_timeout_seconds": 1.0}


@pytest.fixture
def hostile(scenario: SeedScenario) -> Iterator[HostileRegistry]:
    server = HostileRegistry(scenario.stack.registry.url)
    yield server
    server.stop()


def release_events(scenario: SeedScenario) -> list[dict[str, Any]]:
    release = scenario.release(scenario.commit("main"))
    return release.events


def test_a_200_mb_error_body_is_not_read(
    scenario: SeedScenario, promoter_env: Callable[..., Any], hostile: HostileRegistry
) -> None:
    promoter_env(registry=hostile.url, extra={"limits": SHORT_LIMITS})
    hostile.misbehave(SIGNATURE_MANIFEST, Flood(status=500, declare_length=True))
    events = release_events(scenario)
    with pytest.raises(TransientError, match="answered 500"):
        for event in events:
            invoke(event)
    floods = [s for s in hostile.served if re.search(SIGNATURE_MANIFEST, s.path)]
    assert floods and all(not s.finished for s in floods)
    # Each answer was abandoned after its first 64 KiB (plus what the sockets buffered): never 200 MB.
    assert max(s.sent for s in floods) < 20 * 1024 * 1024, [s.sent for s in floods]
    assert deploy_commits(scenario) == []


def test_an_endless_manifest_is_refused_as_response_too_large(
    scenario: SeedScenario, promoter_env: Callable[..., Any], hostile: HostileRegistry
) -> None:
    promoter_env(registry=hostile.url, extra={"limits": {**SHORT_LIMITS, "manifest_max_bytes": 1024 * 1024}})
    hostile.misbehave(SIGNATURE_MANIFEST, Flood(status=200, content_type="application/vnd.oci.image.manifest.v1+json"))
    results = [invoke(event) for event in release_events(scenario)]
    rejected = [r for r in results if r["decision"] == "reject"]
    assert rejected and {r["reason"] for r in rejected} == {"response_too_large"}
    assert "more than the 1048576 bytes" in rejected[-1]["message"]
    assert max(s.sent for s in hostile.served if re.search(SIGNATURE_MANIFEST, s.path)) < 20 * 1024 * 1024
    assert {r.reason for r in history("prod") if r.outcome == "rejected"} == {"response_too_large"}


@pytest.mark.parametrize("headers_too", [False, True], ids=["body", "headers"])
def test_a_slow_drip_meets_the_whole_request_deadline(
    scenario: SeedScenario, promoter_env: Callable[..., Any], hostile: HostileRegistry, headers_too: bool
) -> None:
    promoter_env(registry=hostile.url, extra={"limits": SHORT_LIMITS})
    # 1,000 bytes at 0.05 s each: every single read comes well within any read timeout, the whole
    # answer would take 50 s.
    hostile.misbehave(SIGNATURE_MANIFEST, Drip(interval=0.05, headers_too=headers_too))
    events = release_events(scenario)
    with pytest.raises(TransientError, match=r"no complete answer within 1s \(limits.http_deadline_seconds\)"):
        for event in events:
            invoke(event)
    drips = [s for s in hostile.served if re.search(SIGNATURE_MANIFEST, s.path)]
    assert len(drips) == 1  # no retry once the deadline has passed
    assert not drips[0].finished and drips[0].sent < 1000
    assert deploy_commits(scenario) == []


def test_a_2000_layer_signature_costs_a_bounded_number_of_requests(
    scenario: SeedScenario, promoter_env: Callable[..., Any]
) -> None:
    import json

    from tagrelay import runtime

    promoter_env()
    sha = scenario.commit("main")
    release = scenario.release(sha, sign=False)
    registry_url = scenario.stack.registry.url
    web = scenario.images[0]
    config = put_blob(registry_url, web, b"{}")
    payload = simple_signing_payload(release.digests[web], f"{registry_url}/{web}", optional={"git-sha": sha})
    junk = put_blob(registry_url, web, payload)
    # 2,000 signature layers, each of them a signature by nobody the app trusts.
    layers = [
        {
            "mediaType": "application/vnd.dev.cosign.simplesigning.v1+json",
            "size": len(payload),
            "digest": junk,
            "annotations": {"dev.cosignproject.cosign/signature": "MEUCIQD" + "A" * 85 + "=="},
        }
    ] * 2000
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "size": 2, "digest": config},
            "layers": layers,
        }
    ).encode()
    signature = put_signature_manifest(registry_url, web, release.digests[web], manifest)
    for event in release.events:
        invoke(event)
    registry = runtime.promoter().deps.registry_for(runtime.config().apps["mosaic-life"])
    before = registry.request_count
    from devstack.events import ecr_push_event

    result = invoke(ecr_push_event(web, signature_tag(release.digests[web]), signature))
    used = registry.request_count - before
    # readiness, environment and the other image's signature: a handful; 16 layers examined at most:
    # a couple of dozen requests, where main made 2,002.
    assert used < 30, used
    # 16 examined, and one entry for the 1,984 left alone ("not examined: only the first 16 ...").
    assert result["decision"] == "reject" and "none of the 17 signature(s)" in result["message"]
