"""`tagrelay status`: per environment, what GitOps says, what Argo CD synced, and what actually runs.

The seed runbook's "Wrong Image Deployed" troubleshooting (git show the values file, `argocd app
get`, `kubectl get pods -o jsonpath=...image`) in one command. The reading is services/status.py,
the judgement domain/drift.py; this module parses the arguments, builds the clients through
runtime.py and prints.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from dataclasses import asdict

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
from tagrelay.config import Config
from tagrelay.domain.drift import EnvironmentStatus

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
    from tagrelay.services.status import StatusReader

    argocd_needed = config.argocd is not None and any(config.apps[a].environments[e].argocd_app for a, e in targets)
    # The argocd CLI's token when set: an operator who can run `argocd app get` needs no AWS access to the
    # tracker's secret.
    client = runtime.argocd_client(config, token=os.environ.get(TOKEN_ENV_VAR) or None) if argocd_needed else None
    reader = StatusReader(
        config=config,
        github=runtime.github(config, github_read_credentials(config, "status")),
        ledger=ledger_for(config),
        registry_for=lambda app: runtime.registry(config, app),
        argocd=client,
    )
    try:
        return reader.read(targets)
    finally:
        if client is not None:
            client.close()


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
