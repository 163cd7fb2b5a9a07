"""Archived images are never a deployment target, and an archived deployed image raises an alert.

ECR archives images (a lifecycle rule, or UpdateImageStorageClass) and an archived image cannot be
pulled until it is restored. Archiving happens in the ECR stand-in (devstack/ecr_standin.py: the
image's imageStatus), which the promoter's ECR adapter asks; ECR's `ECR Image Action` event for it
goes to the promoter handler; the sweep runs through its handler.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from devstack.lambda_context import lambda_context
from devstack.scenario import SeedScenario
from tests.operator.support import Configure, deployed, gitops_tag, pushed, records, run_json, state
from tests.reconcile.test_sweep import sweep
from tests.tracking.support import TrackerSetup, deliver

pytestmark = pytest.mark.stack


def promoter_handler(event: dict[str, Any]) -> dict[str, Any]:
    from tagrelay.handlers.promoter import handler

    result: dict[str, Any] = handler(event, lambda_context("promoter"))
    return result


def alerts(env: str) -> list[Any]:
    return [r for r in records(env) if r.outcome == "alert"]


def test_a_deploy_or_rollback_of_an_archived_release_is_refused_with_the_restore_command(
    scenario: SeedScenario, operator_env: Configure, capsys: pytest.CaptureFixture[str]
) -> None:
    setup = operator_env()
    old = deployed(scenario, setup, "prod")
    deployed(scenario, setup, "prod")
    web = scenario.images[0]
    scenario.set_storage_class(web, old.digests[web], "ARCHIVE")
    release = pushed(scenario, "prod")
    scenario.set_storage_class(web, release.digests[web], "ARCHIVE")
    running = gitops_tag(scenario, "prod")

    code, answer, err = run_json(capsys, "deploy", release.sha, "--env", "prod")

    assert code == 1 and answer["reason"] == "image_archived", answer
    restore = (
        f"aws ecr update-image-storage-class --repository-name {web} --image-id imageDigest={release.digests[web]} "
        "--target-storage-class STANDARD"
    )
    assert restore in answer["message"] and "ARCHIVED in ECR" in answer["message"]
    assert "what to do: restore the archived image(s)" in err
    code, answer, _ = run_json(capsys, "rollback", "--env", "prod", "--to", old.sha)
    assert code == 1 and answer["reason"] == "image_archived"
    assert gitops_tag(scenario, "prod") == running
    pin = state("prod")
    assert pin is not None and not pin.pinned  # the rollback's pin was put back

    scenario.set_storage_class(web, release.digests[web], "STANDARD")
    code, answer, _ = run_json(capsys, "deploy", release.sha, "--env", "prod")
    assert code == 0 and answer["outcome"] == "committed", answer
    checks = {c["name"]: c["status"] for c in answer["checks"]}
    assert checks["prod: archive"] == "pass"


def test_a_push_whose_image_was_archived_meanwhile_is_refused(
    scenario: SeedScenario, tracker_env: Callable[..., TrackerSetup]
) -> None:
    setup = tracker_env()
    release = pushed(scenario, "prod")
    api = scenario.images[1]
    scenario.set_storage_class(api, release.digests[api], "ARCHIVE")

    decisions = deliver(release, setup)

    assert "promote" not in decisions and "reject" in decisions
    [rejected, *_] = [r for r in records("prod") if r.reason == "image_archived"]
    assert rejected.outcome == "rejected" and f"{api}@{release.digests[api]} is ARCHIVED" in rejected.message


def test_archiving_a_deployed_image_raises_one_alert_and_the_sweep_catches_a_lost_archive_event(
    scenario: SeedScenario, tracker_env: Callable[..., TrackerSetup], capsys: pytest.CaptureFixture[str]
) -> None:
    from infra import pipeline_metrics

    setup = tracker_env()
    running = deployed(scenario, setup, "prod")
    idle = pushed(scenario, "staging")  # pushed, never deployed
    web, api = scenario.images

    capsys.readouterr()
    event = scenario.set_storage_class(web, running.digests[web], "ARCHIVE")
    result = promoter_handler(event)
    emitted = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]

    assert (result["decision"], result["reason"]) == ("alert", "image_archived"), result
    [alert] = alerts("prod")
    assert (alert.tag, alert.digests) == (running.tag, {web: running.digests[web]})
    assert "--target-storage-class STANDARD" in alert.message and "cannot pull it" in alert.message
    reasons = [
        (d[pipeline_metrics.DECISION_DIMENSION], d[pipeline_metrics.REASON_DIMENSION])
        for d in emitted
        if pipeline_metrics.DECISION_REASONS_METRIC in d
    ]
    assert reasons == [("alert", "image_archived")]
    # The same event again (EventBridge delivers at least once): alerted, not recorded twice.
    assert promoter_handler(event)["decision"] == "alert"
    assert len(alerts("prod")) == 1
    # Not deployed anywhere, or restored: nothing to alert about.
    other = scenario.set_storage_class(api, idle.digests[api], "ARCHIVE")
    assert promoter_handler(other)["reason"] == "image_archived_not_deployed"
    assert promoter_handler(scenario.set_storage_class(web, running.digests[web], "STANDARD"))["reason"] == (
        "image_restored"
    )

    # api's image is archived and its event lost: the sweep finds it, every run, and records it once.
    scenario.set_storage_class(api, running.digests[api], "ARCHIVE")
    for _ in range(2):
        found = [(a["env"], a["reason"]) for a in sweep()["alerts"]]
        assert found == [("prod", "image_archived")]
    # (One instant on the simulator's manual clock: the two records' order is not asserted.)
    assert sorted(next(iter(a.digests.items())) for a in alerts("prod")) == sorted(
        [(api, running.digests[api]), (web, running.digests[web])]
    )


def test_the_sweep_finds_a_deployed_release_tag_that_moved(
    scenario: SeedScenario, tracker_env: Callable[..., TrackerSetup]
) -> None:
    from devstack.images import push_image

    setup = tracker_env()
    running = deployed(scenario, setup, "prod")
    web = scenario.images[0]
    moved = push_image(scenario.stack.registry.url, web, [running.tag], content=b"someone else's build")

    for _ in range(2):
        found = [(a["env"], a["reason"]) for a in sweep()["alerts"]]
        assert found == [("prod", "tag_moved")]
    [rejected] = [r for r in records("prod") if r.reason == "tag_moved"]
    assert rejected.outcome == "rejected" and rejected.digests == {web: moved}
    assert f"{web} was deployed as {running.digests[web]} and now points at {moved}" in rejected.message
