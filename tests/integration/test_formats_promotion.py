"""GitOps formats through the promoter handler: per-image Helm keys and kustomize, digests pinned in the same commit.

The pure edits are tested on their corpus (tests/domain/test_formats.py); here, one real-shaped push
of a signed two-image release per format, against the local stack, checks that the promoter writes
exactly those bytes in one commit, and reads them back (a second delivery is a no-op).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from devstack.lambda_context import lambda_context
from devstack.scenario import SeedScenario

pytestmark = pytest.mark.stack


def invoke(event: dict[str, Any]) -> dict[str, Any]:
    from tagrelay.handlers.promoter import handler

    result: dict[str, Any] = handler(event, lambda_context("promoter"))
    return result


def test_kustomize_entries_get_tag_and_digest_in_one_commit(
    scenario: SeedScenario, promoter_env: Callable[..., Any]
) -> None:
    web, api = scenario.images
    registry = scenario.stack.registry.url.split("://", 1)[1]
    path = "environments/prod/kustomization.yaml"
    before = (
        "# prod overlay\r\n"
        "resources:\r\n- ../../base\r\n"
        "images:\r\n"
        f"- name: {registry}/{web}\r\n  newTag: old # CI\r\n"
        f"- name: {api}\r\n  newName: {registry}/{api}\r\n"
    )
    scenario.gitops.commit_files({path: before}, "chore: kustomize overlay", branch="main")
    promoter_env(
        gitops={
            "format": "kustomize",
            "values_file": "environments/{env}/kustomization.yaml",
            "pin_digests": True,
            "images": {api: api},
        }
    )
    sha = scenario.commit("main")
    release = scenario.release(sha, branch="main")
    commits_before = len(scenario.gitops.shas("main"))

    decisions = [invoke(event) for event in release.events]

    assert [d["decision"] for d in decisions].count("promote") == 1
    tag, digests = sha[:7], release.digests
    assert scenario.gitops.read_file(path).decode() == (
        "# prod overlay\r\n"
        "resources:\r\n- ../../base\r\n"
        "images:\r\n"
        f'- name: {registry}/{web}\r\n  newTag: "{tag}" # CI\r\n  digest: "{digests[web]}"\r\n'
        f'- name: {api}\r\n  newName: {registry}/{api}\r\n  newTag: "{tag}"\r\n  digest: "{digests[api]}"\r\n'
    )
    # Tag and digests in one commit.
    assert len(scenario.gitops.shas("main")) == commits_before + 1
    assert invoke(release.events[0])["decision"] == "noop"


def test_per_image_helm_keys_and_digest_keys(scenario: SeedScenario, promoter_env: Callable[..., Any]) -> None:
    web, api = scenario.images
    path = "environments/prod/values.yaml"
    before = 'web:\n  image:\n    tag: "prod-0000000"  # web\n    digest: ""\napi:\n  image:\n    tag: prod-0000000\n'
    scenario.gitops.commit_files({path: before}, "chore: per-image values", branch="main")
    promoter_env(
        gitops={"keys": {web: "web.image.tag", api: "api.image.tag"}, "digest_keys": {web: "web.image.digest"}}
    )
    sha = scenario.commit("main")
    release = scenario.release(sha, branch="main")

    decisions = [invoke(event) for event in release.events]

    promoted = [d for d in decisions if d["decision"] == "promote"]
    assert len(promoted) == 1
    tag = sha[:7]
    assert scenario.values_file("prod").decode() == (
        f'web:\n  image:\n    tag: "{tag}"  # web\n    digest: "{release.digests[web]}"\n'
        f'api:\n  image:\n    tag: "{tag}"\n'
    )
