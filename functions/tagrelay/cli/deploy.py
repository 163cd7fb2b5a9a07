"""`tagrelay deploy SHA --env ENV`: promote one commit to one environment, through the push's checks."""

from __future__ import annotations

import argparse

from tagrelay.cli import operator_call, watch
from tagrelay.cli.common import load_config_or_fail, new_parser

DESCRIPTION = f"""\
Deploy the release of one commit to one environment: the seed runbook's 'just deploy-sha', with
exactly the checks of a push. The commit must be on the environment's branch, every image of the app
must carry the release tag, and every digest must be signed as the app's policy demands. The tag is
the commit's short SHA (abc1234), or <env>-<sha7> when the app's tag_pattern names the environment.

The GitOps commit reads 'deploy(<env>): manual update to image tag <tag>'; the ledger records
trigger=manual and your verified AWS identity as the actor.

Refused (exit 1, with what to do): a commit that is not on the branch or unknown, a release with an
image missing or unsigned, a commit older than the one the environment runs (going back is
'tagrelay rollback --to SHA'), and a pinned environment (a pin stops manual deploys too: unpin first,
or 'tagrelay rollback --env ENV --to SHA' to deploy it and stay pinned). Deploying the tag the
environment already runs changes nothing and exits 0.

{operator_call.BACKENDS}"""

EXAMPLE = """\
  tagrelay deploy abc1234 --env prod
  tagrelay deploy abc1234def5678abc1234def5678abc1234def56 --env staging --app mosaic-life -o json
  TAGRELAY_LAMBDA_ENDPOINT=http://127.0.0.1:8765 tagrelay deploy abc1234 --env prod   # the local stack
"""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = new_parser(
        subparsers,
        "deploy",
        summary="deploy one commit's release to an environment (same checks as a push)",
        description=DESCRIPTION,
        example=EXAMPLE,
    )
    parser.add_argument("sha", metavar="SHA", help="the commit, 7 to 40 hexadecimal characters")
    parser.add_argument("--env", required=True, metavar="ENV", help="the environment, e.g. prod")
    parser.add_argument("--app", metavar="APP", help="the app (default: the only configured one)")
    operator_call.add_invoke_options(parser)
    watch.add_follow_options(parser, wait_flag=True)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    config = load_config_or_fail(args.config)
    sha = operator_call.check_sha(args.sha)
    app, _ = operator_call.resolve_target(config, args.app, args.env)
    answer = operator_call.change(config, args, "deploy", {"app": app, "env": args.env, "sha": sha})
    code = operator_call.report(answer, args.output, describe=f"deploy of {sha[:7]} to {app}/{args.env}")
    if code or not args.wait or answer.get("outcome") not in ("committed", "noop"):
        return code
    return watch.wait_for(config, args, app, args.env, gitops_commit=answer.get("gitops_commit"))
