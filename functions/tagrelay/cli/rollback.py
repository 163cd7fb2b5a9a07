"""`tagrelay rollback --env ENV [--to SHA]`: go back to the last healthy release, and pin there."""

from __future__ import annotations

import argparse

from tagrelay.cli import operator_call, watch
from tagrelay.cli.common import load_config_or_fail, new_parser

DESCRIPTION = f"""\
Roll an environment back. Without --to, to the last deployment that reached SUCCEEDED before the
current one (from the ledger; a release that was itself rolled back is skipped). With --to SHA, to
that commit's release. The images must still be in the registry and signed, and the commit on the
environment's branch: the same checks as any promotion, except the no-downgrade guard, which a
rollback bypasses on purpose.

The environment is pinned first (reason 'rollback to <tag> by <you>'), so the next push does not
undo it (Argo CD Image Updater and Flux re-apply the newest tag over a manual rollback);
'tagrelay unpin --env ENV' releases it.
--no-pin leaves the pin as it was. If the rollback is refused, the pin is put back as it was.

The GitOps commit reads 'rollback(<env>): revert to <tag>'; the ledger records trigger=rollback and
your verified AWS identity as the actor, and the pin as its own record.

Refused (exit 1): no deployment recorded, or none that reached SUCCEEDED before the current one
(name one with --to), a release whose images are gone or unsigned, a commit not on the branch.

{operator_call.BACKENDS}"""

EXAMPLE = """\
  tagrelay rollback --env prod
  tagrelay rollback --env prod --to 1e07581 --reason "checkout errors since 14:02"
  tagrelay rollback --env staging --no-pin -o json
"""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = new_parser(
        subparsers,
        "rollback",
        summary="roll an environment back to its last healthy release (or --to SHA) and pin it",
        description=DESCRIPTION,
        example=EXAMPLE,
    )
    parser.add_argument("--env", required=True, metavar="ENV", help="the environment, e.g. prod")
    parser.add_argument("--to", metavar="SHA", help="the commit to go back to (default: the last SUCCEEDED one)")
    parser.add_argument("--app", metavar="APP", help="the app (default: the only configured one)")
    parser.add_argument("--reason", metavar="TEXT", help="why, recorded with the pin")
    parser.add_argument("--no-pin", action="store_true", help="do not pin the environment")
    operator_call.add_invoke_options(parser)
    watch.add_follow_options(parser, wait_flag=True)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    config = load_config_or_fail(args.config)
    app, _ = operator_call.resolve_target(config, args.app, args.env)
    fields: dict[str, object] = {"app": app, "env": args.env, "pin": not args.no_pin}
    if args.to:
        fields["sha"] = operator_call.check_sha(args.to)
    if args.reason:
        fields["reason"] = operator_call.check_reason(args.reason)
    answer = operator_call.change(config, args, "rollback", fields)
    code = operator_call.report(answer, args.output, describe=f"rollback of {app}/{args.env}")
    if code or not args.wait or answer.get("outcome") not in ("committed", "noop"):
        return code
    return watch.wait_for(config, args, app, args.env, gitops_commit=answer.get("gitops_commit"))
