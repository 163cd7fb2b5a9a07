"""What the simulator serves: applications, their GitOps source, the accepted token, and its timing.

The file (JSON, or YAML) looks like::

    {"token": "eyJ…",                       # the only bearer token accepted (JWT-shaped)
     "manual_clock": false,                 # true: time moves only on POST /_sim/tick
     "timing": {"poll_interval": 0.5, …},   # seconds of simulated time (Argo CD polls every 180 s)
     "marks": {"abc1234": "degraded"},      # tag → what happens when it is deployed
     "apps": [{"name": "mosaic-life-prod", "repo_path": "/…/gitops.git", "branch": "main",
               "values_file": "environments/prod/values.yaml", "key": "global.imageTag",
               "images": ["033691785857.dkr.ecr.us-east-1.amazonaws.com/mosaic-life/web", …],
               "project": "mosaic-life", "labels": {"env": "prod"}, "multi_source": true}]}
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

# What happens when a tag is deployed: its pods never become ready (degraded), every apply fails and the
# automatic retries run out (sync_failed), only the first apply fails and a retry succeeds
# (sync_fails_once), or its manifests cannot be generated at all (comparison_error).
Mark = Literal["degraded", "sync_failed", "sync_fails_once", "comparison_error"]
MARKS: tuple[Mark, ...] = ("degraded", "sync_failed", "sync_fails_once", "comparison_error")


@dataclass(frozen=True)
class SimTiming:
    """Durations in simulated seconds. The defaults make one rollout take about 2 s of wall time."""

    poll_interval: float = 0.5  # Argo CD: timeout.reconciliation 120 s + up to 60 s jitter
    sync_delay: float = 0.1  # new revision noticed → auto-sync operation starts
    sync_duration: float = 0.3  # operation Running → Succeeded/Failed
    reconcile_delay: float = 0.2  # operation finished → the reconcile that makes health fresh
    rollout_duration: float = 0.5  # fresh reconcile → Healthy
    progress_deadline: float = 1.0  # fresh reconcile → Degraded, for a tag marked degraded (k8s: 600 s)
    # Automatic sync retries: the n-th retry waits retry_backoff * 2^(n-1), at most retry_backoff_max
    # (Argo CD: spec.syncPolicy.retry.backoff, 5 s, factor 2, 3 min).
    retry_backoff: float = 0.05
    retry_backoff_max: float = 0.5
    # How long the controller hides repo-server errors before reporting a ComparisonError
    # (argocd-application-controller --repo-error-grace-period-seconds, default 180 s).
    repo_error_grace: float = 1.0

    def __post_init__(self) -> None:
        for item in fields(self):
            if getattr(self, item.name) < 0:
                raise ValueError(f"timing.{item.name} must not be negative")
        if self.poll_interval <= 0:
            raise ValueError("timing.poll_interval must be positive")


@dataclass(frozen=True)
class SimApp:
    """One Argo CD Application whose GitOps source is a bare git repository on this machine."""

    name: str
    repo_path: str
    images: tuple[str, ...]  # <registry>/<repository>, without tag
    values_file: str = "environments/prod/values.yaml"
    key: str = "global.imageTag"
    branch: str = "main"
    project: str = "default"
    namespace: str = "default"  # destination namespace
    # spec.syncPolicy.automated: without it Argo CD only compares; someone must sync (or roll back) by hand.
    auto_sync: bool = True
    labels: Mapping[str, str] = field(default_factory=dict)
    # Like the seed: sources[0] = chart repository, sources[1] = the GitOps repository with `ref: values`.
    multi_source: bool = False
    repo_url: str = "https://github.com/mosaic-stories/gitops.git"
    chart_repo_url: str = "https://github.com/mosaic-stories/mosaic-life.git"
    chart_path: str = "infra/helm/app"
    chart_revision: str = ""  # default: a stable fake SHA derived from the name

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("app name must not be empty")
        if not self.images:
            raise ValueError(f"app {self.name}: images must list at least one repository")
        if not self.chart_revision:
            object.__setattr__(self, "chart_revision", hashlib.sha1(self.name.encode()).hexdigest())  # noqa: S324 - a name, not security


@dataclass(frozen=True)
class SimConfig:
    token: str
    apps: tuple[SimApp, ...]
    timing: SimTiming = SimTiming()
    manual_clock: bool = False
    # Manual clock only: the simulated time at start (RFC 3339); default: the wall clock at start.
    start_time: str | None = None
    marks: Mapping[str, Mark] = field(default_factory=dict)
    # When both are set, the API is also served over TLS (a second port) with this certificate.
    tls_cert_file: str | None = None
    tls_key_file: str | None = None

    def __post_init__(self) -> None:
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise ValueError("give both tls_cert_file and tls_key_file, or neither")
        names = [app.name for app in self.apps]
        if len(set(names)) != len(names):
            raise ValueError("app names must be unique")
        for tag, mark in self.marks.items():
            check_mark(tag, mark)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["apps"] = [app_to_json(app) for app in self.apps]
        data["marks"] = dict(self.marks)
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SimConfig:
        try:
            apps = tuple(app_from_json(app) for app in data.get("apps") or [])
            return cls(
                token=str(data["token"]),
                apps=apps,
                timing=SimTiming(**(data.get("timing") or {})),
                manual_clock=bool(data.get("manual_clock", False)),
                start_time=data.get("start_time"),
                marks=dict(data.get("marks") or {}),
                tls_cert_file=data.get("tls_cert_file"),
                tls_key_file=data.get("tls_key_file"),
            )
        except (KeyError, TypeError) as error:
            raise ValueError(f"invalid simulator configuration: {error}") from error

    @classmethod
    def load(cls, path: Path) -> SimConfig:
        from ruamel.yaml import YAML

        return cls.from_json(YAML(typ="safe", pure=True).load(path.read_text()))  # JSON is YAML too

    def dump(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_json(), indent=2))


def app_to_json(app: SimApp) -> dict[str, Any]:
    return {**asdict(app), "images": list(app.images), "labels": dict(app.labels)}


def app_from_json(data: Mapping[str, Any]) -> SimApp:
    """An application as ``app_to_json`` wrote it (the config file's ``apps[]``, or ``POST /_sim/apps``)."""
    try:
        return SimApp(**{**data, "images": tuple(data["images"]), "labels": dict(data.get("labels") or {})})
    except KeyError as error:
        raise ValueError(f"an application needs {error}") from None
    except TypeError as error:
        raise ValueError(f"invalid application: {error}") from None


def check_mark(tag: str, mark: str) -> Mark:
    if not tag:
        raise ValueError("a mark needs a tag")
    if mark not in MARKS:
        raise ValueError(f"mark must be one of {', '.join(MARKS)}, got {mark!r}")
    return mark
