"""Time to verify the keyless signatures of a warm two-image release, per image, in both cosign layouts.

``python bench/signature_verify.py [--iterations 30]``

Starts the Debian registry, pushes a release of two images (``web`` and ``core-api``) tagged with one
short SHA, and signs it keyless with the test Sigstore three times: cosign's legacy ``.sig`` layout,
a cosign v3 bundle found through the referrers tag schema (the Debian registry has no referrers API),
and the same bundle through the referrers API (devstack's referrers proxy). For each, it builds the
verifier as the promoter does (once per process), verifies once to warm it (the first bundle imports
sigstore-python), then times ``iterations`` verifications of the release with a fresh registry client
each time, so every registry request is really made. Prints p50/p95 per image, registry requests per
image, and the cold first verification; budget: under 100 ms per image (issue 3).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from devstack import images
from devstack.referrers_proxy import start_referrers_proxy
from devstack.registry import start_registry
from devstack.sigstore_testing import (
    GitHubIdentity,
    KeylessSigner,
    TestSigstore,
    keyless_signature_config,
    sign_image_bundle,
    sign_image_keyless,
)
from tagrelay.adapters.registry import Registry
from tagrelay.adapters.signatures import ReleaseContext, verifier_for
from tagrelay.config import App

SHA = "1e07581"
IMAGES = ("mosaic-life/web", "mosaic-life/core-api")
BUDGET_MS = 100.0


def _app(registry_url: str, trusted_root: Path) -> App:
    return App.model_validate(
        {
            "source_repo": "mosaic-stories/mosaic-life",
            "registry": registry_url,
            "images": list(IMAGES),
            "gitops": {"repo": "mosaic-stories/gitops"},
            "environments": {"prod": {"branch": "main"}},
            "signature": keyless_signature_config(trusted_root),
        }
    )


def _release(registry_url: str, sign: Callable[[str, str, str], object], content: bytes) -> dict[str, str]:
    digests = {}
    for image in IMAGES:
        digest = images.push_image(registry_url, image, [SHA, "main"], content=content + image.encode())
        sign(registry_url, image, digest)
        digests[image] = digest
    return digests


def _measure(name: str, registry_url: str, app: App, digests: dict[str, str], iterations: int) -> bool:
    verifier = verifier_for(app)
    release = ReleaseContext.for_release(app, SHA, ["prod"])
    started = time.perf_counter()
    for image, digest in digests.items():
        verdict = verifier.verify(Registry(registry_url), image, digest, release=release)
        if verdict.status != "verified":
            print(f"{name}: {image} not verified: {verdict.reason}", file=sys.stderr)
            return False
    cold_ms = (time.perf_counter() - started) * 1000 / len(digests)
    per_image: list[float] = []
    requests = 0
    for _ in range(iterations):
        registry = Registry(registry_url)
        started = time.perf_counter()
        for image, digest in digests.items():
            verifier.verify(registry, image, digest, release=release)
        per_image.append((time.perf_counter() - started) * 1000 / len(digests))
        requests = registry.request_count // len(digests)
    p50 = statistics.median(per_image)
    p95 = statistics.quantiles(per_image, n=20)[-1] if len(per_image) >= 20 else max(per_image)
    judgement = "within" if p95 < BUDGET_MS else "OVER"
    print(
        f"{name:<34} p50 {p50:6.1f} ms  p95 {p95:6.1f} ms per image  ({requests} registry requests/image; "
        f"first, cold: {cold_ms:6.1f} ms)  {judgement} the {BUDGET_MS:.0f} ms budget"
    )
    return p95 < BUDGET_MS


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--iterations", type=int, default=30)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="tagrelay-bench-") as scratch:
        workdir = Path(scratch)
        registry = start_registry(workdir)
        proxy = start_referrers_proxy(registry.url, workdir)
        try:
            sigstore = TestSigstore.generate("bench")
            trusted_root = sigstore.write_trusted_root(workdir / "trusted_root.json")
            signer = KeylessSigner(sigstore, GitHubIdentity(sha=SHA + "0" * 33))
            legacy = _release(registry.url, lambda u, i, d: sign_image_keyless(u, i, d, signer), b"legacy")
            tagged = _release(registry.url, lambda u, i, d: sign_image_bundle(u, i, d, signer), b"tag schema")
            referred = _release(proxy.url, lambda u, i, d: sign_image_bundle(u, i, d, signer), b"referrers")
            print(f"two-image release, {args.iterations} warm iterations, fresh registry client each")
            results = [
                _measure(
                    "legacy .sig (cosign v1/v2)",
                    registry.url,
                    _app(registry.url, trusted_root),
                    legacy,
                    args.iterations,
                ),
                _measure(
                    "v3 bundle, referrers tag schema",
                    registry.url,
                    _app(registry.url, trusted_root),
                    tagged,
                    args.iterations,
                ),
                _measure(
                    "v3 bundle, referrers API", proxy.url, _app(proxy.url, trusted_root), referred, args.iterations
                ),
            ]
        finally:
            proxy.stop()
            registry.stop()
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
