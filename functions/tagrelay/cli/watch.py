"""`tagrelay watch --env ENV`: follow the environment's current deployment to its outcome.

Also the `--wait` of `tagrelay deploy` and `tagrelay rollback` (``wait_for``).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING

from tagrelay.cli import operator_call
from tagrelay.cli.common import CommandError, add_config_option, load_config_or_fail, new_parser
from tagrelay.cli.status import TOKEN_ENV_VAR
from tagrelay.config import Config

if TYPE_CHECKING:
    from tagrelay.ports import ArgoCD

DEFAULT_INTERVAL_SECONDS = 5.0

DESCRIPTION = """\
Follow the environment's current deployment until it has an outcome, printing a line each time its
state (as the tracker records it in the ledger) or what Argo CD is doing (operation phase, sync and
health, asked directly) changes. Following ends at SUCCEEDED at once (the flap window is not waited
for), at DEGRADED, SYNC_FAILED, TIMED_OUT, SUPERSEDED or ENV_UNAVAILABLE, or after --timeout minutes
(default: the environment's tracking timeout plus 5).

Reads the ledger with your AWS credentials, and Argo CD with the token in $ARGOCD_AUTH_TOKEN when set,
else the secret argocd.token_secret (as `tagrelay status` does).

Exit status: 0 only when the deployment SUCCEEDED; 1 for any other outcome, when the time is up, or
when the environment has no deployment; 2 for a usage or configuration error.
"""

EXAMPLE = """\
  $ tagrelay watch --env prod
  10:42:01 mosaic-life/prod prod-cf3124b: COMMITTED; Argo CD: sync OutOfSync, health Healthy
  10:42:07 mosaic-life/prod prod-cf3124b: COMMITTED; Argo CD: sync OutOfSync, health Healthy, operation Running
  10:43:02 mosaic-life/prod prod-cf3124b: SYNCING (sync started); Argo CD: sync Synced, health Progressing, operation Succeeded
  10:44:03 mosaic-life/prod prod-cf3124b: SUCCEEDED (Healthy with all 2 image(s) running); Argo CD: sync Synced, health Healthy, operation Succeeded
"""


def add_follow_options(parser: argparse.ArgumentParser, *, wait_flag: bool) -> None:
    if wait_flag:
        parser.add_argument(
            "--wait",
            action="store_true",
            help="then follow the deployment to its outcome, a line per state change; exit 0 only for SUCCEEDED",
        )
    parser.add_argument(
        "--timeout",
        type=float,
        metavar="MINUTES",
        help="give up following after this long (default: the environment's tracking timeout + 5)",
    )
    parser.add_argument(
        "--interval",
        type=float,
        default=DEFAULT_INTERVAL_SECONDS,
        metavar="SECONDS",
        help=f"how often to look (default: {DEFAULT_INTERVAL_SECONDS:g})",
    )


def pause(seconds: float) -> None:
    """Wait between two looks. The tests replace it with one step of a simulated world (clock and tracker)."""
    time.sleep(seconds)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = new_parser(
        subparsers,
        "watch",
        summary="follow an environment's current deployment to its outcome",
        description=DESCRIPTION,
        example=EXAMPLE,
    )
    parser.add_argument("--env", required=True, metavar="ENV", help="the environment, e.g. prod")
    parser.add_argument("--app", metavar="APP", help="the app (default: the only configured one)")
    add_follow_options(parser, wait_flag=False)
    add_config_option(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    config = load_config_or_fail(args.config)
    app, _ = operator_call.resolve_target(config, args.app, args.env)
    return wait_for(config, args, app, args.env, gitops_commit=None)


def wait_for(config: Config, args: argparse.Namespace, app: str, env: str, *, gitops_commit: str | None) -> int:
    """Follow the environment's current deployment (the one that made ``gitops_commit``, when given)."""
    from tagrelay.cli.common import ledger_for
    from tagrelay.services.follow import Follower

    if args.interval <= 0 or (args.timeout is not None and args.timeout <= 0):
        raise CommandError("--interval and --timeout must be positive", exit_code=2)
    environment = config.apps[app].environments[env]
    minutes = args.timeout or (environment.timeout_minutes or config.tracking.timeout_minutes) + 5
    json_output = getattr(args, "output", "text") == "json"
    follower = Follower(ledger_for(config), _argocd_factory(config), sleep=pause)
    record = follower.current(app, env, gitops_commit)
    if record is None:
        what = f"the deployment of {gitops_commit[:12]}" if gitops_commit else "no deployment"
        raise CommandError(f"{app}/{env}: {what} is not the environment's current one in the ledger", exit_code=1)
    followed = follower.follow(
        record,
        argocd_app=environment.argocd_app,
        argocd_project=environment.argocd_project,
        timeout=timedelta(minutes=minutes),
        interval=args.interval,
        # Under --output json the answer is the document on stdout: the progress goes to stderr.
        emit=lambda line: print(line, flush=True, file=sys.stderr if json_output else sys.stdout),
    )
    if followed.succeeded:
        return 0
    outcome = followed.state.value if followed.state is not None else "no outcome"
    raise CommandError(f"{app}/{env} {record.tag}: {outcome}: {followed.message}", exit_code=1)


def _argocd_factory(config: Config) -> Callable[[], ArgoCD] | None:
    """Argo CD with the operator's token, made when following starts; None when it is not configured."""
    if config.argocd is None:
        return None

    def make() -> ArgoCD:
        from tagrelay.runtime import argocd_client

        return argocd_client(config, token=os.environ.get(TOKEN_ENV_VAR) or None)

    return make
