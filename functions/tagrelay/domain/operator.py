"""Operator requests (`tagrelay deploy`, `rollback`, `pin`, `unpin`): their payload, and the pure rules
behind them (who may act, the release tag of a SHA, the default rollback target, each refusal and
answer, what to tell the operator).

The CLI sends a request as the payload of a promoter Lambda invocation; services/operate.py carries it
out. Nothing here does I/O: the payload is validated field by field, strictly, because it arrives from
outside the function.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, get_args

from tagrelay.domain.decision import Outcome, Reason, Verdict, judge_precondition
from tagrelay.domain.outcome import DeploymentState
from tagrelay.domain.records import DecisionRecord, EnvironmentState
from tagrelay.domain.tags import ReleaseTag, parse_release_tag

# The key that marks an invocation payload as an operator request (EventBridge events never carry it).
OPERATION_KEY = "tagrelay_operation"
IDENTITY_KEY = "identity"

Operation = Literal["deploy", "rollback", "pin", "unpin", "plan"]
OPERATIONS: tuple[Operation, ...] = get_args(Operation)
# The operations that change an environment; "plan" only reads (what the command needs to prepare one).
Change = Literal["deploy", "rollback", "pin", "unpin"]
CHANGES: tuple[Change, ...] = get_args(Change)

SHORT_SHA_LENGTH = 7
MAX_REASON_LENGTH = 300
MAX_TAG_LENGTH = 256

_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
_SHA = re.compile(r"^[0-9a-f]{7,40}$")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{7,63}$")
_COMMON = frozenset({OPERATION_KEY, "app", "env", IDENTITY_KEY})
# Every change carries the id the command made for it and the precondition it was computed against.
_IDEMPOTENT = frozenset({"request_id", "expect_current_tag"})
# Fields each operation accepts beyond the common ones: (required, optional).
_FIELDS: Mapping[Operation, tuple[frozenset[str], frozenset[str]]] = {
    "deploy": (frozenset({"sha"}) | _IDEMPOTENT, frozenset()),
    "rollback": (frozenset({"sha"}) | _IDEMPOTENT, frozenset({"pin", "reason"})),
    "pin": (frozenset({"reason"}) | _IDEMPOTENT, frozenset()),
    "unpin": (_IDEMPOTENT, frozenset({"reason"})),
    "plan": (frozenset({"for"}), frozenset({"sha"})),
}


class InvalidOperatorRequest(ValueError):
    """The payload is not a valid operator request; the message names the field and the problem."""


@dataclass(frozen=True)
class OperatorRequest:
    operation: Operation
    app: str
    env: str
    # deploy: the commit; rollback: its target, resolved by the command beforehand (`plan`), never
    # recomputed here; plan: the SHA the operator named, if any.
    sha: str | None = None
    reason: str | None = None
    pin: bool = True  # rollback only: pin the environment (False with --no-pin)
    identity: Mapping[str, Any] | None = None  # the signed sts:GetCallerIdentity request (adapters/identity.py)
    request_id: str | None = None  # changes: made by the command; a repeat gets the first outcome
    expect_current_tag: str | None = None  # changes: the environment's tag when the command planned
    planned_for: Change | None = None  # plan: the change being prepared


def is_operator_request(event: Any) -> bool:
    return isinstance(event, dict) and OPERATION_KEY in event


def parse_operator_request(event: Mapping[str, Any]) -> OperatorRequest:
    """Validate an operator payload. Unknown fields are refused, not ignored: a typo must not change
    what an operator believes they asked for."""
    operation = event.get(OPERATION_KEY)
    if operation not in OPERATIONS:
        raise InvalidOperatorRequest(f"{OPERATION_KEY} must be one of {', '.join(OPERATIONS)}, got {operation!r}")
    required, optional = _FIELDS[operation]
    unknown = set(event) - _COMMON - required - optional
    if unknown:
        raise InvalidOperatorRequest(f"unknown field(s) for {operation}: {', '.join(sorted(unknown))}")
    missing = [name for name in ("app", "env", *sorted(required)) if name not in event]
    if missing:
        raise InvalidOperatorRequest(
            f"{operation} needs the field(s) {', '.join(missing)}"
            + ("; is the tagrelay command older than the function?" if set(missing) & _IDEMPOTENT else "")
        )
    app = _name(event, "app")
    env = _name(event, "env")
    sha = event.get("sha")
    if sha is not None and not (isinstance(sha, str) and _SHA.match(sha)):
        raise InvalidOperatorRequest(f"sha must be 7 to 40 lower-case hexadecimal characters, got {sha!r}")
    reason = event.get("reason")
    if reason is not None:
        reason = validate_reason(reason)
    pin = event.get("pin", True)
    if not isinstance(pin, bool):
        raise InvalidOperatorRequest(f"pin must be true or false, got {pin!r}")
    identity = event.get(IDENTITY_KEY)
    if identity is not None and not isinstance(identity, dict):
        raise InvalidOperatorRequest("identity must be an object (the signed sts:GetCallerIdentity request)")
    request_id = event.get("request_id")
    if request_id is not None and not (isinstance(request_id, str) and _REQUEST_ID.match(request_id)):
        raise InvalidOperatorRequest(
            f"request_id must be 8 to 64 letters, digits and '-', starting with a letter or digit, got {request_id!r}"
        )
    expected = event.get("expect_current_tag")
    if expected is not None and not (
        isinstance(expected, str) and 0 < len(expected) <= MAX_TAG_LENGTH and expected.isprintable()
    ):
        raise InvalidOperatorRequest(
            f"expect_current_tag must be the environment's current tag (a printable string) or null, got {expected!r}"
        )
    planned_for = event.get("for")
    if operation == "plan" and planned_for not in CHANGES:
        raise InvalidOperatorRequest(f"for must be one of {', '.join(CHANGES)}, got {planned_for!r}")
    return OperatorRequest(operation, app, env, sha, reason, pin, identity, request_id, expected, planned_for)


def request_binding(payload: Mapping[str, Any]) -> str:
    """SHA-256 of the request without its identity, in canonical JSON.

    The CLI signs it into the identity proof (a signed header STS ignores), so a proof made for one
    request cannot be replayed with another: pin and deploy, prod and staging differ.
    """
    fields = {key: value for key, value in payload.items() if key != IDENTITY_KEY}
    canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode("ascii")).hexdigest()


def release_tag_for(sha: str, env: str, pattern: re.Pattern[str]) -> ReleaseTag:
    """The release tag CI pushes for a commit: ``abc1234`` for the bare grammar, ``prod-abc1234`` when
    the grammar names the environment. Checked against the app's own pattern, so a grammar of another
    shape is refused instead of guessed at."""
    short = sha[:SHORT_SHA_LENGTH]
    candidate = f"{env}-{short}" if "env" in pattern.groupindex else short
    release = parse_release_tag(candidate, pattern)
    if release is None or not sha.startswith(release.sha) or release.env not in (None, env):
        raise ValueError(
            f"cannot derive the release tag of {short} for {env}: {candidate!r} does not match the app's "
            f"tag_pattern {pattern.pattern!r}"
        )
    return release


def rollback_target(deployments: Iterable[DecisionRecord], current: EnvironmentState) -> DecisionRecord | None:
    """The last deployment that reached SUCCEEDED before the current one, newest first.

    ``deployments`` are one environment's committed records, newest first, from the current one back.
    Skipped: deployments of the tag running now, and any deployment that a rollback reverted (the one
    just before a rollback record) — going "back" to a release someone already rolled back would undo
    their decision.
    """
    newer: DecisionRecord | None = None
    reached_current = current.current_decision_id is None
    for record in deployments:
        if not reached_current:
            reached_current = record.decision_id == current.current_decision_id
            newer = record
            continue
        reverted = newer is not None and newer.trigger == "rollback"
        newer = record
        if reverted or record.tag is None or record.tag == current.current_tag:
            continue
        if record.status == DeploymentState.SUCCEEDED:
            return record
    return None


# What the operator can do about each refusal (shown under the message, and in JSON as "hint").
def hint_for(reason: Reason, operation: Operation, env: str, sha: str | None) -> str | None:
    target = sha or "SHA"
    hints: dict[Reason, str] = {
        Reason.RELEASE_INCOMPLETE: "the release was never pushed completely (or its images were deleted): "
        "check CI's image pushes, or choose another SHA",
        Reason.SIGNATURE_MISSING: "the images carry no signature by the configured identity yet: check CI's "
        "cosign step, or retry once the signatures are uploaded",
        Reason.SIGNATURE_INVALID: "the images are signed by someone else, or the signature does not match: "
        "do not deploy this release; investigate it",
        Reason.COMMIT_NOT_FOUND: "check the SHA against the source repository (git log); if it is there, give the "
        "full 40-character SHA (GitHub answers a short SHA that more than one commit starts with as unknown)",
        Reason.COMMIT_NOT_ON_BRANCH: f"only commits of {env}'s branch deploy to {env}: merge it first",
        Reason.NEWER_COMMIT_DEPLOYED: f"to go back on purpose, run: tagrelay rollback --env {env} --to {target}",
        Reason.ENVIRONMENT_PINNED: f"run 'tagrelay unpin --env {env}' first (the next push then promotes as usual), "
        f"or 'tagrelay rollback --env {env} --to {target}' to deploy it and keep {env} pinned",
        Reason.VALUES_FILE_MISSING: "create the environment's values file in the GitOps repository first",
        Reason.VALUES_FILE_INVALID: "fix the values file by hand; tagrelay does not rewrite it",
        Reason.VALUES_FILE_TOO_LARGE: "split the values file, or raise limits.values_file_max_bytes",
        Reason.TAGS_MUTABLE: "run the aws ecr put-image-tag-mutability command in the message, or accept the risk "
        "with allow_mutable_tags: true (docs/integrity.md)",
        Reason.TAG_MOVED: "the release tag now points at another image: do not deploy it; find the push in CloudTrail "
        "(docs/integrity.md)",
        Reason.NOT_DESCENDANT: "the release does not contain what the environment runs; merge first, or roll back "
        f"on purpose: tagrelay rollback --env {env} --to {target}",
        Reason.SIGNATURE_COMMIT_UNBOUND: "re-sign the digest with `cosign sign --key <key> -a git-sha=<full commit SHA>`",
        Reason.RESPONSE_TOO_LARGE: "the registry answered more than tagrelay reads (limits in docs/configuration.md)",
        Reason.NO_DEPLOYMENT_RECORDED: f"name the release: tagrelay rollback --env {env} --to SHA",
        Reason.NO_EARLIER_SUCCESS: f"name the release: tagrelay rollback --env {env} --to SHA "
        "(tagrelay history --env ENV lists the earlier deployments)",
        Reason.IDENTITY_MISSING: "run the tagrelay command, which signs the request with your AWS credentials",
        Reason.IDENTITY_INVALID: "check your AWS credentials (aws sts get-caller-identity) and run the command again",
        Reason.IDENTITY_REFUSED: "check your AWS credentials (aws sts get-caller-identity) and run the command again",
        Reason.NOT_ALLOWED: f"ask for your role to be listed under operators.principals.{env} in the configuration",
        Reason.IMAGE_ARCHIVED: "restore the archived image(s) with the command in the message, wait until ECR says ACTIVE, "
        "then run the command again; or choose another release",
        Reason.PRECONDITION_FAILED: f"someone changed {env} since the command looked: check 'tagrelay status --env {env}' "
        "and run the command again (it then acts on what runs now)",
        Reason.IDENTITY_REPLAYED: "each request carries a proof of its own: run the tagrelay command again",
        Reason.REQUEST_ID_REUSED: "a request id names one request: run the tagrelay command again (it makes a new id)",
    }
    if reason is Reason.NEWER_COMMIT_DEPLOYED and operation == "rollback":
        return None
    return hints.get(reason)


def _name(event: Mapping[str, Any], field: str) -> str:
    value = event.get(field)
    if not isinstance(value, str) or not _NAME.match(value):
        raise InvalidOperatorRequest(
            f"{field} must be a configured name (lower-case letters, digits, '-'), got {value!r}"
        )
    return value


def validate_reason(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidOperatorRequest("reason must be a non-empty string")
    if len(value) > MAX_REASON_LENGTH:
        raise InvalidOperatorRequest(f"reason is longer than {MAX_REASON_LENGTH} characters")
    if any(ord(char) < 32 or ord(char) == 127 for char in value):
        raise InvalidOperatorRequest("reason must be one line of text, without control characters")
    return value.strip()


# --------------------------------------------------------------------------------------------------
# Who may act on an environment (operators.principals).


def principal_allowed(arn: str, allowed: Sequence[str]) -> bool:
    """Is the caller one of ``allowed``? An IAM role ARN also matches its sessions
    (``arn:aws:sts::<account>:assumed-role/<name>/<session>``; STS drops the role's path); ``*`` at the
    end of an entry matches any suffix (e.g. ``arn:aws:sts::123456789012:assumed-role/oncall/*``)."""
    for entry in allowed:
        if entry == arn or (entry.endswith("*") and arn.startswith(entry[:-1])):
            return True
        role = re.match(r"^arn:(?P<partition>[^:]+):iam::(?P<account>\d{12}):role/(?:.*/)?(?P<name>[^/]+)$", entry)
        if role and arn.startswith(f"arn:{role['partition']}:sts::{role['account']}:assumed-role/{role['name']}/"):
            return True
    return False


# --------------------------------------------------------------------------------------------------
# What a request comes to: pure rules over what the configuration, the ledger, the values file and the
# promoter's evaluation said. services/operate.py gathers those facts and answers with what these say;
# a ``judge_*`` answers None when the request may go on, a ``refuse_*`` turns what an adapter raised
# (its text) into the refusal.


@dataclass(frozen=True)
class Answer:
    """What the operator is told: the outcome, its stable reason and the message (docs/cli.md)."""

    outcome: Outcome
    reason: Reason
    message: str

    @property
    def ok(self) -> bool:
        """The operator got what they asked for (or there was nothing to do)."""
        return self.outcome is not Outcome.REFUSED


def refused(reason: Reason, message: str) -> Answer:
    return Answer(Outcome.REFUSED, reason, message)


def refuse_invalid_request(problem: str) -> Answer:
    """A payload parse_operator_request refused (``problem``: its message, naming the field)."""
    return refused(Reason.INVALID_REQUEST, f"invalid operator request: {problem}")


def refuse_unverified_identity(code: str, problem: str) -> Answer:
    """STS did not vouch for the caller (``code``: the IdentityError's reason code, ``problem``: its text)."""
    return refused(Reason(code), f"the caller's identity could not be verified: {problem}")


def judge_principal(arn: str, env: str, allowed: Sequence[str] | None) -> Answer | None:
    """Only the principals listed for ``env`` may act on it (``allowed`` None: no list, IAM alone decides)."""
    if allowed is None or principal_allowed(arn, allowed):
        return None
    return refused(Reason.NOT_ALLOWED, f"{arn} may not act on {env} (operators.principals)")


def judge_app(app: str, configured: Collection[str]) -> Answer | None:
    if app in configured:
        return None
    return refused(Reason.UNKNOWN_APP, f"no app {app!r}; configured: {', '.join(configured)}")


def judge_environment(app: str, env: str, configured: Collection[str]) -> Answer | None:
    if env in configured:
        return None
    return refused(Reason.UNKNOWN_ENVIRONMENT, f"{app} has no environment {env!r}; configured: {', '.join(configured)}")


def judge_request_id(request_id: str, *, fingerprint: str, earlier_fingerprint: str | None) -> Answer | None:
    """A request id names one request: a repeat must carry the same request (``fingerprint``: its
    request_binding; ``earlier_fingerprint``: the one recorded with the id, None the first time)."""
    if earlier_fingerprint is None or earlier_fingerprint == fingerprint:
        return None
    return refused(
        Reason.REQUEST_ID_REUSED, f"request id {request_id} was used for another request; nothing was changed"
    )


def judge_plan(planned_for: Change | None, sha: str | None) -> Answer | None:
    """A rollback's target may be found (the last success before the current one); a deploy's must be named."""
    if planned_for == "deploy" and not sha:
        return refused(Reason.INVALID_REQUEST, "a deploy names the commit to deploy (sha)")
    return None


def refuse_values_file_missing(problem: str) -> Answer:
    """The environment's values file does not exist (``problem``: what the GitOps store said)."""
    return refused(Reason.VALUES_FILE_MISSING, f"{problem}; create it first")


def refuse_values_file_unreadable(env: str, problem: str) -> Answer:
    """The values file is no text or no values file tagrelay can read (``problem``: what the parser said)."""
    return refused(Reason.VALUES_FILE_INVALID, f"the values file of {env} cannot be read: {problem}")


def judge_still_current(env: str, *, expected_tag: str | None, current_tag: str | None) -> Answer | None:
    """A change acts only on what the command saw when it planned: the promoter's own precondition rule."""
    stale = judge_precondition(env, expected_tag=expected_tag, current_tag=current_tag)
    if stale is None or stale.reason is None:
        return None
    return refused(stale.reason, stale.decision_message)


def judge_release_tag(sha: str, env: str, pattern: re.Pattern[str]) -> ReleaseTag | Answer:
    """The release tag of ``sha`` for ``env`` (release_tag_for), or the refusal when the app's grammar
    gives none."""
    try:
        return release_tag_for(sha, env, pattern)
    except ValueError as exc:
        return refused(Reason.TAG_NOT_DERIVABLE, str(exc))


def judge_rollback_source(app: str, env: str, state: EnvironmentState | None) -> Answer | None:
    """A rollback without a target goes back from the current deployment: one must be recorded."""
    if state is not None and state.current_decision_id is not None and state.committed_at is not None:
        return None
    return refused(
        Reason.NO_DEPLOYMENT_RECORDED,
        f"no deployment of {app}/{env} is recorded, so there is no earlier one to go back to",
    )


def default_rollback_release(
    app: str, env: str, deployments: Iterable[DecisionRecord], current: EnvironmentState, pattern: re.Pattern[str]
) -> ReleaseTag | Answer:
    """The release a rollback without a target goes back to (rollback_target), or why there is none."""
    target = rollback_target(deployments, current)
    if target is None or target.tag is None:
        return refused(
            Reason.NO_EARLIER_SUCCESS,
            f"no deployment of {env} reached SUCCEEDED before the current one ({current.current_tag})",
        )
    release = parse_release_tag(target.tag, pattern)
    if release is None:
        return refused(Reason.NO_EARLIER_SUCCESS, f"{target.tag} no longer matches {app}'s tag_pattern")
    return release


# Verdicts of the promoter's evaluation that give a deploy or rollback what it asked for.
_DONE = {Verdict.PROMOTE: Outcome.COMMITTED, Verdict.NOOP: Outcome.NOOP}


def judge_evaluated(env: str, tag: str | None, verdict: Verdict, reason: Reason, message: str) -> Answer:
    """A deploy or rollback is the promoter's decision for ``env``: done when it committed (or the
    environment already runs the tag), else refused with the decision's own reason and message."""
    if verdict is Verdict.NOOP:
        return Answer(Outcome.NOOP, reason, f"{env} already runs {tag}; nothing to commit")
    return Answer(_DONE.get(verdict, Outcome.REFUSED), reason, message)


def answer_completed_earlier(tag: str | None, gitops_commit: str | None) -> Answer:
    """A repeat of a request whose first attempt committed (and then failed): that commit is the answer."""
    message = f"completed: an earlier attempt of this request committed {tag} as {(gitops_commit or '')[:12]}"
    return Answer(Outcome.COMMITTED, Reason.COMMITTED, message)


def answer_planned(env: str, current_tag: str | None, planned_for: Change | None, target: str) -> Answer:
    return Answer(
        Outcome.PLANNED, Reason.PLANNED, f"{env} runs {current_tag or 'no tag'}; {planned_for} target: {target}"
    )


def answer_pinned(env: str, state: EnvironmentState | None) -> Answer:
    message = (
        f"{env} is pinned at {current_tag_of(state)}: pushes are recorded as skipped until 'tagrelay unpin --env {env}'"
    )
    return Answer(Outcome.PINNED, Reason.ENVIRONMENT_PINNED, message)


def judge_unpin(env: str, state: EnvironmentState | None) -> Answer:
    """Unpinning an environment that is not pinned changes nothing (a no-op, not a refusal)."""
    if state is None or not state.pinned:
        return Answer(Outcome.NOOP, Reason.NOT_PINNED, f"{env} was not pinned; nothing to do")
    message = (
        f"{env} is unpinned (it was pinned by {state.pinned_by}: {state.pin_reason}); the next push promotes as usual"
    )
    return Answer(Outcome.UNPINNED, Reason.ENVIRONMENT_UNPINNED, message)


def current_tag_of(state: EnvironmentState | None) -> str:
    return state.current_tag if state and state.current_tag else "its current tag"
