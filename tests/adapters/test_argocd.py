"""The Argo CD client against the simulator over HTTP, and every outcome driven through both.

One simulator per module (manual clock, plain HTTP plus a TLS listener with a private CA). Each test
commits its own tag to a real bare GitOps repository and tracks it the way the tracker will: one
``get_application`` per run, ``evaluate_environment`` on the in-flight deployments, transitions only.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from devstack.argocd_sim import (
    ArgoCDSimControl,
    GitOpsRepo,
    SimApp,
    SimConfig,
    SimTiming,
    TlsFiles,
    make_tls_files,
    make_token,
    start_argocd_sim,
)
from devstack.process import RunningServer, free_port
from tagrelay.adapters.argocd import ArgoCDClient
from tagrelay.config import ArgoCDConfig
from tagrelay.domain.outcome import (
    DEFAULT_TIMEOUT,
    AccessDenied,
    ApplicationObservation,
    AppMissing,
    ArgoCDUnreachable,
    Blocked,
    Decision,
    DeploymentState,
    NoTransition,
    Observation,
    TrackedDeployment,
    Transition,
    evaluate,
    evaluate_environment,
    expected_images,
)
from tagrelay.errors import MisconfiguredError, TransientError

REGISTRY = "033691785857.dkr.ecr.us-east-1.amazonaws.com"
REPOSITORIES = ("mosaic-life/web", "mosaic-life/core-api")
PROD, STAGING, PROJECT = "mosaic-life-prod", "mosaic-life-staging", "mosaic-life"
TIMING = SimTiming(
    poll_interval=10, sync_delay=2, sync_duration=5, reconcile_delay=3, rollout_duration=10, progress_deadline=30
)


@dataclass
class Sim:
    server: RunningServer
    control: ArgoCDSimControl
    repo: GitOpsRepo
    token: str
    tls: TlsFiles

    def client(self, *, retries: int = 3, refresh_timeout: float = 2.0) -> ArgoCDClient:
        return ArgoCDClient(
            self.server.url, self.token, retries=retries, backoff_factor=0, refresh_timeout=refresh_timeout
        )

    def api_requests(self) -> list[str]:
        return [f"{entry['status']} {entry['path']}?{entry['query']}".rstrip("?") for entry in self.control.requests()]


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sim]:
    root = tmp_path_factory.mktemp("argocd-client")
    repo = GitOpsRepo.create(root / "git", {"prod": "0000001", "staging": "0000002"})
    tls = make_tls_files(root / "tls")
    images = tuple(f"{REGISTRY}/{repository}" for repository in REPOSITORIES)
    apps = (
        SimApp(PROD, str(repo.bare), images, project=PROJECT, labels={"env": "prod"}, multi_source=True),
        SimApp(
            STAGING,
            str(repo.bare),
            images,
            values_file="environments/staging/values.yaml",
            project=PROJECT,
            labels={"env": "staging"},
        ),
    )
    config = SimConfig(
        token=make_token(),
        apps=apps,
        timing=TIMING,
        manual_clock=True,
        tls_cert_file=str(tls.cert_file),
        tls_key_file=str(tls.key_file),
    )
    server = start_argocd_sim(root / "logs", config)
    control = ArgoCDSimControl(server.url)
    try:
        yield Sim(server, control, repo, config.token, tls)
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


def commit(
    sim: Sim, env: str, tag: str, *, deployment_id: str | None = None, timeout: timedelta = DEFAULT_TIMEOUT
) -> TrackedDeployment:
    """Commit the tag as the promoter would, and the ledger's view of that deployment."""
    sha = sim.repo.set_tag(env, tag)
    return TrackedDeployment(
        deployment_id=deployment_id or f"{env}-{tag}",
        gitops_commit=sha,
        expected_images=expected_images(REGISTRY, REPOSITORIES, tag),
        committed_at=sim.control.now(),
        timeout=timeout,
    )


@dataclass
class Run:
    at: datetime
    observation: Observation
    decisions: list[Decision]


@dataclass
class Tracking:
    runs: list[Run] = field(default_factory=list)
    transitions: dict[str, list[Transition]] = field(default_factory=dict)

    def states(self, deployment_id: str) -> list[DeploymentState]:
        return [t.state for t in self.transitions.get(deployment_id, [])]

    def final(self, deployment_id: str) -> Transition:
        return self.transitions[deployment_id][-1]


