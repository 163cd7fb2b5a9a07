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
from tagrelay.domain import operator as rules
from tagrelay.domain.decision import Evaluation, Outcome, Reason
from tagrelay.domain.facts import VerifiedCaller
from tagrelay.domain.operator import Answer, InvalidOperatorRequest, OperatorRequest, hint_for
from tagrelay.domain.records import DecisionRecord, EnvironmentState, new_decision_id, timestamp
from tagrelay.domain.tags import ReleaseTag
from tagrelay.domain.values_patch import ValuesFileError
from tagrelay.errors import CommitNotFound, FileNotFound, IdentityError
from tagrelay.ports import DeploymentLedger
from tagrelay.services.heal import Healed
from tagrelay.services.promote import Promoter, ReleaseRequest

logger = logging.getLogger(__name__)


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

    @classmethod
    def of(cls, answer: Answer, **fields: Any) -> OperatorOutcome:
        """The answer a rule gave (domain/operator.py), with what else the operator is shown."""
        return cls(ok=answer.ok, outcome=answer.outcome, reason=answer.reason, message=answer.message, **fields)

    def to_json(self) -> dict[str, Any]:
        return {key: value for key, value in asdict(self).items() if value not in (None, [])}


class _Refused(Exception):
    """A refusal (domain/operator.py's rules), raised from deep in a request and answered in _change."""

    def __init__(self, refusal: Answer) -> None:
        super().__init__(refusal.message)
        self.refusal = refusal


def _refuse_if(refusal: Answer | None) -> None:
    if refusal is not None:
        raise _Refused(refusal)


