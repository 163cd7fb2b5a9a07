"""The Argo CD simulator over HTTP: wire shape, the rollout timeline, marks, auth, errors, controls.

One simulator per module on a manual clock, so every state is reached by ``tick`` and nothing depends
on how fast this machine is. Each test commits its own tags to a real bare git repository.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests

from devstack.argocd_sim import (
    ArgoCDSimControl,
    GitOpsRepo,
    SimApp,
    SimConfig,
    SimTiming,
    make_token,
    start_argocd_sim,
)
from devstack.process import RunningServer

REGISTRY = "033691785857.dkr.ecr.us-east-1.amazonaws.com"
IMAGES = (f"{REGISTRY}/mosaic-life/web", f"{REGISTRY}/mosaic-life/core-api")
PROD, STAGING = "mosaic-life-prod", "mosaic-life-staging"
TIMING = SimTiming(
    poll_interval=10, sync_delay=2, sync_duration=5, reconcile_delay=3, rollout_duration=10, progress_deadline=30
)


@dataclass
class Sim:
    server: RunningServer
    control: ArgoCDSimControl
    repo: GitOpsRepo
    token: str
    chart_revision: str

    def get(self, name: str, token: str | None = None, **params: str) -> requests.Response:
        headers = {"Authorization": f"Bearer {token or self.token}"}
        return requests.get(f"{self.server.url}/api/v1/applications/{name}", params=params, headers=headers, timeout=10)

    def status(self, name: str = PROD, **params: str) -> dict[str, Any]:
        response = self.get(name, **params)
        assert response.status_code == 200, response.text
        status: dict[str, Any] = response.json()["status"]
        return status

    def list(self, **params: str) -> requests.Response:
        headers = {"Authorization": f"Bearer {self.token}"}
        return requests.get(f"{self.server.url}/api/v1/applications", params=params, headers=headers, timeout=10)


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sim]:
    root = tmp_path_factory.mktemp("argocd-sim")
    repo = GitOpsRepo.create(root / "git", {"prod": "0000001", "staging": "0000002"})
    prod = SimApp(
        PROD,
        str(repo.bare),
        IMAGES,
        values_file="environments/prod/values.yaml",
        project="mosaic-life",
        namespace="mosaic-prod",
        labels={"env": "prod", "team": "mosaic"},
        multi_source=True,
    )
    staging = SimApp(
        STAGING,
        str(repo.bare),
        IMAGES,
        values_file="environments/staging/values.yaml",
        project="mosaic-life",
        namespace="mosaic-staging",
        labels={"env": "staging", "team": "mosaic"},
    )
    config = SimConfig(
        token=make_token(),
        apps=(prod, staging),
        timing=TIMING,
        manual_clock=True,
        start_time="2026-03-01T12:00:00+00:00",
    )
    server = start_argocd_sim(root / "logs", config)
    control = ArgoCDSimControl(server.url)
    try:
        yield Sim(server, control, repo, config.token, prod.chart_revision)
    finally:
        control.close()
        server.stop()


@pytest.fixture(autouse=True)
def clean(sim: Sim) -> None:
    sim.control.clear_marks()
    sim.control.clear_faults()
    for name in (PROD, STAGING):
        if not sim.control.app(name)["present"]:
            sim.control.restore_app(name)
    sim.control.settle()
    sim.control.clear_requests()


def at(value: str) -> datetime:
    return datetime.fromisoformat(value)


def images(tag: str) -> list[str]:
    return [f"{image}:{tag}" for image in IMAGES]


def nulls(value: Any, path: str = "") -> list[str]:
    """Every path whose value is null: Go's omitempty leaves keys out instead."""
    if value is None:
        return [path]
    if isinstance(value, dict):
        return [p for key, item in value.items() for p in nulls(item, f"{path}.{key}")]
    if isinstance(value, list):
        return [p for index, item in enumerate(value) for p in nulls(item, f"{path}[{index}]")]
    return []


# ---------------------------------------------------------------------------------------------- wire shape