def track(
    sim: Sim,
    client: ArgoCDClient,
    in_flight: Sequence[TrackedDeployment],
    *,
    app: str = PROD,
    step: float = 1,
    max_seconds: float = 300,
) -> Tracking:
    """What the tracker does each run, on a simulated one-second schedule: one GET, then the rules."""
    tracking = Tracking()
    live = list(in_flight)
    elapsed = 0.0
    while live and elapsed <= max_seconds:
        now = sim.control.now()
        observation = client.observe_application(app)
        decisions = evaluate_environment(live, observation, now)
        tracking.runs.append(Run(now, observation, decisions))
        for index, decision in enumerate(decisions):
            if isinstance(decision, Transition):
                tracking.transitions.setdefault(decision.deployment_id, []).append(decision)
                live[index] = replace(
                    live[index], state=decision.state, sync_started_at=decision.timestamps.sync_started_at
                )
        live = [d for d in live if not d.state.is_terminal]
        sim.control.tick(step)
        elapsed += step
    return tracking


# ---------------------------------------------------------------------------------------------- outcomes


def test_a_healthy_rollout_succeeds_only_once_health_is_fresh_and_our_images_run(sim: Sim) -> None:
    deployment = commit(sim, "prod", "abc1234")

    tracking = track(sim, sim.client(), [deployment])

    assert tracking.states(deployment.deployment_id) == [DeploymentState.SYNCING, DeploymentState.SUCCEEDED]
    # The traps were really there: our revision compared while Healthy (old pods), and synced but stale.
    stale = [
        run.observation
        for run in tracking.runs
        if isinstance(run.observation, ApplicationObservation)
        and deployment.gitops_commit in run.observation.sync_revisions
        and run.observation.health_status == "Healthy"
        and not set(deployment.expected_images) <= set(run.observation.images)
    ]
    assert stale, "the simulator never showed the old pods' health next to our revision"
    final = tracking.final(deployment.deployment_id)
    document = sim.control.app(PROD)["application"]["status"]
    entry = document["history"][-1]
    assert entry["revisions"][1] == deployment.gitops_commit
    times = final.timestamps
    assert times.deploy_started_at == datetime.fromisoformat(entry["deployStartedAt"])
    assert times.deployed_at == datetime.fromisoformat(entry["deployedAt"])
    assert times.healthy_at == datetime.fromisoformat(document["health"]["lastTransitionTime"])
    assert final.durations.to_healthy is not None and final.durations.sync is not None
    assert final.durations.sync == timedelta(seconds=TIMING.sync_duration)


def test_a_degraded_rollout_is_degraded(sim: Sim) -> None:
    sim.control.mark("dead002", "degraded")
    deployment = commit(sim, "prod", "dead002")

    tracking = track(sim, sim.client(), [deployment])

    final = tracking.final(deployment.deployment_id)
    assert final.state is DeploymentState.DEGRADED
    assert "exceeded its progress deadline" in final.reason
    assert final.timestamps.deployed_at is not None


def test_a_failed_sync_is_sync_failed(sim: Sim) -> None:
    sim.control.mark("fa11ed2", "sync_failed")
    deployment = commit(sim, "prod", "fa11ed2")

    tracking = track(sim, sim.client(), [deployment])

    final = tracking.final(deployment.deployment_id)
    assert final.state is DeploymentState.SYNC_FAILED
    assert "one or more objects failed to apply" in final.reason
    assert "Deployment/web: Deployment.apps" in final.reason
    assert final.timestamps.sync_started_at is not None and final.timestamps.deployed_at is None


def test_a_manifest_that_cannot_be_generated_is_sync_failed(sim: Sim) -> None:
    sim.control.mark("c0ffee2", "comparison_error")
    deployment = commit(sim, "staging", "c0ffee2")

    tracking = track(sim, sim.client(), [deployment], app=STAGING)

    final = tracking.final(deployment.deployment_id)
    assert tracking.states(deployment.deployment_id) == [DeploymentState.SYNC_FAILED]
    assert "ComparisonError" in final.reason and "Manifest generation error" in final.reason


def test_a_rollout_slower_than_the_timeout_times_out(sim: Sim) -> None:
    sim.control.mark("51ow001", "degraded")  # stays Progressing for progress_deadline (30 s)
    deployment = commit(sim, "prod", "51ow001", timeout=timedelta(seconds=25))

    tracking = track(sim, sim.client(), [deployment])

    final = tracking.final(deployment.deployment_id)
    assert final.state is DeploymentState.TIMED_OUT
    assert final.reason.startswith("no outcome 25 s after the commit; still waiting for health (now Progressing)")