class Operator:
    def __init__(self, deps: OperatorDependencies) -> None:
        self.deps = deps
        self.config = deps.config

    def handle(self, event: Mapping[str, Any], *, invocation_id: str | None = None) -> dict[str, Any]:
        """``invocation_id``: the Lambda request id, kept as the event id of what the request decides."""
        try:
            request = rules.parse_operator_request(event)
        except InvalidOperatorRequest as exc:
            return self._refusal(None, None, rules.refuse_invalid_request(str(exc))).to_json()
        binding = rules.request_binding(event)
        try:
            caller = self.deps.verify_identity(request.identity, binding)
        except IdentityError as exc:
            logger.warning(
                "operator request refused: identity", extra={"operation": request.operation, "why": exc.code}
            )
            return self._refusal(request, None, rules.refuse_unverified_identity(exc.code, str(exc))).to_json()
        try:
            answer = self._authorised(request, caller, invocation_id, binding)
        except _Refused as refused:
            answer = self._refusal(request, caller, refused.refusal).to_json()
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
        _refuse_if(rules.judge_principal(caller.arn, request.env, self.config.operators.allowed(request.env)))
        _refuse_if(rules.judge_app(request.app, self.config.apps))
        _refuse_if(rules.judge_environment(request.app, request.env, self.config.apps[request.app].environments))
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
        earlier_fingerprint = earlier.fingerprint if earlier is not None else None
        _refuse_if(
            rules.judge_request_id(request.request_id, fingerprint=binding, earlier_fingerprint=earlier_fingerprint)
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
            outcome = self._refusal(request, caller, refused.refusal)
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
        completed = rules.answer_completed_earlier(record.tag, record.gitops_commit)
        outcome.outcome, outcome.reason, outcome.message = completed.outcome, completed.reason, completed.message
        outcome.previous_tag = record.previous_tag
        outcome.gitops_commit, outcome.gitops_url = record.gitops_commit, record.gitops_url
        return outcome

    # --- plan: what the command computes a change against ---

    def _plan(self, request: OperatorRequest, caller: VerifiedCaller) -> OperatorOutcome:
        healed = self._heal(request)
        _refuse_if(rules.judge_plan(request.planned_for, request.sha))
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
        target = f"{release.tag} ({full_sha})" if release else "no release"
        return self._answer(
            request,
            caller,
            rules.answer_planned(request.env, healed.tag, request.planned_for, target),
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
            raise _Refused(rules.refuse_values_file_missing(str(exc))) from None
        except (UnicodeDecodeError, ValuesFileError) as exc:
            raise _Refused(rules.refuse_values_file_unreadable(request.env, str(exc))) from None

    def _resolve(self, request: OperatorRequest, sha: str) -> str | None:
        """The full commit a SHA names (None when it names none, or several), so that the change acts on
        that commit whatever happens to the short SHA later."""
        app = self.config.apps[request.app]
        try:
            return self.deps.promoter.deps.github.resolve_commit(app.source_repo, sha).sha
        except CommitNotFound:
            return None

    def _check_precondition(self, request: OperatorRequest, current_tag: str | None) -> None:
        _refuse_if(
            rules.judge_still_current(request.env, expected_tag=request.expect_current_tag, current_tag=current_tag)
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
        _refuse_if(rules.judge_rollback_source(request.app, request.env, state))
        assert state is not None and state.committed_at is not None and state.current_decision_id is not None
        deployments = self.deps.ledger.deployments(
            request.app, request.env, through_key=(state.committed_at, state.current_decision_id)
        )
        pattern = self.config.apps[request.app].tag_regex
        return _released(rules.default_rollback_release(request.app, request.env, deployments, state, pattern))

    def _release_tag(self, request: OperatorRequest, sha: str) -> ReleaseTag:
        return _released(rules.judge_release_tag(sha, request.env, self.config.apps[request.app].tag_regex))

    def _evaluated(self, request: OperatorRequest, caller: VerifiedCaller, evaluation: Evaluation) -> OperatorOutcome:
        decided = next((d for d in evaluation.decisions if d.env == request.env), evaluation.headline)
        answer = rules.judge_evaluated(request.env, evaluation.tag, decided.verdict, decided.reason, decided.message)
        return self._answer(
            request,
            caller,
            answer,
            tag=evaluation.tag,
            sha=evaluation.full_sha or evaluation.sha,
            previous_tag=decided.previous_tag,
            gitops_commit=decided.gitops_commit,
            gitops_url=decided.gitops_url,
            hint=None if answer.ok else hint_for(answer.reason, request.operation, request.env, request.sha),
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
        stale = rules.judge_still_current(request.env, expected_tag=request.expect_current_tag, current_tag=after.tag)
        if stale is not None:
            restore_pin(self.deps.ledger, request.app, request.env, before.state)
            raise _Refused(stale)
        state = self.deps.ledger.environment_state(request.app, request.env)
        self._record_pin(request, caller, "pinned", state, trigger="manual")
        return self._answer(
            request,
            caller,
            rules.answer_pinned(request.env, state),
            tag=state.current_tag if state else None,
            pin=_pin_json(state),
        )

    def _unpin(self, request: OperatorRequest, caller: VerifiedCaller) -> OperatorOutcome:
        healed = self._heal(request)
        state = healed.state
        answer = rules.judge_unpin(request.env, state)
        if state is None or answer.outcome is Outcome.NOOP:
            return self._answer(request, caller, answer)
        self._check_precondition(request, healed.tag)
        self.deps.ledger.clear_pin(request.app, request.env)
        self._record_pin(request, caller, "unpinned", state, trigger="manual")
        return self._answer(request, caller, answer, tag=state.current_tag)

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
            message = (
                f"pinned at {rules.current_tag_of(state)} by {caller.arn}: "
                f"{state.pin_reason if state else request.reason}"
            )
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

    def _answer(
        self, request: OperatorRequest, caller: VerifiedCaller, answer: Answer, **fields: Any
    ) -> OperatorOutcome:
        """What a request came to (``fields``: what else the operator is shown)."""
        return OperatorOutcome.of(
            answer, operation=request.operation, app=request.app, env=request.env, actor=caller.arn, **fields
        )

    def _refusal(
        self, request: OperatorRequest | None, caller: VerifiedCaller | None, refusal: Answer
    ) -> OperatorOutcome:
        return OperatorOutcome.of(
            refusal,
            operation=request.operation if request else None,
            app=request.app if request else None,
            env=request.env if request else None,
            actor=caller.arn if caller else None,
            request_id=request.request_id if request else None,
            sha=request.sha if request else None,
            hint=hint_for(refusal.reason, request.operation, request.env, request.sha) if request else None,
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


def _released(answer: ReleaseTag | Answer) -> ReleaseTag:
    """The release a rule found, or its refusal raised."""
    if isinstance(answer, Answer):
        raise _Refused(answer)
    return answer


def _pin_json(state: EnvironmentState | None) -> dict[str, Any] | None:
    if state is None:
        return None
    return {
        "pinned": state.pinned,
        "reason": state.pin_reason,
        "pinned_by": state.pinned_by,
        "pinned_at": state.pinned_at,
    }
