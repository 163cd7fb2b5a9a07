"""The whole local stack in one object: start, seed, point tagrelay at it, stop.

    with LocalStack.start(workdir) as stack:
        config_path = stack.write_config(signature={"key": {"public_key_pem": signer.public_key_pem}})
        ...

Used by the integration tests (one stack per test session) and by ``make demo``. Every server runs
on a free loopback port and is stopped by its pid when the stack stops.

The Argo CD simulator starts with no application: ``register_argocd_apps`` adds those of a GitOps
repository at run time (each test has its own). With the manual clock (the default, for tests) its
time moves only on ``tick``/``settle``, in Argo CD's own orders of magnitude; with the wall clock (the
demo) a rollout takes about two seconds.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
from ruamel.yaml import YAML

from devstack.argocd_sim import ArgoCDSimControl, SimApp, SimConfig, SimTiming, make_token, start_argocd_sim
from devstack.dynamodb_faults import DynamoFaultControl, start_dynamodb_faults
from devstack.ecr_standin import start_ecr_standin
from devstack.github_standin import StandinControl, start_github_standin
from devstack.lambda_api import CLOCK_ENV_VAR, LambdaApiControl, start_lambda_api
from devstack.moto import aws_env, start_moto
from devstack.process import RunningServer
from devstack.registry import start_registry
from tagrelay.adapters.ledger_schema import table_definition

REPO_ROOT = Path(__file__).resolve().parent.parent
EXAMPLE_CONFIG = REPO_ROOT / "examples" / "mosaic-life.yaml"
GITHUB_TOKEN = "local-standin-token"  # only valid against the GitHub stand-in
GITHUB_TOKEN_SECRET = "tagrelay/github-token"
# The read commands' own token (github.read_token_secret); the stand-in accepts both.
GITHUB_READ_TOKEN = "local-standin-read-token"
GITHUB_READ_TOKEN_SECRET = "tagrelay/github-read-token"
LEDGER_TABLE = "tagrelay-ledger"
ARGOCD_TOKEN_SECRET = "tagrelay/argocd-token"
ARGOCD_PROJECT = "mosaic-life"
# Manual clock: simulated seconds cost nothing, so use Argo CD's and Kubernetes' own figures (a 180 s
# poll, a 600 s progress deadline): durations in the ledger then look like production's.
REALISTIC_TIMING = SimTiming(
    poll_interval=180,
    sync_delay=5,
    sync_duration=20,
    reconcile_delay=10,
    rollout_duration=60,
    progress_deadline=600,
    retry_backoff=5,
    retry_backoff_max=180,
    repo_error_grace=180,
)
# Wall clock (the demo): the simulator's defaults, one rollout in about two seconds.
ACCELERATED_TIMING = SimTiming()
# What the functions' environment holds besides AWS's and the configuration.
LAMBDA_ENVIRONMENT = {"POWERTOOLS_TRACE_DISABLED": "true", "POWERTOOLS_METRICS_NAMESPACE": "tagrelay"}
PROMOTER_HANDLER = "tagrelay.handlers.promoter.handler"


@dataclass
class LocalStack:
    workdir: Path
    registry: RunningServer
    moto: RunningServer
    github: RunningServer
    argocd: RunningServer
    lambda_api: RunningServer
    # In front of moto's DynamoDB: faults on request (throttling of one write, a lost answer).
    dynamodb: RunningServer
    ecr: RunningServer
    servers: list[RunningServer] = field(default_factory=list)

    @classmethod
    def start(cls, workdir: Path, *, argocd_manual_clock: bool = True) -> LocalStack:
        workdir.mkdir(parents=True, exist_ok=True)
        started: list[RunningServer] = []
        try:
            registry = start_registry(workdir)
            started.append(registry)
            moto = start_moto(workdir)
            started.append(moto)
            dynamodb = start_dynamodb_faults(workdir, moto.url)
            started.append(dynamodb)
            ecr = start_ecr_standin(registry.url, workdir, registry_data=Path(registry.extra["data_dir"]))
            started.append(ecr)
            github = start_github_standin(workdir, tokens=(GITHUB_TOKEN, GITHUB_READ_TOKEN))
            started.append(github)
            timing = REALISTIC_TIMING if argocd_manual_clock else ACCELERATED_TIMING
            sim_config = SimConfig(token=make_token(), apps=(), timing=timing, manual_clock=argocd_manual_clock)
            argocd = start_argocd_sim(workdir / "argocd", sim_config)
            started.append(argocd)
            # Functions run with what a Lambda of this stack has; each adds its own (register_promoter).
            lambda_api = start_lambda_api(workdir, env={**_aws_env(moto, dynamodb, ecr), **LAMBDA_ENVIRONMENT})
            started.append(lambda_api)
        except BaseException:
            for server in reversed(started):
                server.stop()
            raise
        stack = cls(workdir, registry, moto, github, argocd, lambda_api, dynamodb, ecr, servers=started)
        stack._prepare_aws()
        return stack

    def stop(self) -> None:
        for server in reversed(self.servers):
            server.stop()

    def __enter__(self) -> LocalStack:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- AWS (moto) ---

    @property
    def aws_env(self) -> dict[str, str]:
        """Environment that sends boto3 to moto (Secrets Manager, KMS), DynamoDB through the fault proxy,
        and ECR to its stand-in."""
        return _aws_env(self.moto, self.dynamodb, self.ecr)

    @property
    def dynamodb_faults(self) -> DynamoFaultControl:
        return DynamoFaultControl(self.dynamodb.url)

    @property
    def ecr_registry(self) -> dict[str, str]:
        """The ECR registry (account, region) the stand-in plays: the ``ecr`` of every app on this stack."""
        return {"account": self.ecr.extra["account"], "region": self.ecr.extra["region"]}

    def ecr_calls(self, *, clear: bool = False) -> list[dict[str, Any]]:
        """The ECR API calls the stand-in served (operation and body), oldest first; ``clear`` empties the log."""
        import requests

        response = requests.request("DELETE" if clear else "GET", f"{self.ecr.url}/_standin/calls", timeout=5)
        response.raise_for_status()
        calls: list[dict[str, Any]] = response.json()["calls"]
        return calls

    def ecr_client(self) -> Any:
        """boto3's ECR client on the stand-in (to create repositories and set their tag mutability)."""
        return self.aws_client("ecr", endpoint_url=self.ecr.url)

    def aws_client(self, service: str, *, endpoint_url: str | None = None) -> Any:
        env = self.aws_env
        return boto3.client(
            service,  # type: ignore[call-overload]
            endpoint_url=endpoint_url or self.moto.url,
            region_name=env["AWS_DEFAULT_REGION"],
            aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
            aws_session_token=env["AWS_SESSION_TOKEN"],
        )

    def _prepare_aws(self) -> None:
        self.aws_client("dynamodb").create_table(**table_definition(LEDGER_TABLE))
        secrets = self.aws_client("secretsmanager")
        secrets.create_secret(Name=GITHUB_TOKEN_SECRET, SecretString=GITHUB_TOKEN)
        secrets.create_secret(Name=GITHUB_READ_TOKEN_SECRET, SecretString=GITHUB_READ_TOKEN)
        secrets.create_secret(Name=ARGOCD_TOKEN_SECRET, SecretString=self.argocd.extra["token"])

    def reset_ledger(self) -> None:
        """Empty the ledger table (between tests), by deleting and re-creating it; disarm DynamoDB faults."""
        self.dynamodb_faults.clear()
        client = self.aws_client("dynamodb")
        client.delete_table(TableName=LEDGER_TABLE)
        client.create_table(**table_definition(LEDGER_TABLE))

    # --- GitHub stand-in ---

    @property
    def github_control(self) -> StandinControl:
        return StandinControl(self.github.url)

    # --- Argo CD simulator ---

    @property
    def argocd_control(self) -> ArgoCDSimControl:
        return ArgoCDSimControl(self.argocd.url)

    def register_argocd_apps(
        self,
        gitops_repo: str,
        images: Sequence[str],
        apps: Mapping[str, str],
        *,
        registry_host: str | None = None,
        multi_source: bool = True,
    ) -> list[SimApp]:
        """Argo CD applications (``{env: app name}``) that deploy ``environments/<env>/values.yaml`` of a
        GitOps repository on the GitHub stand-in; each starts synced to the branch head and Healthy.

        ``images`` are repository names; Argo CD lists them with the registry host, as the pods run them.
        Multi-source by default, like the seed's applications.
        """
        host = registry_host or self.registry.url.split("://", 1)[-1]
        repo_path = str(self.github_control.repo_path(gitops_repo))
        specs = [
            SimApp(
                name=name,
                repo_path=repo_path,
                images=tuple(f"{host}/{image}" for image in images),
                values_file=f"environments/{env}/values.yaml",
                project=ARGOCD_PROJECT,
                namespace=name,
                labels={"env": env},
                multi_source=multi_source,
                repo_url=f"https://github.com/{gitops_repo}.git",
            )
            for env, name in apps.items()
        ]
        control = self.argocd_control
        try:
            for spec in specs:
                control.add_app(spec)
        finally:
            control.close()
        return specs

    def argocd_catch_up(self) -> datetime:
        """Move the manual clock up to the wall clock if it is behind (it never goes back); returns its time."""
        control = self.argocd_control
        try:
            behind = (datetime.now(UTC) - control.now()).total_seconds()
            return control.tick(behind) if behind > 0 else control.now()
        finally:
            control.close()

    # --- configuration ---

    def config_data(self, **app_overrides: Any) -> dict[str, Any]:
        """The seed's example configuration, with every endpoint pointed at this stack."""
        yaml = YAML(typ="safe", pure=True)
        data: dict[str, Any] = yaml.load(EXAMPLE_CONFIG.read_text())
        for app in data["apps"].values():
            app["registry"] = self.registry.url
            app["ecr"] = self.ecr_registry  # the local registry's host is not ECR's: name the registry
            app.update(app_overrides)
        data["github"] = {
            "base_url": self.github.url,
            "auth": {"token_secret": GITHUB_TOKEN_SECRET},
            "read_token_secret": GITHUB_READ_TOKEN_SECRET,
        }
        data["ledger"] = {"table": LEDGER_TABLE}
        data["argocd"] = {"url": self.argocd.url, "token_secret": ARGOCD_TOKEN_SECRET, "refresh_after_commit": True}
        return data

    def write_config(
        self, path: Path | None = None, *, extra: Mapping[str, Any] | None = None, **app_overrides: Any
    ) -> Path:
        data = self.config_data(**app_overrides)
        if extra:
            data.update(extra)
        target = path or self.workdir / "tagrelay.yaml"
        yaml = YAML()
        yaml.default_flow_style = False
        with target.open("w") as stream:
            yaml.dump(data, stream)
        return target

    @contextmanager
    def environment(self, config_path: Path) -> Iterator[None]:
        """Set the process environment a Lambda of this stack would have (restored afterwards)."""
        wanted = {**self.aws_env, "TAGRELAY_CONFIG": str(config_path), **LAMBDA_ENVIRONMENT}
        saved = {key: os.environ.get(key) for key in wanted}
        os.environ.update(wanted)
        try:
            yield
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value

    # --- Lambda API (operator commands invoke the promoter through it) ---

    @property
    def lambda_control(self) -> LambdaApiControl:
        return LambdaApiControl(self.lambda_api.url)

    def register_promoter(self, config_path: Path, *, name: str | None = None, argocd_clock: bool = True) -> str:
        """Deploy the promoter function to the local Lambda API with this configuration; returns its name,
        by default the deployed stack's (``<deploy.stack_name>-promoter``, what `tagrelay` invokes).

        With ``argocd_clock`` it reads the Argo CD simulator's clock, like the in-process promoter of the
        tests (one timeline for the promoter, the simulator and the tracker). Re-registering a name
        replaces its process, as a new deployment replaces a function's execution environments.
        """
        if name is None:
            from tagrelay.config import load_config

            name = f"{load_config(config_path).deploy.stack_name}-promoter"
        environment = {"TAGRELAY_CONFIG": str(config_path)}
        if argocd_clock:
            environment[CLOCK_ENV_VAR] = self.argocd.url
        self.lambda_control.register(name, PROMOTER_HANDLER, environment)
        return name


def _aws_env(moto: RunningServer, dynamodb: RunningServer, ecr: RunningServer) -> dict[str, str]:
    # botocore's service-specific endpoint variables win over AWS_ENDPOINT_URL.
    return {**aws_env(moto), "AWS_ENDPOINT_URL_DYNAMODB": dynamodb.url, "AWS_ENDPOINT_URL_ECR": ecr.url}