def test_a_newer_commit_supersedes_the_older_one(sim: Sim) -> None:
    older = commit(sim, "prod", "01de001")
    sim.control.tick(1)
    newer = commit(sim, "prod", "0e0e002")

    tracking = track(sim, sim.client(), [older, newer])

    assert tracking.states(older.deployment_id) == [DeploymentState.SUPERSEDED]
    assert tracking.final(older.deployment_id).superseded_by == newer.deployment_id
    assert tracking.states(newer.deployment_id)[-1] is DeploymentState.SUCCEEDED


def test_one_request_per_application_per_run_however_many_deployments(sim: Sim) -> None:
    client = sim.client()
    in_flight = [commit(sim, "prod", f"beef00{index}", deployment_id=f"d{index}") for index in range(3)]

    decisions = evaluate_environment(in_flight, client.observe_application(PROD), sim.control.now())

    assert len(decisions) == 3
    assert client.request_count == 1
    assert sim.api_requests() == [f"200 /api/v1/applications/{PROD}"]


# ---------------------------------------------------------------------------------------------- missing, auth, outages


def test_a_removed_application_is_404_with_its_project_then_env_unavailable(sim: Sim) -> None:
    deployment = commit(sim, "staging", "5a5a5a5")
    sim.control.remove_app(STAGING)
    client = sim.client()

    observation = client.get_application(STAGING, project=PROJECT)

    assert observation == AppMissing(STAGING, 404, f'applications.argoproj.io "{STAGING}" not found')
    decision = evaluate(deployment, observation, sim.control.now())
    assert isinstance(decision, Transition) and decision.state is DeploymentState.ENV_UNAVAILABLE


@pytest.mark.parametrize("project", [PROJECT, None])
def test_a_403_is_access_denied_and_blocks_tracking(sim: Sim, project: str | None) -> None:
    deployment = commit(sim, "staging", "5a5a5a6")
    if project is None:
        sim.control.remove_app(STAGING)  # without a project Argo CD answers 403 for a missing app too
    else:
        sim.control.set_permission(STAGING, allowed=False)
    try:
        observation = sim.client().get_application(STAGING, project=project)
    finally:
        sim.control.set_permission(STAGING, allowed=True)

    assert observation == AccessDenied(STAGING, project, "permission denied")
    decision = evaluate(deployment, observation, sim.control.now())
    assert isinstance(decision, NoTransition) and decision.blocked is Blocked.PERMISSION_DENIED


def test_a_missing_application_with_its_project_is_404(sim: Sim) -> None:
    observation = sim.client().get_application("mosaic-life-preview-pr-7", project=PROJECT)

    assert isinstance(observation, AppMissing)
    assert observation.status_code == 404
    assert "not found" in observation.message
    assert sim.api_requests() == ["404 /api/v1/applications/mosaic-life-preview-pr-7?project=mosaic-life"]


def test_a_bad_token_is_a_misconfiguration_and_is_never_logged(sim: Sim, caplog: pytest.LogCaptureFixture) -> None:
    wrong = make_token("revoked")
    caplog.set_level(logging.DEBUG)
    client = ArgoCDClient(sim.server.url, wrong, backoff_factor=0)

    with pytest.raises(MisconfiguredError, match="invalid or expired") as raised:
        client.get_application(PROD)
    with pytest.raises(MisconfiguredError):
        client.observe_application(PROD)  # not "unreachable": every deployment would wait forever
    assert client.refresh(PROD) is False

    assert wrong not in str(raised.value)
    assert wrong not in caplog.text and sim.token not in caplog.text
    assert "invalid session" in str(raised.value)


def test_a_stopped_argocd_is_transient_and_never_an_outcome(sim: Sim, tmp_path: Path) -> None:
    lone = SimConfig(token=sim.token, apps=())
    stopped = start_argocd_sim(tmp_path, lone)
    stopped.stop()
    client = ArgoCDClient(stopped.url, sim.token, retries=1, backoff_factor=0)
    deployment = commit(sim, "prod", "0ff0ff1")

    with pytest.raises(TransientError, match="unreachable"):
        client.get_application(PROD)
    observation = client.observe_application(PROD)
    assert client.refresh(PROD) is False

    assert isinstance(observation, ArgoCDUnreachable)
    decision = evaluate(deployment, observation, deployment.deadline + timedelta(hours=1))
    assert isinstance(decision, NoTransition) and decision.state is DeploymentState.COMMITTED
    assert client.request_count == 3


