"""Helpers shared by the signature tests: an app configured for the test Sigstore, and a verify call."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from devstack.sigstore_testing import keyless_signature_config
from tagrelay.adapters.registry import Registry
from tagrelay.adapters.signatures import ReleaseContext, SignatureVerdict, verifier_for
from tagrelay.config import App

REPOSITORY = "demo/core-api"
SHA = "1e07581"
FULL_SHA = SHA + "c0ffee" * 5 + "abc"


def keyless_app(registry_url: str, trusted_root: Path, **overrides: Any) -> App:
    """An app like the seed: prod deploys main, staging deploys develop, keyless from its workflow."""
    signature = keyless_signature_config(trusted_root)
    signature["keyless"].update(overrides)
    signature["keyless"] = {k: v for k, v in signature["keyless"].items() if v is not None}
    return App.model_validate(
        {
            "source_repo": "mosaic-stories/mosaic-life",
            "registry": registry_url,
            "images": [REPOSITORY],
            "gitops": {"repo": "mosaic-stories/gitops"},
            "environments": {"prod": {"branch": "main"}, "staging": {"branch": "develop"}},
            "signature": signature,
        }
    )


def verify(
    app: App, registry: Registry, digest: str, *, sha: str | None = SHA, envs: tuple[str, ...] = ("prod",)
) -> SignatureVerdict:
    release = ReleaseContext.for_release(app, sha, envs)
    return verifier_for(app).verify(registry, REPOSITORY, digest, release=release)


def failed_check(verdict: SignatureVerdict) -> tuple[str, str]:
    """(name, detail) of the check that rejected the last candidate examined."""
    assert verdict.examined, verdict
    check = verdict.examined[-1].checks[-1]
    assert check.status == "fail", verdict.examined[-1]
    return check.name, check.detail
