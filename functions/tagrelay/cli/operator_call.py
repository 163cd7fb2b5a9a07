"""What `tagrelay deploy`, `rollback`, `pin` and `unpin` share: they invoke the promoter function.

The command does not touch GitHub or the ledger itself. It builds the operator request
(domain/operator.py) and calls the promoter function (the PromoterFunction port; in AWS:
adapters/promoter_function.py signs an sts:GetCallerIdentity request with the caller's credentials as
proof of who asks, and invokes the function with lambda:InvokeFunction, so IAM decides who may call at
all). The function checks, acts, records, and answers with an outcome, which is printed here.

Endpoints: the function is ``--function`` (default ``<deploy.stack_name>-promoter``) in the AWS region
of the environment (or ``deploy.region``); ``--lambda-endpoint`` / ``$TAGRELAY_LAMBDA_ENDPOINT`` sends
the invocation elsewhere, e.g. to the local stack's Lambda API (devstack/lambda_api.py).

A change (``change``) is two invocations. First ``plan``: the function reports what the environment
runs now and resolves the change's target once (a rollback's default target, a SHA's full commit).
Then the change itself, with a request id made here and that precondition. The request is kept in a
small file (``$TAGRELAY_STATE_DIR``, default ``~/.local/state/tagrelay``) until the function answers;
if it did not (it failed, or the invocation timed out), the same command run again sends the same
request, so a change is never made twice and never computed twice.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import re
import sys
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tagrelay.cli.common import (
    NO_REGION,
    CommandError,
    add_config_option,
    add_output_option,
    digests_once,
    print_json,
)
from tagrelay.config import App, Config
from tagrelay.domain.decision import Outcome
from tagrelay.errors import InvocationFailed

if TYPE_CHECKING:
    from tagrelay.ports import PromoterFunction

LAMBDA_ENDPOINT_ENV_VAR = "TAGRELAY_LAMBDA_ENDPOINT"
FUNCTION_ENV_VAR = "TAGRELAY_PROMOTER_FUNCTION"
STATE_DIR_ENV_VAR = "TAGRELAY_STATE_DIR"
# A request that got no answer is sent again by the same command for this long (the function keeps
# request ids far longer: ledger.decision_ttl_days).
PENDING_MAX_AGE_SECONDS = 24 * 3600
_SHA = re.compile(r"^[0-9a-f]{7,40}$")

BACKENDS = f"""\
How it acts: the command invokes the promoter Lambda function (lambda:InvokeFunction) with the
request and a signed sts:GetCallerIdentity request as proof of your identity; the function verifies
it with STS, checks, commits through its own GitHub credentials, and records the actor (your AWS
ARN) in the ledger. Against the local stack, point it at the local Lambda API with --lambda-endpoint
or ${LAMBDA_ENDPOINT_ENV_VAR}.
"""


def add_invoke_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--function",
        metavar="NAME",
        help=f"promoter function name or ARN (default: ${FUNCTION_ENV_VAR}, else <deploy.stack_name>-promoter)",
    )
    parser.add_argument(
        "--lambda-endpoint",
        metavar="URL",
        help=f"Lambda API endpoint (default: ${LAMBDA_ENDPOINT_ENV_VAR}, else AWS's)",
    )
    add_config_option(parser)
    add_output_option(parser)


def resolve_target(config: Config, app_name: str | None, env: str) -> tuple[str, App]:
    """The app (the only configured one when --app is not given) and a check that it has ``env``."""
    if app_name is None:
        if len(config.apps) != 1:
            raise CommandError(f"several apps are configured; name one with --app ({', '.join(config.apps)})", 2)
        app_name = next(iter(config.apps))
    app = config.apps.get(app_name)
    if app is None:
        raise CommandError(f"no app {app_name!r} in the configuration; configured: {', '.join(config.apps)}", 2)
    if env not in app.environments:
        raise CommandError(f"{app_name} has no environment {env!r}; configured: {', '.join(app.environments)}", 2)
    return app_name, app


def check_sha(value: str) -> str:
    sha = value.lower()
    if not _SHA.match(sha):
        raise CommandError(f"SHA must be 7 to 40 hexadecimal characters, got {value!r}", 2)
    return sha


def check_reason(value: str) -> str:
    """The promoter refuses what it would not record; say so before signing anything."""
    from tagrelay.domain.operator import InvalidOperatorRequest, validate_reason

    try:
        return validate_reason(value)
    except InvalidOperatorRequest as exc:
        raise CommandError(f"--reason: {exc}", 2) from None


class OutcomeUnknown(CommandError):
    """The invocation may have run (the function failed, or no answer came): the request is kept."""


def change(
    config: Config,
    args: argparse.Namespace,
    operation: str,
    fields: dict[str, Any],
    *,
    function: PromoterFunction | None = None,
) -> dict[str, Any]:
    """Plan, then make one change (deploy, rollback, pin, unpin) exactly once; returns the function's answer.

    ``fields`` are what the operator asked (app, env, and the sha, reason, pin given on the command
    line). A request that got no answer before is sent again unchanged: same id, same precondition.
    ``function`` is the promoter (default: the one ``args`` and the environment name).
    """
    function = function or promoter_function(config, args)
    pending = _PendingRequests(args, operation, fields)
    payload = pending.load()
    if payload is None:
        planned = {"app": fields["app"], "env": fields["env"], "for": operation}
        if fields.get("sha"):
            planned["sha"] = fields["sha"]
        try:
            plan = invoke(function, "plan", planned)
        except OutcomeUnknown as exc:
            raise OutcomeUnknown(f"{exc}; nothing was changed yet: run the command again") from None
        if not plan.get("ok"):
            return plan
        payload = {**fields, "request_id": str(uuid.uuid4()), "expect_current_tag": plan.get("current_tag")}
        if operation in ("deploy", "rollback"):
            payload["sha"] = plan["sha"]
        pending.save(payload)
    try:
        answer = invoke(function, operation, payload)
    except OutcomeUnknown as exc:
        raise OutcomeUnknown(
            f"{exc}; run the same command again: it sends this request again (id {payload['request_id']}), "
            "which finishes it without doing anything twice"
        ) from None
    except CommandError:
        pending.clear()  # never reached the function: the next run plans afresh
        raise
    pending.clear()
    return answer


class _PendingRequests:
    """The request a command sent and got no answer to, kept until it is answered (one file per command)."""

    def __init__(self, args: argparse.Namespace, operation: str, fields: dict[str, Any]) -> None:
        target = {
            "function": getattr(args, "function", None) or os.environ.get(FUNCTION_ENV_VAR),
            "endpoint": getattr(args, "lambda_endpoint", None) or os.environ.get(LAMBDA_ENDPOINT_ENV_VAR),
            "operation": operation,
            "fields": fields,
        }
        key = hashlib.sha256(json.dumps(target, sort_keys=True).encode()).hexdigest()[:32]
        base = os.environ.get(STATE_DIR_ENV_VAR) or os.path.join(
            os.environ.get("XDG_STATE_HOME") or os.path.expanduser("~/.local/state"), "tagrelay"
        )
        self.path = Path(base) / f"pending-{key}.json"

    def load(self) -> dict[str, Any] | None:
        try:
            saved = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return None
        if not isinstance(saved, dict) or time.time() - float(saved.get("saved_at", 0)) > PENDING_MAX_AGE_SECONDS:
            self.clear()
            return None
        payload = saved.get("payload")
        return payload if isinstance(payload, dict) else None

    def save(self, payload: dict[str, Any]) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            descriptor = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(descriptor, "w") as handle:
                json.dump({"saved_at": time.time(), "payload": payload}, handle)
        except OSError as exc:
            # Not fatal: the change still runs once; only a repeat after a failure would plan afresh.
            print(f"tagrelay: warning: could not keep the request in {self.path}: {exc}", file=sys.stderr)

    def clear(self) -> None:
        with contextlib.suppress(OSError):
            self.path.unlink(missing_ok=True)


def promoter_function(config: Config, args: argparse.Namespace) -> PromoterFunction:
    """The promoter function the command talks to: --function / $TAGRELAY_PROMOTER_FUNCTION, reached at
    --lambda-endpoint / $TAGRELAY_LAMBDA_ENDPOINT or AWS Lambda (runtime.py builds it)."""
    from tagrelay import runtime

    return runtime.promoter_function(
        config,
        function=getattr(args, "function", None) or os.environ.get(FUNCTION_ENV_VAR),
        endpoint=getattr(args, "lambda_endpoint", None) or os.environ.get(LAMBDA_ENDPOINT_ENV_VAR) or None,
        how_to_point=f"pass --function, or for the local stack --lambda-endpoint (${LAMBDA_ENDPOINT_ENV_VAR})",
    )


def invoke(function: PromoterFunction, operation: str, fields: dict[str, Any]) -> dict[str, Any]:
    """One call of the promoter; a failure becomes the command's error (OutcomeUnknown when it may have run)."""
    try:
        return function.call(operation, fields)
    except InvocationFailed as exc:
        if exc.may_have_run:
            raise OutcomeUnknown(str(exc)) from None
        raise CommandError(NO_REGION if exc.usage else str(exc), 2 if exc.usage else 1) from None