def test_5xx_answers_are_retried(sim: Sim) -> None:
    sim.control.inject_fault(503, count=2)
    client = sim.client(retries=3)

    observation = client.get_application(PROD)

    assert isinstance(observation, ApplicationObservation)
    assert client.request_count == 1
    assert [entry.split()[0] for entry in sim.api_requests()] == ["503", "503", "200"]


def test_5xx_beyond_the_retries_is_transient(sim: Sim) -> None:
    sim.control.inject_fault(502, count=10)
    client = sim.client(retries=2)

    with pytest.raises(TransientError, match="HTTP 502 after retries"):
        client.get_application(PROD)

    assert len(sim.api_requests()) == 3  # the first try and two retries


def test_a_connection_refused_is_retried_then_transient(sim: Sim) -> None:
    client = ArgoCDClient(f"http://127.0.0.1:{free_port()}", sim.token, retries=2, backoff_factor=0)

    with pytest.raises(TransientError):
        client.get_application(PROD)


# ---------------------------------------------------------------------------------------------- list and refresh


def test_list_applications_is_one_request_by_selector_or_names(sim: Sim) -> None:
    client = sim.client()

    assert [app.name for app in client.list_applications(selector="env=prod")] == [PROD]
    assert [app.name for app in client.list_applications(names=[STAGING, PROD, "gone"])] == [PROD, STAGING]
    assert [app.name for app in client.list_applications(names=[STAGING])] == [STAGING]

    assert client.request_count == 3
    assert sim.api_requests() == [
        "200 /api/v1/applications?selector=env%3Dprod",
        "200 /api/v1/applications",
        f"200 /api/v1/applications?name={STAGING}",
    ]


def test_refresh_nudges_argocd_to_notice_the_commit_now(sim: Sim) -> None:
    deployment = commit(sim, "staging", "9e9e9e9")
    client = sim.client()

    assert client.refresh(STAGING, project=PROJECT) is True
    observation = client.get_application(STAGING)

    assert isinstance(observation, ApplicationObservation)
    assert observation.sync_revisions == (deployment.gitops_commit,)  # no tick: the refresh did it
    assert sim.api_requests()[0] == f"200 /api/v1/applications/{STAGING}?refresh=normal&project={PROJECT}"


def test_refresh_never_fails_a_promotion(sim: Sim) -> None:
    client = sim.client(refresh_timeout=0.2)
    assert client.refresh("no-such-app") is False  # 403: logged, not raised

    sim.control.inject_fault(None, delay_seconds=2)  # Argo CD waits for the reconcile before answering
    assert client.refresh(STAGING) is True  # asked; not waiting is fine

    sim.control.inject_fault(500)
    assert client.refresh(STAGING) is False
    assert [entry.split()[0] for entry in sim.api_requests()] == ["403", "200", "500"]  # never retried


# ---------------------------------------------------------------------------------------------- TLS


def test_a_private_ca_bundle_verifies_the_server(sim: Sim) -> None:
    client = ArgoCDClient(sim.server.extra["tls_url"], sim.token, ca_bundle=str(sim.tls.ca_file))

    assert client.verify == str(sim.tls.ca_file)
    assert isinstance(client.get_application(PROD), ApplicationObservation)


def test_without_the_ca_bundle_tls_verification_fails_as_a_misconfiguration(sim: Sim) -> None:
    client = ArgoCDClient(sim.server.extra["tls_url"], sim.token, retries=0)

    assert client.verify is True
    with pytest.raises(MisconfiguredError, match="ca_bundle"):
        client.get_application(PROD)


def test_insecure_skips_verification_only_when_asked(sim: Sim) -> None:
    client = ArgoCDClient(sim.server.extra["tls_url"], sim.token, insecure=True)

    assert client.verify is False
    with pytest.warns(Warning, match="Unverified HTTPS request"):
        assert isinstance(client.get_application(PROD), ApplicationObservation)
    with pytest.raises(ValueError, match="not both"):
        ArgoCDClient(sim.server.url, sim.token, ca_bundle="ca.pem", insecure=True)


def test_the_client_is_built_from_the_configuration(sim: Sim) -> None:
    config = ArgoCDConfig(url=sim.server.extra["tls_url"] + "/", ca_bundle=str(sim.tls.ca_file), timeout_seconds=7)

    client = ArgoCDClient.from_config(config, sim.token)

    assert client.url == sim.server.extra["tls_url"]
    assert client.verify == str(sim.tls.ca_file)
    assert client.timeout[1] == 7
    assert isinstance(client.get_application(PROD, project=PROJECT), ApplicationObservation)
