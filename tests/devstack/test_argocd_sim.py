"""The Argo CD simulator over HTTP: wire shape, the rollout timeline, marks, auth, errors, controls.

One simulator per module on a manual clock, so every state is reached by ``tick`` and nothing depends
on how fast this machine is. Each test commits its own tags to a real bare git repository.
"""

from __future__ import annotations

import json
import re
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
from devstack.argocd_sim.control import SimulatorError
from devstack.process import RunningServer
from tests.argocd_shapes import FIXTURES, argo_shaped, case_of, fixture

REGISTRY = "033691785857.dkr.ecr.us-east-1.amazonaws.com"
IMAGES = (f"{REGISTRY}/mosaic-life/web", f"{REGISTRY}/mosaic-life/core-api")
PROD, STAGING = "mosaic-life-prod", "mosaic-life-staging"
TIMING = SimTiming(
    poll_interval=10,
    sync_delay=2,
    sync_duration=5,
    reconcile_delay=3,
    rollout_duration=10,
    progress_deadline=30,
    retry_backoff=5,
    retry_backoff_max=20,
    repo_error_grace=10,
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

    def document(self, name: str = PROD, **params: str) -> dict[str, Any]:
        response = self.get(name, **params)
        assert response.status_code == 200, response.text
        document: dict[str, Any] = response.json()
        return document

    def status(self, name: str = PROD, **params: str) -> dict[str, Any]:
        status: dict[str, Any] = self.document(name, **params)["status"]
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
    sim.control.set_repo_server(up=True)
    for name in (PROD, STAGING):
        sim.control.set_permission(name, allowed=True)
        sim.control.set_chart_error(name, None)
        sim.control.set_auto_sync(name, enabled=True)
        if not sim.control.app(name)["present"]:
            sim.control.restore_app(name)
    sim.control.settle()
    sim.control.clear_requests()


def assert_like_argo_cd(document: dict[str, Any], fixture_name: str, *facets: str) -> None:
    """Shaped like Argo CD's CRD, and the same situation as the document captured from Argo CD's sources."""
    assert argo_shaped(document) == []
    assert case_of(document, *facets) == case_of(fixture(fixture_name), *facets)


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


def test_a_tag_marked_sync_failed_is_retried_like_argo_cd_then_fails(sim: Sim) -> None:
    before = sim.status()
    sim.control.mark("fa11ed1", "sync_failed")
    sha = sim.repo.set_tag("prod", "fa11ed1")
    sim.status(refresh="normal")
    sim.control.tick(TIMING.sync_delay + TIMING.sync_duration)

    # The first apply failed: the phase goes back to Running with finishedAt set (appcontroller.go).
    waiting = sim.status()
    operation = waiting["operationState"]
    assert (operation["phase"], operation["retryCount"]) == ("Running", 1)
    assert re.fullmatch(
        r"one or more objects failed to apply, reason: .+\. Retrying attempt #1 at \d{1,2}:\d{2}[AP]M\.",
        operation["message"],
    )
    assert "finishedAt" in operation and operation["syncResult"]["revisions"][1] == sha
    assert_like_argo_cd(sim.document(), "retry-waiting-for-backoff.json")

    sim.control.tick(TIMING.retry_backoff)  # the backoff of retry 1 is 5 s
    attempt = sim.status()
    operation = attempt["operationState"]
    assert operation["message"] == "Retrying operation. Attempt #1"
    assert "finishedAt" not in operation and "syncResult" not in operation
    assert operation["operation"]["sync"]["revisions"][1] == sha  # the requested revision stays
    assert_like_argo_cd(sim.document(), "retry-attempt-running.json")

    sim.control.settle()
    status = sim.status()
    operation = status["operationState"]
    assert (operation["phase"], operation["retryCount"]) == ("Failed", 5)
    assert operation["message"].endswith(" (retried 5 times).")
    assert operation["syncResult"]["revisions"][1] == sha
    failed = [r for r in operation["syncResult"]["resources"] if r["status"] == "SyncFailed"]
    assert [r["name"] for r in failed] == ["web"]
    assert status["sync"]["status"] == "OutOfSync"
    [condition] = status["conditions"]
    assert condition["type"] == "SyncError"
    assert condition["message"].startswith(f"Failed last sync attempt to [{sim.chart_revision} {sha}]: ")
    assert status["history"] == before["history"]  # history records successful syncs only
    assert status["health"]["status"] == "Healthy"  # the old pods still serve
    assert_like_argo_cd(sim.document(), "retries-exhausted.json")
    # Backoffs of 5, 10, 20, 20 and 20 s between six attempts of 5 s each.
    assert at(operation["finishedAt"]) - at(operation["startedAt"]) == timedelta(seconds=6 * 5 + 75)

    sim.control.tick(5 * TIMING.poll_interval)
    assert sim.status()["operationState"]["phase"] == "Failed"  # auto-sync never retries a failed revision


def test_an_apply_that_fails_once_succeeds_on_the_first_retry(sim: Sim) -> None:
    sim.control.mark("f1a4e01", "sync_fails_once")
    sha = sim.repo.set_tag("prod", "f1a4e01")
    sim.status(refresh="normal")

    sim.control.settle()

    status = sim.status()
    operation = status["operationState"]
    assert (operation["phase"], operation["retryCount"]) == ("Succeeded", 1)
    assert status["history"][-1]["revisions"][1] == sha
    assert status["health"]["status"] == "Healthy" and status["summary"]["images"] == images("f1a4e01")


def test_a_tag_marked_comparison_error_never_gets_an_operation(sim: Sim) -> None:
    before = sim.status()
    sim.control.mark("c0ffee1", "comparison_error")
    sha = sim.repo.set_tag("prod", "c0ffee1")

    status = sim.status(refresh="normal")

    assert status["sync"]["status"] == "Unknown"
    # Since Argo CD v3.2 a failed comparison reports the target revisions, not commits.
    assert status["sync"]["revisions"] == ["main", "main"] and "revision" not in status["sync"]
    comparison = [c for c in status["conditions"] if c["type"] == "ComparisonError"]
    assert len(comparison) == 1 and "Manifest generation error" in comparison[0]["message"]
    assert comparison[0]["message"].startswith(
        "Failed to load target state: failed to generate manifest for source 2 of 2:"
    )
    assert status["operationState"] == before["operationState"]
    assert_like_argo_cd(sim.document(), "comparison-error-manifest.json", "sync", "conditions")

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


def test_without_auto_sync_a_new_commit_is_only_compared(sim: Sim) -> None:
    sim.control.set_auto_sync(PROD, enabled=False)
    before = sim.status()
    sha = sim.repo.set_tag("prod", "0a5c001")

    sim.control.tick(3 * TIMING.poll_interval)

    status = sim.get(PROD).json()
    assert "automated" not in status["spec"]["syncPolicy"]
    assert (status["status"]["sync"]["status"], status["status"]["sync"]["revisions"][1]) == ("OutOfSync", sha)
    assert status["status"]["operationState"] == before["operationState"]  # nobody synced


def test_a_user_sync_runs_an_operation_initiated_by_that_user(sim: Sim) -> None:
    sim.control.set_auto_sync(PROD, enabled=False)
    sha = sim.repo.set_tag("prod", "5ca1ab1")
    sim.control.tick(TIMING.poll_interval)

    sim.control.sync(PROD, username="alice@example.com")
    sim.control.settle()

    status = sim.status()
    operation = status["operationState"]
    assert operation["operation"]["initiatedBy"] == {"username": "alice@example.com"}
    assert "retry" not in operation["operation"]
    assert (operation["phase"], operation["syncResult"]["revisions"][1]) == ("Succeeded", sha)
    assert status["history"][-1]["initiatedBy"] == {"username": "alice@example.com"}
    assert status["sync"]["status"] == "Synced" and status["health"]["status"] == "Healthy"


def test_a_rollback_syncs_an_older_revision_while_sync_compares_the_branch_head(sim: Sim) -> None:
    old = sim.repo.set_tag("prod", "01d0001")
    sim.control.settle()
    old_id = sim.status()["history"][-1]["id"]
    new = sim.repo.set_tag("prod", "2e40002")
    sim.control.settle()
    with pytest.raises(SimulatorError, match="rollback cannot be initiated when auto-sync is enabled"):
        sim.control.rollback(PROD, old_id)
    sim.control.set_auto_sync(PROD, enabled=False)

    sim.control.rollback(PROD, old_id, username="admin")
    running = sim.status()
    assert running["operationState"]["phase"] == "Running"
    with pytest.raises(SimulatorError, match="another operation is already in progress"):
        sim.control.sync(PROD)
    sim.control.settle()

    status = sim.status()
    operation = status["operationState"]
    assert operation["operation"]["initiatedBy"] == {"username": "admin"}
    assert operation["operation"]["sync"]["syncStrategy"] == {"apply": {}}
    assert (operation["phase"], operation["syncResult"]["revisions"][1]) == ("Succeeded", old)
    assert status["history"][-1]["revisions"][1] == old
    assert status["history"][-1]["initiatedBy"] == {"username": "admin"}
    assert (status["sync"]["status"], status["sync"]["revisions"][1]) == ("OutOfSync", new)
    assert status["summary"]["images"] == images("01d0001")
    assert_like_argo_cd(sim.document(), "rollback-succeeded.json")


def test_a_repo_server_outage_is_hidden_for_the_grace_period_then_a_comparison_error(sim: Sim) -> None:
    quiet = sim.status()
    sim.control.set_repo_server(up=False)
    sim.repo.set_tag("prod", "0u7a6e1")

    sim.control.tick(TIMING.poll_interval)
    assert sim.status() == quiet  # first failure: the controller writes nothing during the grace period
    sim.control.tick(TIMING.poll_interval)

    failing = sim.status()
    [condition] = failing["conditions"]
    assert condition["type"] == "ComparisonError"
    assert "rpc error: code = Unavailable desc = connection error" in condition["message"]
    assert failing["sync"]["status"] == "Unknown" and failing["sync"]["revisions"] == ["main", "main"]
    assert at(failing["reconciledAt"]) > at(quiet["reconciledAt"])
    assert_like_argo_cd(sim.document(), "comparison-error-repo-server.json", "sync", "conditions")

    sim.control.tick(TIMING.poll_interval)  # the same message: the condition keeps its time (SetConditions)
    assert sim.status()["conditions"] == [condition]

    sim.control.set_repo_server(up=True)
    sim.control.settle()
    recovered = sim.status()
    assert "conditions" not in recovered and recovered["summary"]["images"] == images("0u7a6e1")


def test_a_broken_chart_fails_every_comparison_and_keeps_its_condition_time(sim: Sim) -> None:
    sim.control.set_chart_error(STAGING, 'template: app/templates/deployment.yaml:12: function "nope" not defined')
    first = sim.status(STAGING, refresh="normal")["conditions"]
    sim.repo.set_tag("staging", "c4a47e1")
    sim.control.tick(TIMING.poll_interval)

    status = sim.status(STAGING)
    assert status["conditions"] == first  # same message: same lastTransitionTime
    assert "failed to generate manifest for source 1 of 1" in first[0]["message"]
    assert status["sync"] == {**status["sync"], "status": "Unknown", "revision": "main"}

    sim.control.set_chart_error(STAGING, None)
    sim.control.settle()
    assert sim.status(STAGING)["summary"]["images"] == images("c4a47e1")


def test_a_token_without_permission_gets_403_with_or_without_project(sim: Sim) -> None:
    sim.control.set_permission(PROD, allowed=False)

    for params in ({}, {"project": "mosaic-life"}):
        response = sim.get(PROD, **params)
        assert response.status_code == 403
        assert response.json() == json.loads((FIXTURES / "error-permission-denied.json").read_text())
    assert [item["metadata"]["name"] for item in sim.list().json()["items"]] == [STAGING]

    sim.control.set_permission(PROD, allowed=True)
    assert sim.get(PROD, project="mosaic-life").status_code == 200


def test_every_state_the_simulator_reports_is_shaped_like_argo_cds_crd(sim: Sim) -> None:
    sim.control.mark("dead0a1", "degraded")
    documents = [sim.get(PROD).json(), *sim.list().json()["items"]]
    sim.repo.set_tag("prod", "dead0a1")
    sim.status(refresh="normal")
    for step in (TIMING.sync_delay, TIMING.sync_duration, TIMING.reconcile_delay, TIMING.progress_deadline):
        sim.control.tick(step)
        documents.append(sim.get(PROD).json())

    assert [problem for document in documents for problem in argo_shaped(document)] == []
    assert documents[-1]["status"]["health"]["status"] == "Degraded"


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
