"""`tagrelay pin --env ENV --reason TEXT` and `tagrelay unpin --env ENV`: freeze an environment, and release it."""

from __future__ import annotations

import argparse

from tagrelay.cli import operator_call
from tagrelay.cli.common import load_config_or_fail, new_parser

PIN_DESCRIPTION = f"""\
Pin an environment at the release it runs: while pinned, a push to its branch is recorded as skipped
(reason environment_pinned) instead of committed, and 'tagrelay deploy' to it is refused. A rollback
still works (and keeps the environment pinned). Pinning a pinned environment replaces the reason.

The pin (who, when, why) is kept in the environment's ledger state, and each pin and unpin is a
record in its history (tagrelay history --env ENV).

{operator_call.BACKENDS}"""

PIN_EXAMPLE = """\
  tagrelay pin --env prod --reason "incident 4711: hold prod at 1e07581"
  tagrelay pin --env staging --reason "load test until 16:00" -o json
"""

UNPIN_DESCRIPTION = f"""\
Release a pinned environment: the next push to its branch promotes as usual (nothing is deployed by
unpinning itself). Unpinning an environment that is not pinned changes nothing and exits 0.

{operator_call.BACKENDS}"""

UNPIN_EXAMPLE = """\
  tagrelay unpin --env prod
  tagrelay unpin --env prod --reason "fix 9c1d2e3 verified on staging"
"""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    pin = new_parser(
        subparsers,
        "pin",
        summary="pin an environment: pushes to it are skipped until unpinned",
        description=PIN_DESCRIPTION,
        example=PIN_EXAMPLE,
    )
    pin.add_argument("--env", required=True, metavar="ENV", help="the environment, e.g. prod")
    pin.add_argument("--reason", required=True, metavar="TEXT", help="why (recorded, shown on every skipped push)")
    pin.add_argument("--app", metavar="APP", help="the app (default: the only configured one)")
    operator_call.add_invoke_options(pin)
    pin.set_defaults(handler=run_pin)

    unpin = new_parser(
        subparsers,
        "unpin",
        summary="release a pinned environment",
        description=UNPIN_DESCRIPTION,
        example=UNPIN_EXAMPLE,
    )
    unpin.add_argument("--env", required=True, metavar="ENV", help="the environment, e.g. prod")
    unpin.add_argument("--reason", metavar="TEXT", help="why (recorded)")
    unpin.add_argument("--app", metavar="APP", help="the app (default: the only configured one)")
    operator_call.add_invoke_options(unpin)
    unpin.set_defaults(handler=run_unpin)


def run_pin(args: argparse.Namespace) -> int:
    config = load_config_or_fail(args.config)
    app, _ = operator_call.resolve_target(config, args.app, args.env)
    fields = {"app": app, "env": args.env, "reason": operator_call.check_reason(args.reason)}
    answer = operator_call.change(config, args, "pin", fields)
    return operator_call.report(answer, args.output, describe=f"pin of {app}/{args.env}")


def run_unpin(args: argparse.Namespace) -> int:
    config = load_config_or_fail(args.config)
    app, _ = operator_call.resolve_target(config, args.app, args.env)
    fields = {"app": app, "env": args.env}
    if args.reason:
        fields["reason"] = operator_call.check_reason(args.reason)
    answer = operator_call.change(config, args, "unpin", fields)
    return operator_call.report(answer, args.output, describe=f"unpin of {app}/{args.env}")