def test_multi_source_application_reads_the_tag_from_the_gitops_repository(sim: Sim) -> None:
    sha = sim.repo.set_tag("prod", "1a2b3c4")
    sim.control.settle()

    document = sim.get(PROD).json()
    status = document["status"]

    assert nulls(document) == []
    assert document["spec"]["sources"][1] == {
        "repoURL": "https://github.com/mosaic-stories/gitops.git",
        "targetRevision": "main",
        "ref": "values",
    }
    assert status["sync"] == {**status["sync"], "status": "Synced", "revisions": [sim.chart_revision, sha]}
    assert "revision" not in status["sync"]
    assert status["summary"] == {"images": images("1a2b3c4")}
    assert status["health"]["status"] == "Healthy"
    assert status["resourceHealthSource"] == "appTree"
    assert all("health" in resource for resource in status["resources"])  # Get fills it from the cache
    entry = status["history"][-1]
    assert entry["revisions"] == [sim.chart_revision, sha]
    assert entry["source"] == {"repoURL": ""}  # omitempty never omits a struct
    assert at(entry["deployStartedAt"]) < at(entry["deployedAt"])
    assert isinstance(entry["id"], int)
    operation = status["operationState"]
    assert operation["syncResult"]["revisions"] == [sim.chart_revision, sha]
    assert operation["syncResult"]["revision"] == ""
    assert at(status["reconciledAt"]) > at(operation["finishedAt"])


def test_single_source_application_reports_one_revision(sim: Sim) -> None:
    sha = sim.repo.set_tag("staging", "5c6d7e8")
    sim.control.settle()

    status = sim.status(STAGING)

    assert status["sync"]["revision"] == sha and "revisions" not in status["sync"]
    assert status["operationState"]["syncResult"]["revision"] == sha
    assert status["history"][-1]["revision"] == sha
    assert status["summary"]["images"] == images("5c6d7e8")
    assert status["sourceType"] == "Helm"


def test_a_new_commit_is_noticed_at_the_next_poll(sim: Sim) -> None:
    sha = sim.repo.set_tag("prod", "2b3c4d5")
    assert sha not in sim.status()["sync"]["revisions"]

    sim.control.tick(TIMING.poll_interval)

    assert sim.status()["sync"]["revisions"] == [sim.chart_revision, sha]


# ---------------------------------------------------------------------------------------------- timeline