def report(answer: dict[str, Any], output: str, *, describe: str) -> int:
    """Print the promoter's answer; a refusal exits 1 with its message (and hint) on stderr."""
    if output == "json":
        print_json(answer)
    if not answer.get("ok"):
        refusal = str(answer.get("message"))
        message = f"tagrelay: {describe} refused ({answer.get('reason')}): {refusal}"
        if answer.get("hint"):
            message += f"\n  what to do: {answer['hint']}"
        if output != "json":
            # The check that decided says what the message says: list only the others.
            failed = [
                c
                for c in answer.get("checks", [])
                if c.get("status") in ("fail", "wait") and str(c.get("detail")) not in refusal
            ]
            message += "".join(f"\n  {c['name']}: {c['status']}: {c['detail']}" for c in failed)
        print(digests_once(message), file=sys.stderr)
        return 1
    if output != "json":
        print(summary(answer))
    return 0


def summary(answer: dict[str, Any]) -> str:
    who = f" by {answer['actor']}" if answer.get("actor") else ""
    where = f"{answer.get('app')}/{answer.get('env')}"
    outcome = answer.get("outcome")
    lines: list[str]
    if outcome == Outcome.COMMITTED:
        was = f" (was {answer['previous_tag']})" if answer.get("previous_tag") else ""
        lines = [
            f"{where}: {answer.get('tag')}{was} committed as {str(answer.get('gitops_commit'))[:12]}{who}",
            *([f"  {answer['gitops_url']}"] if answer.get("gitops_url") else []),
        ]
    else:
        lines = [f"{where}: {answer.get('message')}"]
    pin = answer.get("pin")
    if pin and pin.get("pinned") and outcome != "pinned":
        lines.append(f"  pinned: {pin.get('reason')} (undo: tagrelay unpin --env {answer.get('env')})")
    return "\n".join(lines)
