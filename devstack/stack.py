"""The whole local stack in one object: start, seed, point tagrelay at it, stop.

    with LocalStack.start(workdir) as stack:
        config_path = stack.write_config(signature={"key": {"public_key_pem": signer.public_key_pem}})
        ...

Used by the integration tests (one stack per test session) and by ``make demo``. Every server runs
on a free loopback port and is stopped by its pid when the stack stops.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from ruamel.yaml import YAML

from devstack.github_standin import StandinControl, start_github_standin
from devstack.moto import aws_env, start_moto
from devstack.process import RunningServer
from devstack.registry import start_registry
from tagrelay.adapters.ledger_schema import table_definition

REPO_ROOT = Path(__file__).resolve().parent.parent
EXAMPLE_CONFIG = REPO_ROOT / "examples" / "mosaic-life.yaml"
GITHUB_TOKEN = "ghp_localstandintoken0000000000000000"  # only valid against the stand-in
GITHUB_TOKEN_SECRET = "tagrelay/github-token"
LEDGER_TABLE = "tagrelay-ledger"


@dataclass
class LocalStack:
    workdir: Path
    registry: RunningServer
    moto: RunningServer
    github: RunningServer
    servers: list[RunningServer] = field(default_factory=list)

    @classmethod
    def start(cls, workdir: Path) -> LocalStack:
        workdir.mkdir(parents=True, exist_ok=True)
        started: list[RunningServer] = []
        try:
            registry = start_registry(workdir)
            started.append(registry)
            moto = start_moto(workdir)
            started.append(moto)
            github = start_github_standin(workdir, tokens=(GITHUB_TOKEN,))
            started.append(github)
        except BaseException:
            for server in reversed(started):
                server.stop()
            raise
        stack = cls(workdir, registry, moto, github, servers=started)
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
        """Environment that sends boto3 (the ledger, Secrets Manager, KMS) to moto."""
        return aws_env(self.moto)

    def aws_client(self, service: str) -> Any:
        env = self.aws_env
        return boto3.client(
            service,  # type: ignore[call-overload]
            endpoint_url=self.moto.url,
            region_name=env["AWS_DEFAULT_REGION"],
            aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
            aws_session_token=env["AWS_SESSION_TOKEN"],
        )

    def _prepare_aws(self) -> None:
        self.aws_client("dynamodb").create_table(**table_definition(LEDGER_TABLE))
        self.aws_client("secretsmanager").create_secret(Name=GITHUB_TOKEN_SECRET, SecretString=GITHUB_TOKEN)

    def reset_ledger(self) -> None:
        """Empty the ledger table (between tests), by deleting and re-creating it."""
        client = self.aws_client("dynamodb")
        client.delete_table(TableName=LEDGER_TABLE)
        client.create_table(**table_definition(LEDGER_TABLE))

    # --- GitHub stand-in ---

    @property
    def github_control(self) -> StandinControl:
        return StandinControl(self.github.url)

    # --- configuration ---

    def config_data(self, **app_overrides: Any) -> dict[str, Any]:
        """The seed's example configuration, with every endpoint pointed at this stack."""
        yaml = YAML(typ="safe", pure=True)
        data: dict[str, Any] = yaml.load(EXAMPLE_CONFIG.read_text())
        for app in data["apps"].values():
            app["registry"] = self.registry.url
            app.update(app_overrides)
        data["github"] = {"base_url": self.github.url, "auth": {"token_secret": GITHUB_TOKEN_SECRET}}
        data["ledger"] = {"table": LEDGER_TABLE}
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
        wanted = {
            **self.aws_env,
            "TAGRELAY_CONFIG": str(config_path),
            "POWERTOOLS_TRACE_DISABLED": "true",
            "POWERTOOLS_METRICS_NAMESPACE": "tagrelay",
        }
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
