"""Operator requests, carried out inside the promoter: deploy a SHA, roll back, pin, unpin (and plan).

The `tagrelay` command invokes the promoter function with an operator payload (domain/operator.py),
so the GitHub credentials never leave AWS, the checks are the promoter's own, and the audit record is
written by the same code as every other decision. Each request, in order:

1. the payload is validated strictly (unknown fields refused);
2. the caller's identity is verified by STS (adapters/identity.py): the actor is an ARN, not a claim;
   each proof is accepted once (its nonce is recorded);
3. the caller may act on the environment (operators.principals, when configured);
4. the app and environment exist;
5. the operation:
   * plan      read-only, what the command needs to prepare a change: the environment's state healed
               from its values file (services/heal.py), its current tag, and the change's target
               resolved once (a rollback's default target, a SHA's full commit);
   * a change (deploy, rollback, pin, unpin) carries the request id the command made and the tag the
     environment ran when it planned (its precondition). The id is recorded with a conditional put:
     a repeat of a finished request gets the first outcome, unchanged (``replayed``); a repeat of an
     unfinished one (the first attempt failed on the way) does it again, which the precondition makes
     safe: either the values file holds the precondition's tag (nothing happened yet), or it holds the
     target (the first attempt committed: its record is completed, not a second commit), or it holds
     something else and the change is refused as ``precondition_failed``;
   * deploy    the promoter's checks for a push, with the environment named (ReleaseRequest.env),
               trigger "manual"; a pinned environment refuses it (unpin first, or roll back to it);
   * rollback  to the target the command resolved (never recomputed here), pinned first so that no
               push slips in between, then the same checks with trigger "rollback", allow_downgrade
               and past the pin; the pin is put back as it was if the rollback did not commit;
   * pin/unpin the environment state item, and a ledger record of who did it and why.

Every answer is a dict (``OperatorOutcome.to_json``); a refusal is an answer with ``ok: false``, never
an exception, so that the function reports no error for a decision. Transient failures raise.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from tagrelay.config import Config
from tagrelay.domain.decision import Evaluation, Outcome, Reason, Verdict
from tagrelay.domain.facts import VerifiedCaller
from tagrelay.domain.operator import (
    InvalidOperatorRequest,
    OperatorRequest,
    hint_for,
    parse_operator_request,
    principal_allowed,
    release_tag_for,
    request_binding,
    rollback_target,
)
from tagrelay.domain.records import DecisionRecord, EnvironmentState, new_decision_id, timestamp
from tagrelay.domain.tags import ReleaseTag, parse_release_tag
from tagrelay.domain.values_patch import ValuesFileError
from tagrelay.errors import CommitNotFound, FileNotFound, IdentityError
from tagrelay.ports import DeploymentLedger
from tagrelay.services.heal import Healed
from tagrelay.services.promote import Promoter, ReleaseRequest

logger = logging.getLogger(__name__)

# Verdicts that mean the operator got what they asked for.
_DONE = {Verdict.PROMOTE: Outcome.COMMITTED, Verdict.NOOP: Outcome.NOOP}


@dataclass
class OperatorDependencies:
    config: Config
    ledger: DeploymentLedger
    promoter: Promoter
    # (proof, binding) -> the caller, verified; raises IdentityError.
    verify_identity: Callable[[Mapping[str, Any] | None, str], VerifiedCaller]

    def now(self) -> datetime:
        # The promoter's clock, so that operator records and the promoter's sort on one timeline.
        return self.promoter.deps.clock()


@dataclass
class OperatorOutcome:
    """The answer to one operator request (the Lambda's return value; `tagrelay ... -o json` prints it)."""

    operation: str | None
    ok: bool
    outcome: Outcome  # committed | noop | pinned | unpinned | refused | planned
    reason: Reason
    message: str
    app: str | None = None
    env: str | None = None
    actor: str | None = None
    request_id: str | None = None
    tag: str | None = None
    sha: str | None = None
    previous_tag: str | None = None
    current_tag: str | None = None  # plan: the environment's tag now (the precondition of the change)
    gitops_commit: str | None = None
    gitops_url: str | None = None
    pin: dict[str, Any] | None = None
    hint: str | None = None
    checks: list[dict[str, str]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {key: value for key, value in asdict(self).items() if value not in (None, [])}


class _Refused(Exception):
    def __init__(self, reason: Reason, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


class Operator:
    def __init__(self, deps: OperatorDependencies) -> None:
        self.deps = deps
        self.config = deps.config

    def handle(self, event: Mapping[str, Any], *, invocation_id: str | None = None) -> dict[str, Any]:
        """``invocation_id``: the Lambda request id, kept as the event id of what the request decides."""
        try:
            request = parse_operator_request(event)
        except InvalidOperatorRequest as exc:
            return self._refusal(None, None, Reason.INVALID_REQUEST, f"invalid operator request: {exc}").to_json()
        binding = request_binding(event)
        try:
            caller = self.deps.verify_identity(request.identity, binding)
        except IdentityError as exc:
            logger.warning(
                "operator request refused: identity", extra={"operation": request.operation, "why": exc.code}
            )
            message = f"the caller's identity could not be verified: {exc}"
            return self._refusal(request, None, Reason(exc.code), message).to_json()
        try:
            answer = self._authorised(request, caller, invocation_id, binding)
        except _Refused as refused:
            answer = self._refusal(request, caller, refused.reason, refused.message).to_json()
        logger.info(
            "operator request",
            extra={
                "operation": request.operation,
                "app": request.app,
                "env": request.env,
                "actor": caller.arn,
                "request_id": request.request_id,
                "outcome": answer.get("outcome"),
                "reason": answer.get("reason"),
                "replayed": answer.get("replayed", False),
            },
        )
        return answer

    def _authorised(
        self, request: OperatorRequest, caller: VerifiedCaller, invocation_id: str | None, binding: str
    ) -> dict[str, Any]:
        allowed = self.config.operators.allowed(request.env)
        if allowed is not None and not principal_allowed(caller.arn, allowed):
            raise _Refused(Reason.NOT_ALLOWED, f"{caller.arn} may not act on {request.env} (operators.principals)")
        app = self.config.apps.get(request.app)
        if app is None:
            raise _Refused(Reason.UNKNOWN_APP, f"no app {request.app!r}; configured: {', '.join(self.config.apps)}")
        if request.env not in app.environments:
            raise _Refused(
                Reason.UNKNOWN_ENVIRONMENT,
                f"{request.app} has no environment {request.env!r}; configured: {', '.join(app.environments)}",
            )
        if request.operation == "plan":
            return self._plan(request, caller).to_json()
        return self._change(request, caller, invocation_id, binding)

    # --- a change, exactly once per request id ---

    def _change(
        self, request: OperatorRequest, caller: VerifiedCaller, invocation_id: str | None, binding: str
    ) -> dict[str, Any]:
        assert request.request_id is not None  # parse_operator_request requires it for every change
        earlier = self.deps.ledger.begin_request(
            request.request_id,
            fingerprint=binding,
            operation=request.operation,
            app=request.app,
            env=request.env,
            actor=caller.arn,
            now=self.deps.now(),
        )
        if earlier is not None and earlier.fingerprint != binding:
            raise _Refused(
                Reason.REQUEST_ID_REUSED,
                f"request id {request.request_id} was used for another request; nothing was changed",
            )
        if earlier is not None and earlier.status == "done" and earlier.outcome is not None:
            return {**earlier.outcome, "replayed": True}
        resumed = earlier is not None  # an earlier attempt did not finish: do it again, safely
        try:
            if request.operation == "deploy":
                outcome = self._deploy(request, caller, invocation_id)
            elif request.operation == "rollback":
                outcome = self._rollback(request, caller, invocation_id)
            elif request.operation == "pin":
                outcome = self._pin(request, caller)
            else:
                outcome = self._unpin(request, caller)
        except _Refused as refused:
            outcome = self._refusal(request, caller, refused.reason, refused.message)
        if resumed:
            outcome = self._completed_earlier(request, outcome)
        outcome.request_id = request.request_id
        answer = outcome.to_json()
        self.deps.ledger.finish_request(request.request_id, answer, now=self.deps.now())
        return answer

    def _completed_earlier(self, request: OperatorRequest, outcome: OperatorOutcome) -> OperatorOutcome:
        """A repeat of a request whose first attempt committed and then failed: the environment already runs
        the target (a no-op now). The first attempt's deployment is the answer (found by its request id)."""
        if request.operation not in ("deploy", "rollback") or outcome.outcome is not Outcome.NOOP:
            return outcome
        state = self.deps.ledger.environment_state(request.app, request.env)
        if state is None or state.current_decision_id is None or state.committed_at is None:
            return outcome
        record = self.deps.ledger.decision(request.app, request.env, state.committed_at, state.current_decision_id)
        if record is None or record.request_id != request.request_id:
            return outcome
        outcome.outcome, outcome.reason = Outcome.COMMITTED, Reason.COMMITTED
        outcome.message = (
            f"completed: an earlier attempt of this request committed {record.tag} as "
            f"{(record.gitops_commit or '')[:12]}"
        )
        outcome.previous_tag = record.previous_tag
        outcome.gitops_commit, outcome.gitops_url = record.gitops_commit, record.gitops_url
        return outcome

    # --- plan: what the command computes a change against ---

    def _plan(self, request: OperatorRequest, caller: VerifiedCaller) -> OperatorOutcome:
        healed = self._heal(request)
        release: ReleaseTag | None = None
        full_sha: str | None = None
        if request.sha:
            # A SHA that names no single commit is passed on as given: the change itself refuses it, with
            # its checks and its record, as it would any release it cannot deploy.
            full_sha = self._resolve(request, request.sha) or request.sha
            release = self._release_tag(request, full_sha)
        elif request.planned_for == "rollback":
            release = self._default_target(request, healed.state)
            full_sha = self._resolve(request, release.sha) or release.sha
        elif request.planned_for == "deploy":
            raise _Refused(Reason.INVALID_REQUEST, "a deploy names the commit to deploy (sha)")
        target = f"{release.tag} ({full_sha})" if release else "no release"
        return OperatorOutcome(
            operation="plan",
            ok=True,
            outcome=Outcome.PLANNED,
            reason=Reason.PLANNED,
            message=f"{request.env} runs {healed.tag or 'no tag'}; {request.planned_for} target: {target}",
            app=request.app,
            env=request.env,
            actor=caller.arn,
            tag=release.tag if release else None,
            sha=full_sha,
            current_tag=healed.tag,
            pin=_pin_json(healed.state),
        )

    def _heal(self, request: OperatorRequest) -> Healed:
        """The environment's state, made to agree with its values file first (services/heal.py)."""
        try:
            return self.deps.promoter.healer.heal(request.app, request.env)
        except FileNotFound as exc:
            raise _Refused(Reason.VALUES_FILE_MISSING, f"{exc}; create it first") from None
        except (UnicodeDecodeError, ValuesFileError) as exc:
            raise _Refused(
                Reason.VALUES_FILE_INVALID, f"the values file of {request.env} cannot be read: {exc}"
            ) from None

    def _resolve(self, request: OperatorRequest, sha: str) -> str | None:
        """The full commit a SHA names (None when it names none, or several), so that the change acts on
        that commit whatever happens to the short SHA later."""
        app = self.config.apps[request.app]
        try:
            return self.deps.promoter.deps.github.resolve_commit(app.source_repo, sha).sha
        except CommitNotFound:
            return None

    def _check_precondition(self, request: OperatorRequest, current_tag: str | None) -> None:
        if current_tag != request.expect_current_tag:
            raise _Refused(
                Reason.PRECONDITION_FAILED,
                f"{request.env} now runs {current_tag or 'no tag'}, not {request.expect_current_tag or 'no tag'} "
                "as when the command was prepared: nothing was changed; run the command again to act on what "
                "runs now",
            )

    # --- deploy and rollback: the promoter's own evaluation ---

    def _deploy(self, request: OperatorRequest, caller: VerifiedCaller, invocation_id: str | None) -> OperatorOutcome:
        assert request.sha is not None  # parse_operator_request requires it
        release = self._release_tag(request, request.sha)
        evaluation = self.deps.promoter.evaluate_release(
            ReleaseRequest(
                request.app,
                release,
                "manual",
                invocation_id,
                actor=caller.arn,
                env=request.env,
                request_id=request.request_id,
                check_precondition=True,
                expect_current_tag=request.expect_current_tag,
                requested_sha=request.sha,
            )
        )
        return self._evaluated(request, caller, evaluation)

    def _rollback(self, request: OperatorRequest, caller: VerifiedCaller, invocation_id: str | None) -> OperatorOutcome:
        assert request.sha is not None  # the command resolved the target (plan); it is never recomputed here
        ledger = self.deps.ledger
        state = ledger.environment_state(request.app, request.env)
        release = self._release_tag(request, request.sha)
        if request.pin:
            # Pinned before the commit: a push evaluated meanwhile is skipped instead of undoing the rollback.
            reason = f"rollback to {release.tag} by {caller.arn}" + (f": {request.reason}" if request.reason else "")
            ledger.set_pin(request.app, request.env, reason=reason, pinned_by=caller.arn, pinned_at=self._now())
        try:
            evaluation = self.deps.promoter.evaluate_release(
                ReleaseRequest(
                    request.app,
                    release,
                    "rollback",
                    invocation_id,
                    actor=caller.arn,
                    env=request.env,
                    allow_downgrade=True,
                    respect_pin=False,
                    request_id=request.request_id,
                    check_precondition=True,
                    expect_current_tag=request.expect_current_tag,
                    requested_sha=request.sha,
                )
            )
        except BaseException:
            # Put the pin back only if the rollback certainly did not commit: if it did (its record failed),
            # the pin must stay, or the next push undoes the rollback. A repeat of the request completes it.
            if request.pin and not self._may_hold(request, release.tag):
                restore_pin(ledger, request.app, request.env, state)
            raise
        outcome = self._evaluated(request, caller, evaluation)
        if request.pin and (outcome.ok or self._may_hold(request, release.tag)):
            pinned = ledger.environment_state(request.app, request.env)
            self._record_pin(request, caller, "pinned", pinned, trigger="rollback")
            outcome.pin = _pin_json(pinned)
        elif request.pin:
            restore_pin(ledger, request.app, request.env, state)
        return outcome

    def _may_hold(self, request: OperatorRequest, tag: str) -> bool:
        """Does the values file (perhaps) hold ``tag``? When it cannot be read, assume it does."""
        app = self.config.apps[request.app]
        try:
            current = self.deps.promoter.deps.github.read_file(
                app.gitops.repo, app.gitops.values_path(request.env), app.gitops.branch
            )
            return app.gitops_format.read(current.content.decode("utf-8")).tag == tag
        except Exception:  # unreadable or unreachable: the safe side, keep the pin
            return True

    def _default_target(self, request: OperatorRequest, state: EnvironmentState | None) -> ReleaseTag:
        if state is None or state.current_decision_id is None or state.committed_at is None:
            raise _Refused(
                Reason.NO_DEPLOYMENT_RECORDED,
                f"no deployment of {request.app}/{request.env} is recorded, so there is no earlier one to go back to",
            )
        deployments = self.deps.ledger.deployments(
            request.app, request.env, through_key=(state.committed_at, state.current_decision_id)
        )
        target = rollback_target(deployments, state)
        if target is None or target.tag is None:
            raise _Refused(
                Reason.NO_EARLIER_SUCCESS,
                f"no deployment of {request.env} reached SUCCEEDED before the current one ({state.current_tag})",
            )
        app = self.config.apps[request.app]
        release = parse_release_tag(target.tag, app.tag_regex)
        if release is None:
            raise _Refused(Reason.NO_EARLIER_SUCCESS, f"{target.tag} no longer matches {request.app}'s tag_pattern")
        return release

    def _release_tag(self, request: OperatorRequest, sha: str) -> ReleaseTag:
        try:
            return release_tag_for(sha, request.env, self.config.apps[request.app].tag_regex)
        except ValueError as exc:
            raise _Refused(Reason.TAG_NOT_DERIVABLE, str(exc)) from None

    def _evaluated(self, request: OperatorRequest, caller: VerifiedCaller, evaluation: Evaluation) -> OperatorOutcome:
        decided = next((d for d in evaluation.decisions if d.env == request.env), evaluation.headline)
        done = _DONE.get(decided.verdict)
        message = decided.message
        if decided.verdict is Verdict.NOOP:
            message = f"{request.env} already runs {evaluation.tag}; nothing to commit"
        return OperatorOutcome(
            operation=request.operation,
            ok=done is not None,
            outcome=done or Outcome.REFUSED,
            reason=decided.reason,
            message=message,
            app=request.app,
            env=request.env,
            actor=caller.arn,
            tag=evaluation.tag,
            sha=evaluation.full_sha or evaluation.sha,
            previous_tag=decided.previous_tag,
            gitops_commit=decided.gitops_commit,
            gitops_url=decided.gitops_url,
            hint=None if done else hint_for(decided.reason, request.operation, request.env, request.sha),
            checks=[{"name": c.name, "status": c.status, "detail": c.detail} for c in evaluation.checks],
        )

    # --- pin and unpin ---

    def _pin(self, request: OperatorRequest, caller: VerifiedCaller) -> OperatorOutcome:
        assert request.reason is not None  # parse_operator_request requires it
        before = self._heal(request)
        self._check_precondition(request, before.tag)
        self.deps.ledger.set_pin(
            request.app, request.env, reason=request.reason, pinned_by=caller.arn, pinned_at=self._now()
        )
        # A change that landed between the read and the pin would be what the pin holds: not what was asked.
        after = self._heal(request)
        if after.tag != request.expect_current_tag:
            restore_pin(self.deps.ledger, request.app, request.env, before.state)
            self._check_precondition(request, after.tag)
        state = self.deps.ledger.environment_state(request.app, request.env)
        self._record_pin(request, caller, "pinned", state, trigger="manual")
        return OperatorOutcome(
            operation="pin",
            ok=True,
            outcome=Outcome.PINNED,
            reason=Reason.ENVIRONMENT_PINNED,
            message=f"{request.env} is pinned at {_current(state)}: pushes are recorded as skipped until "
            f"'tagrelay unpin --env {request.env}'",
            app=request.app,
            env=request.env,
            actor=caller.arn,
            tag=state.current_tag if state else None,
            pin=_pin_json(state),
        )

    def _unpin(self, request: OperatorRequest, caller: VerifiedCaller) -> OperatorOutcome:
        healed = self._heal(request)
        state = healed.state
        if state is None or not state.pinned:
            return OperatorOutcome(
                operation="unpin",
                ok=True,
                outcome=Outcome.NOOP,
                reason=Reason.NOT_PINNED,
                message=f"{request.env} was not pinned; nothing to do",
                app=request.app,
                env=request.env,
                actor=caller.arn,
            )
        self._check_precondition(request, healed.tag)
        self.deps.ledger.clear_pin(request.app, request.env)
        self._record_pin(request, caller, "unpinned", state, trigger="manual")
        return OperatorOutcome(
            operation="unpin",
            ok=True,
            outcome=Outcome.UNPINNED,
            reason=Reason.ENVIRONMENT_UNPINNED,
            message=f"{request.env} is unpinned (it was pinned by {state.pinned_by}: {state.pin_reason}); "
            "the next push promotes as usual",
            app=request.app,
            env=request.env,
            actor=caller.arn,
            tag=state.current_tag,
        )

    def _record_pin(
        self,
        request: OperatorRequest,
        caller: VerifiedCaller,
        outcome: str,
        state: EnvironmentState | None,
        *,
        trigger: str,
    ) -> None:
        """The audit record of a pin or unpin, in the environment's history beside its deployments."""
        if outcome == "pinned":
            message = f"pinned at {_current(state)} by {caller.arn}: {state.pin_reason if state else request.reason}"
        else:
            message = f"unpinned by {caller.arn}" + (f": {request.reason}" if request.reason else "")
        self.deps.ledger.record_decision(
            DecisionRecord(
                decision_id=new_decision_id(),
                app=request.app,
                env=request.env,
                outcome=outcome,
                reason=f"environment_{outcome}",
                message=message,
                created_at=self._now(),
                trigger=trigger,
                tag=state.current_tag if state else None,
                actor=caller.arn,
                request_id=request.request_id,
            )
        )

    # --- helpers ---

    def _now(self) -> str:
        return timestamp(self.deps.now())

    def _refusal(
        self, request: OperatorRequest | None, caller: VerifiedCaller | None, reason: Reason, message: str
    ) -> OperatorOutcome:
        return OperatorOutcome(
            operation=request.operation if request else None,
            ok=False,
            outcome=Outcome.REFUSED,
            reason=reason,
            message=message,
            app=request.app if request else None,
            env=request.env if request else None,
            actor=caller.arn if caller else None,
            request_id=request.request_id if request else None,
            sha=request.sha if request else None,
            hint=hint_for(reason, request.operation, request.env, request.sha) if request else None,
        )


def restore_pin(ledger: DeploymentLedger, app: str, env: str, previous: EnvironmentState | None) -> None:
    """Put an environment's pin back as it was in ``previous`` (a rollback that did not happen)."""
    if previous is not None and previous.pinned:
        ledger.set_pin(
            app,
            env,
            reason=previous.pin_reason or "",
            pinned_by=previous.pinned_by or "",
            pinned_at=previous.pinned_at or "",
        )
    else:
        ledger.clear_pin(app, env)


def _current(state: EnvironmentState | None) -> str:
    return state.current_tag if state and state.current_tag else "its current tag"


def _pin_json(state: EnvironmentState | None) -> dict[str, Any] | None:
    if state is None:
        return None
    return {
        "pinned": state.pinned,
        "reason": state.pin_reason,
        "pinned_by": state.pinned_by,
        "pinned_at": state.pinned_at,
    }