def test_rollout_walks_through_the_states_a_real_controller_reports(sim: Sim) -> None:
    before = sim.status()
    old_images = before["summary"]["images"]
    old_operation_revisions = before["operationState"]["syncResult"]["revisions"]
    sha = sim.repo.set_tag("prod", "abc1234")

    # A refresh makes the controller notice the commit now, which anchors the timeline below.
    detected = sim.status(refresh="normal")
    t0 = at(detected["reconciledAt"])
    assert detected["sync"]["status"] == "OutOfSync"
    assert detected["sync"]["revisions"][1] == sha
    assert detected["health"]["status"] == "Healthy"  # still the old pods
    assert detected["operationState"]["syncResult"]["revisions"] == old_operation_revisions
    assert detected["summary"]["images"] == old_images

    sim.control.tick(TIMING.sync_delay)
    running = sim.status()
    operation = running["operationState"]
    assert operation["phase"] == "Running"
    assert "finishedAt" not in operation
    assert at(operation["startedAt"]) == t0 + timedelta(seconds=2)
    assert operation["operation"]["sync"]["revisions"][1] == sha
    assert running["health"]["status"] == "Progressing"
    assert running["sync"]["status"] == "OutOfSync"

    sim.control.tick(TIMING.sync_duration)
    synced = sim.status()
    operation = synced["operationState"]
    assert (operation["phase"], operation["message"]) == ("Succeeded", "successfully synced (all tasks run)")
    assert at(operation["finishedAt"]) == t0 + timedelta(seconds=7)
    assert synced["sync"]["status"] == "Synced"
    assert at(synced["reconciledAt"]) < at(operation["finishedAt"])  # health is not fresh yet
    assert synced["summary"]["images"] == old_images
    assert synced["history"][-1]["revisions"][1] == sha
    assert at(synced["history"][-1]["deployStartedAt"]) == t0 + timedelta(seconds=2)
    assert at(synced["history"][-1]["deployedAt"]) == t0 + timedelta(seconds=7)

    sim.control.tick(TIMING.reconcile_delay)
    reconciled = sim.status()
    assert at(reconciled["reconciledAt"]) > at(reconciled["operationState"]["finishedAt"])
    assert set(reconciled["summary"]["images"]) == set(old_images) | set(images("abc1234"))
    assert reconciled["health"]["status"] == "Progressing"

    sim.control.tick(TIMING.rollout_duration)
    healthy = sim.status()
    assert healthy["health"] == {
        "status": "Healthy",
        "lastTransitionTime": (t0 + timedelta(seconds=20)).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    assert healthy["summary"]["images"] == images("abc1234")
    assert sim.control.app(PROD)["phase"] == "idle"


def test_a_newer_commit_waits_for_the_running_operation(sim: Sim) -> None:
    first = sim.repo.set_tag("prod", "3c4d5e6")
    sim.status(refresh="normal")
    sim.control.tick(TIMING.sync_delay + 1)
    second = sim.repo.set_tag("prod", "4d5e6f7")

    during = sim.status(refresh="normal")
    assert during["operationState"]["operation"]["sync"]["revisions"][1] == first

    sim.control.settle()
    final = sim.status()
    assert [entry["revisions"][1] for entry in final["history"][-2:]] == [first, second]
    assert final["summary"]["images"] == images("4d5e6f7")


def test_history_keeps_the_last_ten_entries(sim: Sim) -> None:
    for index in range(11):
        sim.repo.set_tag("staging", f"{index:07x}")
        sim.control.settle()

    ids = [entry["id"] for entry in sim.status(STAGING)["history"]]

    assert len(ids) == 10 and ids == sorted(ids)


# ---------------------------------------------------------------------------------------------- marks


def test_a_tag_marked_degraded_goes_degraded_after_the_progress_deadline(sim: Sim) -> None:
    sim.control.mark("dead001", "degraded")
    sim.repo.set_tag("prod", "dead001")
    sim.status(refresh="normal")
    sim.control.tick(TIMING.sync_delay + TIMING.sync_duration + TIMING.reconcile_delay + TIMING.rollout_duration)

    assert sim.status()["health"]["status"] == "Progressing"  # a bad image looks like a slow one at first

    sim.control.settle()
    status = sim.status()
    assert status["health"]["status"] == "Degraded"
    assert "exceeded its progress deadline" in status["health"]["message"]
    assert status["operationState"]["phase"] == "Succeeded"
    assert set(images("dead001")) <= set(status["summary"]["images"])
    assert len(status["summary"]["images"]) == 4  # the old pods keep running


def test_marking_the_deployed_tag_degrades_the_running_application(sim: Sim) -> None:
    sim.repo.set_tag("staging", "bad0002")
    sim.control.settle()
    sim.control.mark("bad0002", "degraded")

    sim.control.tick(TIMING.poll_interval)

    assert sim.status(STAGING)["health"]["status"] == "Degraded"


def test_a_tag_marked_sync_failed_fails_the_operation_and_is_not_retried(sim: Sim) -> None:
    before = sim.status()
    sim.control.mark("fa11ed1", "sync_failed")
    sha = sim.repo.set_tag("prod", "fa11ed1")
    sim.status(refresh="normal")
    sim.control.tick(TIMING.sync_delay + TIMING.sync_duration)

    status = sim.status()
    operation = status["operationState"]
    assert operation["phase"] == "Failed"
    assert operation["message"].startswith("one or more objects failed to apply, reason: ")
    assert operation["syncResult"]["revisions"][1] == sha
    failed = [r for r in operation["syncResult"]["resources"] if r["status"] == "SyncFailed"]
    assert [r["name"] for r in failed] == ["web"]
    assert status["sync"]["status"] == "OutOfSync"
    assert [c["type"] for c in status["conditions"]] == ["SyncError"]
    assert status["history"] == before["history"]  # history records successful syncs only
    assert status["health"]["status"] == "Healthy"  # the old pods still serve

    sim.control.tick(5 * TIMING.poll_interval)
    assert sim.status()["operationState"]["phase"] == "Failed"  # auto-sync never retries a failed revision


def test_a_tag_marked_comparison_error_never_gets_an_operation(sim: Sim) -> None:
    before = sim.status()
    sim.control.mark("c0ffee1", "comparison_error")
    sha = sim.repo.set_tag("prod", "c0ffee1")

    status = sim.status(refresh="normal")

    assert status["sync"]["status"] == "Unknown"
    assert "revisions" not in status["sync"] and "revision" not in status["sync"]
    comparison = [c for c in status["conditions"] if c["type"] == "ComparisonError"]
    assert len(comparison) == 1 and "Manifest generation error" in comparison[0]["message"]
    assert status["operationState"] == before["operationState"]

    sim.control.unmark("c0ffee1")
    sim.control.tick(TIMING.poll_interval)
    status = sim.status()
    assert status["sync"]["revisions"][1] == sha
    assert "conditions" not in status


def test_a_values_file_without_the_tag_is_a_comparison_error(sim: Sim) -> None:
    sim.repo.write_file("environments/staging/values.yaml", "global:\n  environment: staging\n", "break staging")

    status = sim.status(STAGING, refresh="normal")

    assert status["sync"]["status"] == "Unknown"
    assert "key global.imageTag not found" in status["conditions"][0]["message"]
    sim.repo.write_file(
        "environments/staging/values.yaml", 'global:\n  imageTag: "fixed01"\n', "fix staging"
    )  # leave it usable for the other tests


# ---------------------------------------------------------------------------------------------- list


def test_list_filters_by_name_selector_and_project(sim: Sim) -> None:
    def names(**params: str) -> list[str]:
        response = sim.list(**params)
        assert response.status_code == 200
        body = response.json()
        assert set(body) == {"metadata", "items"} and "resourceVersion" in body["metadata"]
        return [item["metadata"]["name"] for item in body["items"]]

    assert names() == [PROD, STAGING]
    assert names(name=STAGING) == [STAGING]
    assert names(selector="env=prod") == [PROD]
    assert names(selector="env!=prod") == [STAGING]
    assert names(selector="team,env==staging") == [STAGING]
    assert names(selector="owner=nobody") == []
    assert names(projects="other") == []
    assert sim.list(selector="env in (a").status_code == 400


def test_list_leaves_resource_health_out(sim: Sim) -> None:
    items = sim.list().json()["items"]

    assert all("health" not in resource for item in items for resource in item["status"]["resources"])
    assert all("operationState" in item["status"] and "history" in item["status"] for item in items)


# ---------------------------------------------------------------------------------------------- auth and errors


@pytest.mark.parametrize(
    ("authorization", "message"),
    [
        (None, "no session information"),
        ("Bearer not-a-jwt", "no session information"),
        ("Basic dXNlcjpwYXNz", "no session information"),
        (f"Bearer {make_token('someone-else')}", "invalid session: token signature is invalid"),
    ],
    ids=["no-header", "not-a-jwt", "basic", "wrong-token"],
)
def test_a_bad_token_is_refused_with_401(sim: Sim, authorization: str | None, message: str) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    for path in (f"/api/v1/applications/{PROD}", "/api/v1/applications", "/api/v1/applications/nope"):
        response = requests.get(sim.server.url + path, headers=headers, timeout=10)

        assert response.status_code == 401
        assert response.json() == {"error": message, "code": 16, "message": message}


def test_an_unknown_application_is_403_without_project_and_404_with_it(sim: Sim) -> None:
    forbidden = sim.get("nope")
    assert forbidden.status_code == 403
    assert forbidden.json() == {"error": "permission denied", "code": 7, "message": "permission denied"}

    missing = sim.get("nope", project="mosaic-life")
    assert missing.status_code == 404
    assert missing.json()["code"] == 5
    assert missing.json()["message"] == 'applications.argoproj.io "nope" not found'

    assert sim.get(PROD, project="another-project").status_code == 404
    assert sim.get(PROD, project="mosaic-life").status_code == 200


def test_a_removed_application_is_missing_until_restored(sim: Sim) -> None:
    sim.control.remove_app(STAGING)

    assert sim.get(STAGING).status_code == 403
    assert sim.get(STAGING, project="mosaic-life").status_code == 404
    assert [item["metadata"]["name"] for item in sim.list().json()["items"]] == [PROD]

    sim.control.restore_app(STAGING)
    assert sim.status(STAGING)["sync"]["revision"] == sim.repo.head()


def test_refresh_works_by_get_and_by_post(sim: Sim) -> None:
    sha = sim.repo.set_tag("staging", "f0f0f01")
    headers = {"Authorization": f"Bearer {sim.token}"}

    response = requests.post(
        f"{sim.server.url}/api/v1/applications/{STAGING}", params={"refresh": "normal"}, headers=headers, timeout=10
    )

    assert response.status_code == 200
    assert response.json()["status"]["sync"]["revision"] == sha


# ---------------------------------------------------------------------------------------------- controls


def test_the_request_log_counts_api_requests_only(sim: Sim) -> None:
    sim.get(PROD)
    sim.list(selector="env=prod")
    sim.get(PROD, token=make_token("intruder"))
    sim.control.tick(1)

    log = sim.control.requests()

    assert [(entry["method"], entry["path"], entry["status"]) for entry in log] == [
        ("GET", f"/api/v1/applications/{PROD}", 200),
        ("GET", "/api/v1/applications", 200),
        ("GET", f"/api/v1/applications/{PROD}", 401),
    ]
    assert log[1]["query"] == "selector=env%3Dprod"
    sim.control.clear_requests()
    assert sim.control.requests() == []


def test_injected_faults_answer_the_next_requests_then_stop(sim: Sim) -> None:
    sim.control.inject_fault(503, count=2)

    statuses = [sim.get(PROD).status_code for _ in range(3)]

    assert statuses == [503, 503, 200]
    assert [entry["status"] for entry in sim.control.requests()] == [503, 503, 200]


def test_time_moves_only_when_told_in_manual_mode(sim: Sim) -> None:
    first = sim.control.now()
    sim.get(PROD)
    assert sim.control.now() == first

    assert sim.control.tick(42) == first + timedelta(seconds=42)


def test_wall_clock_mode_deploys_on_its_own(tmp_path: Path) -> None:
    """The demo's mode: nobody ticks; a commit becomes Healthy after about a second of wall time."""
    repo = GitOpsRepo.create(tmp_path / "git", {"prod": "0000001"})
    fast = SimTiming(poll_interval=0.2, sync_delay=0.05, sync_duration=0.1, reconcile_delay=0.1, rollout_duration=0.2)
    config = SimConfig(token=make_token(), apps=(SimApp("web-prod", str(repo.bare), IMAGES),), timing=fast)
    server = start_argocd_sim(tmp_path / "logs", config)
    try:
        sha = repo.set_tag("prod", "abcdef1")
        headers = {"Authorization": f"Bearer {config.token}"}
        deadline = time.monotonic() + 60  # a bound for a stuck simulator, not a performance check
        status: dict[str, Any] = {}
        while time.monotonic() < deadline:
            status = requests.get(f"{server.url}/api/v1/applications/web-prod", headers=headers, timeout=10).json()[
                "status"
            ]
            # Not just "our revision and Healthy": right after the poll, that is still the old pods' health.
            if status["summary"].get("images") == images("abcdef1") and status["health"]["status"] == "Healthy":
                break
            time.sleep(0.1)
        assert status["summary"]["images"] == images("abcdef1")
        assert status["history"][-1]["revision"] == sha
        assert status["sync"] == {**status["sync"], "status": "Synced", "revision": sha}
    finally:
        server.stop()
