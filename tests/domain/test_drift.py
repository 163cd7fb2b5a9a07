"""`tagrelay status`'s judgement (domain/drift.py), pure: what agrees, and what each disagreement says.
The same judgement on what the local stack's GitHub, ledger, registry and Argo CD say is in
tests/tracking/test_history_status_cli.py."""

from __future__ import annotations

from typing import Any

from tagrelay.domain.drift import EnvironmentStatus, assess, running_tags
from tests.fakes.world import FakeWorld

NEW, OLD = "prod-1111111", "prod-0000000"
WEB, API = "mosaic-life/web", "mosaic-life/core-api"


def status(**fields: Any) -> EnvironmentStatus:
    agreeing: dict[str, Any] = {
        "app": "mosaic-life",
        "env": "prod",
        "values_file": "org/gitops:environments/prod/values.yaml@main",
        "gitops_tag": NEW,
        "argocd_app": "mosaic-life-prod",
        "sync_status": "Synced",
        "synced_revision": "a" * 40,
        "synced_tag": NEW,
        "health": "Healthy",
        "running": {WEB: [NEW], API: [NEW]},
        "ledger_tag": NEW,
    }
    return assess(EnvironmentStatus(**{**agreeing, **fields}))


def test_gitops_argo_cd_and_the_pods_agree() -> None:
    agreed = status()
    assert agreed.agree and agreed.problems == []


def test_each_disagreement_says_what_it_means() -> None:
    cases: dict[str, tuple[dict[str, Any], list[str]]] = {
        "not synced yet": (
            {"synced_tag": OLD, "running": {WEB: [OLD], API: [OLD]}},
            [f"Argo CD last synced {OLD}", f"{WEB} runs {OLD}, not {NEW}: Argo CD has not synced {NEW} yet"],
        ),
        "wrong image": ({"running": {WEB: [OLD], API: [NEW]}}, ["the wrong image is deployed"]),
        "not running": ({"running": {WEB: [], API: [NEW]}}, [f"{WEB} is not running"]),
        "old pods": ({"running": {WEB: [OLD, NEW], API: [NEW]}}, [f"{WEB} runs {OLD} beside {NEW}"]),
        "out of sync": ({"sync_status": "OutOfSync"}, ["sync status is OutOfSync"]),
        "moved tag": ({"moved": {WEB: ["sha256:" + "1" * 64, "sha256:" + "2" * 64]}}, ["(tag_moved)"]),
        "unreadable": ({"unavailable": "Argo CD unreachable: timeout"}, ["Argo CD unreachable: timeout"]),
    }
    for name, (fields, said) in cases.items():
        judged = status(**fields)
        assert not judged.agree, name
        for words in said:
            assert any(words in problem for problem in judged.problems), (name, judged.problems)


def test_degraded_health_and_a_hand_edit_are_reported_beside_tags_that_agree() -> None:
    """ "Agree" is about the tags: the cluster runs what GitOps holds. Health and who wrote GitOps are
    reported beside it."""
    degraded = status(health="Degraded", health_message="1/2 pods ready")
    assert degraded.agree and degraded.problems == ["health is Degraded: 1/2 pods ready"]
    edited = status(ledger_tag=OLD)
    assert edited.agree and edited.problems == [
        f"tagrelay's last deployment was {OLD}: the values file was changed outside tagrelay"
    ]


def test_without_argo_cd_only_the_gitops_side_is_known_and_nothing_agrees() -> None:
    unread: dict[str, Any] = {"sync_status": None, "synced_revision": None, "synced_tag": None, "running": {}}
    for fields, words in (
        ({"argocd_configured": False}, "argocd is not configured"),
        ({"argocd_app": None}, "prod names no argocd_app"),
    ):
        judged = status(**unread, health=None, **fields)
        assert not judged.agree and any(words in p for p in judged.problems)


def test_running_tags_are_read_from_argo_cds_image_list_for_the_apps_images_only() -> None:
    app = FakeWorld.create().config().apps["mosaic-life"]
    host = app.registry_host
    images = [f"{host}/{WEB}:{NEW}@sha256:{'1' * 64}", f"{host}/{WEB}:{OLD}", f"{host}/other:{NEW}", "nginx:1.27"]
    assert running_tags(app, images) == {WEB: sorted([NEW, OLD]), API: []}
