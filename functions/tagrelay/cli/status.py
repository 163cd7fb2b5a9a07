"""`tagrelay status`: per environment, what GitOps says, what Argo CD synced, and what actually runs.

The seed runbook's "Wrong Image Deployed" troubleshooting (git show the values file, `argocd app
get`, `kubectl get pods -o jsonpath=...image`) in one command. Costs per environment: one Argo CD
GET, two or three GitHub reads (the values file at the branch and at the revision Argo CD synced),
two ledger reads, and one registry HEAD per image (does the deployed tag still point at the digest
tagrelay promoted? docs/integrity.md).
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING

from tagrelay.cli.common import (
    CommandError,
    add_config_option,
    add_output_option,
    github_read_credentials,
    ledger_for,
    load_config_or_fail,
    new_parser,
    print_json,
)
from tagrelay.config import App, Config
from tagrelay.domain.outcome import (
    HEALTHY,
    SYNCED,
    AccessDenied,
    ApplicationObservation,
    AppMissing,
    ArgoCDUnreachable,
)

if TYPE_CHECKING:
    from tagrelay.ports import ArgoCD, DeploymentLedger, GitOpsStore

# The argocd CLI's own variable: an operator who can run `argocd app get` can run this without AWS access
# to the tracker's secret.
TOKEN_ENV_VAR = "ARGOCD_AUTH_TOKEN"  # noqa: S105 - the name of a variable, not a secret

DESCRIPTION = f"""\
Show, for each environment: the image tag the GitOps repository holds (the values file on the
GitOps branch), the revision Argo CD synced and the tag at that revision, the sync status and
health, the images actually running (Argo CD's status.summary.images), tagrelay's last recorded
deployment, whether its release tag still points at the images tagrelay verified, and whether they
all agree. Anything that does not agree is listed with what it means.

"Agree" means: Argo CD is Synced to a revision whose tag is the GitOps tag, and every image of the
app runs that tag and no other. Health is reported beside it (a Degraded app can agree on tags).

Reads GitHub with a read-only credential ($GITHUB_TOKEN, `gh auth token`, or the secret
github.read_token_secret; never tagrelay's write credential), the ledger with your AWS credentials,
and Argo CD with the token in ${TOKEN_ENV_VAR} when set, else the secret argocd.token_secret.

Exit status: 0 when the report is complete (whether or not everything agrees); 1 when Argo CD or
GitHub could not be read for an environment (the rest is still printed), or refused the credentials;
2 for an unknown --app/--env or an invalid configuration.
"""

EXAMPLE = """\
  $ tagrelay status --env prod
  ENVIRONMENT       GITOPS   ARGO CD (LAST SYNC)        HEALTH   RUNNING                       AGREE  LEDGER
  mosaic-life/prod  abc1234  abc1234 @1a2b3c4 (Synced)  Healthy  web:abc1234 core-api:abc1234  yes    abc1234 SUCCEEDED
  $ tagrelay status -o json | jq '.[] | select(.agree | not) | .problems'
"""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = new_parser(
        subparsers,
        "status",
        summary="GitOps tag vs the revision Argo CD synced vs the images running, per environment",
        description=DESCRIPTION,
        example=EXAMPLE,
    )
    parser.add_argument("--env", metavar="ENV", help="one environment (default: every configured one)")
    parser.add_argument("--app", metavar="APP", help="one app (default: every configured app)")
    add_config_option(parser)
    add_output_option(parser, choices=("table", "json"))
    parser.set_defaults(handler=run)


# --------------------------------------------------------------------------------------------------
# What one environment looks like, and whether it agrees (pure).


@dataclass
class EnvironmentStatus:
    app: str
    env: str
    values_file: str
    gitops_tag: str | None = None
    argocd_configured: bool = True
    argocd_app: str | None = None
    sync_status: str | None = None
    synced_revision: str | None = None
    synced_tag: str | None = None
    health: str | None = None
    health_message: str | None = None
    # image repository -> tags running (from summary.images), for this app's images only
    running: dict[str, list[str]] = field(default_factory=dict)
    ledger_tag: str | None = None
    ledger_status: str | None = None
    ledger_commit: str | None = None
    # image -> [digest tagrelay promoted the ledger's tag with, digest the tag points at now]
    moved: dict[str, list[str]] = field(default_factory=dict)
    agree: bool = False
    problems: list[str] = field(default_factory=list)
    unavailable: str | None = None  # why part of the picture is missing (Argo CD or GitHub unreadable)


def assess(status: EnvironmentStatus) -> EnvironmentStatus:
    """Fill ``agree`` and ``problems`` from what was read: each problem names what to look at."""
    problems: list[str] = []
    tag = status.gitops_tag
    if status.unavailable:
        problems.append(status.unavailable)
    if not status.argocd_configured:
        problems.append("argocd is not configured: only the GitOps side is known")
    elif status.argocd_app is None:
        problems.append(f"{status.env} names no argocd_app: only the GitOps side is known")
    elif status.sync_status is not None and tag is not None:
        if status.synced_tag != tag:
            shown = status.synced_tag or "an unreadable tag"
            problems.append(
                f"Argo CD last synced {shown} ({(status.synced_revision or '?')[:7]}), but GitOps says {tag}"
                f" (sync status {status.sync_status}): the new commit is not synced yet, or its sync fails"
            )
        elif status.sync_status != SYNCED:
            problems.append(f"sync status is {status.sync_status}: the cluster differs from the GitOps revision")
        for image, tags in status.running.items():
            if not tags:
                problems.append(f"{image} is not running (no pod lists it)")
            elif tag not in tags:
                pending = status.synced_tag != tag and status.synced_tag in tags
                why = f"Argo CD has not synced {tag} yet" if pending else "the wrong image is deployed"
                problems.append(f"{image} runs {', '.join(tags)}, not {tag}: {why}")
            elif len(tags) > 1:
                others = ", ".join(t for t in tags if t != tag)
                problems.append(
                    f"{image} runs {others} beside {tag}: old pods remain (a rollout in progress, or stuck)"
                )
        if status.health not in (None, HEALTHY):
            problems.append(
                f"health is {status.health}" + (f": {status.health_message}" if status.health_message else "")
            )
    for image, (promoted, now) in status.moved.items():
        problems.append(
            f"{image}:{status.ledger_tag} moved: tagrelay promoted it as {promoted}, it now points at {now} "
            "(tag_moved): a pod started now may run an image nobody verified (docs/integrity.md)"
        )
    if status.ledger_tag is not None and tag is not None and status.ledger_tag != tag:
        problems.append(
            f"tagrelay's last deployment was {status.ledger_tag}: the values file was changed outside tagrelay"
        )
    tags_agree = (
        status.argocd_app is not None
        and not status.unavailable
        and tag is not None
        and status.synced_tag == tag
        and status.sync_status == SYNCED
        and bool(status.running)
        and all(tags == [tag] for tags in status.running.values())
    )
    status.agree = tags_agree and not status.moved
    status.problems = problems
    return status


def running_tags(app: App, images: Sequence[str]) -> dict[str, list[str]]:
    """summary.images (``host/repository:tag[@digest]``) → {repository: sorted tags} for the app's images."""
    running: dict[str, list[str]] = {image: [] for image in app.images}
    for listed in images:
        reference = listed.split("@", 1)[0]
        name, _, tag = reference.rpartition(":")
        if not name or "/" in tag:
            continue
        for image in app.images:
            if name == f"{app.registry_host}/{image}":
                running[image] = sorted({*running[image], tag})
    return running


# --------------------------------------------------------------------------------------------------
# Reading it.


def run(args: argparse.Namespace) -> int:
    config = load_config_or_fail(args.config)
    targets = _targets(config, args.app, args.env)
    from tagrelay.errors import MisconfiguredError

    try:
        statuses = _read(config, targets)
    except MisconfiguredError as exc:
        raise CommandError(str(exc)) from None
    if args.output == "json":
        print_json([asdict(status) for status in statuses])
    else:
        print_table(statuses)
    unavailable = [f"{s.app}/{s.env}: {s.unavailable}" for s in statuses if s.unavailable]
    if unavailable:
        raise CommandError("incomplete report; " + "; ".join(unavailable))
    return 0


def _targets(config: Config, app: str | None, env: str | None) -> list[tuple[str, str]]:
    if app is not None and app not in config.apps:
        raise CommandError(f"no app {app!r} in the configuration; configured: {', '.join(config.apps)}", 2)
    apps = [app] if app else list(config.apps)
    targets = [(name, e) for name in apps for e in config.apps[name].environments if env in (None, e)]
    if not targets:
        known = sorted({e for name in apps for e in config.apps[name].environments})
        raise CommandError(f"no environment {env!r}; configured: {', '.join(known)}", exit_code=2)
    return targets


def _read(config: Config, targets: Sequence[tuple[str, str]]) -> list[EnvironmentStatus]:
    from tagrelay import runtime

    github = runtime.github(config, github_read_credentials(config, "status"))
    ledger = ledger_for(config)
    client = _argocd(config) if any(config.apps[a].environments[e].argocd_app for a, e in targets) else None
    try:
        return [assess(_environment(config, app, env, github, ledger, client)) for app, env in targets]
    finally:
        if client is not None:
            client.close()


def _argocd(config: Config) -> ArgoCD | None:
    if config.argocd is None:
        return None
    from tagrelay.runtime import argocd_client

    return argocd_client(config, token=os.environ.get(TOKEN_ENV_VAR) or None)


def _environment(
    config: Config, app_name: str, env: str, github: GitOpsStore, ledger: DeploymentLedger, client: ArgoCD | None
) -> EnvironmentStatus:
    from tagrelay.errors import TransientError

    app = config.apps[app_name]
    environment = app.environments[env]
    path = app.gitops.values_path(env)
    status = EnvironmentStatus(app=app_name, env=env, values_file=f"{app.gitops.repo}:{path}@{app.gitops.branch}")
    status.argocd_configured = config.argocd is not None
    status.argocd_app = environment.argocd_app
    try:
        status.gitops_tag = _tag_at(github, app, path, app.gitops.branch)
        promoted = _ledger(status, ledger)
        status.moved = _moved(config, app, status.ledger_tag, promoted)
        if client is not None and environment.argocd_app:
            observation = client.observe_application(environment.argocd_app, environment.argocd_project)
            _argocd_side(status, app, path, observation, github)
    except TransientError as exc:
        status.unavailable = str(exc)
    return status


def _argocd_side(
    status: EnvironmentStatus,
    app: App,
    path: str,
    observation: ApplicationObservation | AppMissing | AccessDenied | ArgoCDUnreachable,
    github: GitOpsStore,
) -> None:
    if isinstance(observation, ArgoCDUnreachable):
        status.unavailable = f"Argo CD unreachable: {observation.reason}"
        return
    if isinstance(observation, AccessDenied):
        status.unavailable = (
            f"Argo CD refuses application {observation.name} (HTTP 403 {observation.message}): the token lacks"
            " `applications, get` on it" + ("" if observation.project else ", or it does not exist")
        )
        return
    if isinstance(observation, AppMissing):
        status.unavailable = f"Argo CD has no application {observation.name} (HTTP {observation.status_code})"
        return
    status.sync_status = observation.sync_status
    status.health, status.health_message = observation.health_status, observation.health_message
    status.running = running_tags(app, observation.images)
    # What Argo CD last synced is its newest history entry; sync.revision(s) is only what it compared
    # (the new commit already, while OutOfSync). Multi-source apps list one revision per source: the
    # GitOps one is where our values file exists.
    newest = max(observation.history, key=lambda entry: entry.id or 0, default=None)
    revisions = newest.revisions if newest is not None else observation.sync_revisions
    for revision in revisions:
        tag = _tag_at(github, app, path, revision)
        if tag is not None:
            status.synced_revision, status.synced_tag = revision, tag
            return
    status.synced_revision = next(iter(revisions), None)


def _tag_at(github: GitOpsStore, app: App, path: str, ref: str) -> str | None:
    from tagrelay.domain.values_patch import ValuesFileError
    from tagrelay.errors import FileNotFound

    try:
        content = github.read_file(app.gitops.repo, path, ref).content.decode("utf-8", errors="replace")
    except FileNotFound:
        return None
    try:
        return app.gitops_format.read(content).tag
    except ValuesFileError:
        return None


def _ledger(status: EnvironmentStatus, ledger: DeploymentLedger) -> dict[str, str]:
    """Fill in tagrelay's current deployment; returns the digests it was committed with."""
    state = ledger.environment_state(status.app, status.env)
    if state is None or state.current_decision_id is None or state.committed_at is None:
        return {}
    status.ledger_tag, status.ledger_commit = state.current_tag, state.gitops_commit
    record = ledger.decision(status.app, status.env, state.committed_at, state.current_decision_id)
    status.ledger_status = (record.status or "COMMITTED") if record is not None else None
    return dict(record.digests) if record is not None else {}


def _moved(config: Config, app: App, tag: str | None, promoted: dict[str, str]) -> dict[str, list[str]]:
    """Where the deployed tag points now, per image, where that is not what was promoted (one HEAD each)."""
    if tag is None or not promoted:
        return {}
    from tagrelay import runtime

    registry = runtime.registry(config, app)
    now = {image: registry.resolve_tag(image, tag) for image in promoted if image in app.images}
    return {image: [promoted[image], digest] for image, digest in now.items() if digest and digest != promoted[image]}


# --------------------------------------------------------------------------------------------------
# Output.


def print_table(statuses: Sequence[EnvironmentStatus]) -> None:
    rows = [
        (
            f"{s.app}/{s.env}",
            s.gitops_tag or "-",
            _argo(s),
            s.health or "-",
            " ".join(f"{image.rsplit('/', 1)[-1]}:{','.join(tags) or '-'}" for image, tags in s.running.items()) or "-",
            "yes" if s.agree else "NO",
            f"{s.ledger_tag} {s.ledger_status}" if s.ledger_tag else "-",
        )
        for s in statuses
    ]
    header = ("ENVIRONMENT", "GITOPS", "ARGO CD (LAST SYNC)", "HEALTH", "RUNNING", "AGREE", "LEDGER")
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
    for status in statuses:
        for problem in status.problems:
            print(f"  {status.app}/{status.env}: {problem}")


def _argo(status: EnvironmentStatus) -> str:
    if status.sync_status is None:
        return "-"
    revision = (status.synced_revision or "?")[:7]
    return f"{status.synced_tag or '?'} @{revision} ({status.sync_status})"
