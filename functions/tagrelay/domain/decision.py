"""The promotion decision: its vocabulary (verdicts, reasons, checks) and the pure rules behind it.

The service (services/promote.py) gathers facts from the registry, GitHub and the ledger; the
judgements about those facts are functions here (the ``judge_*`` rules answer a Ruling, which
Evaluation.apply records), so they can be read and tested without any server.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from tagrelay.domain.facts import SignatureVerdict


class Verdict(StrEnum):
    """What tagrelay decided for one event (and environment). Stable: scripts read it from JSON."""

    PROMOTE = "promote"  # the release is committed to the values file (or would be, in a dry run)
    WAIT = "wait"  # the release is not complete yet; a later push event will re-evaluate it
    IGNORE = "ignore"  # not an event tagrelay acts on
    REJECT = "reject"  # the release may never be promoted as it is (or the event is malformed)
    NOOP = "noop"  # the environment already runs this tag
    SUPERSEDED = "superseded"  # the environment already runs a newer commit
    SKIP = "skip"  # the environment is pinned
    ALERT = "alert"  # a deployed release needs a person: its image was archived (it cannot be pulled)


class Outcome(StrEnum):
    """How a decision is written in the ledger (``outcome``): the verdict's words, and the operator's
    own (refused, planned). Stable: history, DORA and alarms read them."""

    COMMITTED = "committed"
    WAITING = "waiting"
    IGNORED = "ignored"
    REJECTED = "rejected"
    NOOP = "noop"
    SUPERSEDED = "superseded"
    SKIPPED = "skipped"
    ALERT = "alert"
    REFUSED = "refused"  # an operator request that was not carried out (trigger manual/rollback)
    PLANNED = "planned"  # an operator's dry run
    PINNED = "pinned"  # `tagrelay pin` (and a rollback's pin)
    UNPINNED = "unpinned"

    @property
    def is_transient(self) -> bool:
        """Decisions that change nothing and may be made again (history folds repeats of them)."""
        return self in _TRANSIENT


_TRANSIENT = frozenset({Outcome.WAITING, Outcome.NOOP, Outcome.IGNORED})


class Reason(StrEnum):
    """Why: the stable code on every decision, refusal and metric (``DecisionReasons``' reason
    dimension). docs/promotion.md and docs/cli.md say what each means and what to do."""

    # A release that goes ahead, or has nothing to do.
    READY = "ready"
    COMMITTED = "committed"
    PLANNED = "planned"
    ALREADY_DEPLOYED = "already_deployed"
    NEWER_COMMIT_DEPLOYED = "newer_commit_deployed"
    ENVIRONMENT_PINNED = "environment_pinned"
    ENVIRONMENT_UNPINNED = "environment_unpinned"
    PULL_REQUEST_OPEN = "pull_request_open"  # gitops.write: pull_request, and GitHub does not merge it yet
    NOT_PINNED = "not_pinned"
    # Not complete yet, or not an environment's.
    RELEASE_INCOMPLETE = "release_incomplete"
    RELEASE_TAG_NOT_SEEN = "release_tag_not_seen"
    NO_ENVIRONMENT = "no_environment"
    # Signatures.
    SIGNATURE_MISSING = "signature_missing"
    SIGNATURE_INVALID = "signature_invalid"
    SIGNATURE_COMMIT_UNBOUND = "signature_commit_unbound"
    RESPONSE_TOO_LARGE = "response_too_large"
    # The commit and its branch.
    COMMIT_NOT_FOUND = "commit_not_found"
    COMMIT_NOT_ON_BRANCH = "commit_not_on_branch"
    NOT_DESCENDANT = "not_descendant"
    # The values file.
    VALUES_FILE_MISSING = "values_file_missing"
    VALUES_FILE_INVALID = "values_file_invalid"
    VALUES_FILE_TOO_LARGE = "values_file_too_large"
    # Integrity of the images.
    TAGS_MUTABLE = "tags_mutable"
    TAG_MOVED = "tag_moved"
    IMAGE_ARCHIVED = "image_archived"
    IMAGE_ARCHIVED_NOT_DEPLOYED = "image_archived_not_deployed"
    IMAGE_RESTORED = "image_restored"
    # The environment changed under us.
    EXTERNAL_CHANGE = "external_change"
    PRECONDITION_FAILED = "precondition_failed"
    # Events tagrelay does not act on (intake), and malformed ones.
    OTHER_DETAIL_TYPE = "other_detail_type"
    NOT_A_PUSH = "not_a_push"
    PUSH_FAILED = "push_failed"
    STORAGE_CLASS_FAILED = "storage_class_failed"
    UNTAGGED_PUSH = "untagged_push"
    UNKNOWN_REGISTRY = "unknown_registry"
    UNKNOWN_REPOSITORY = "unknown_repository"
    TAG_OUTSIDE_GRAMMAR = "tag_outside_grammar"
    REFERRER_WITHOUT_SUBJECT = "referrer_without_subject"
    REFERRER_STORAGE_CLASS = "referrer_storage_class"
    # A malformed event (domain/events.py's MalformedEvent codes): "malformed_event:<code>".
    MALFORMED_NOT_AN_OBJECT = "malformed_event:not_an_object"
    MALFORMED_BAD_ID = "malformed_event:bad_id"
    MALFORMED_BAD_SOURCE = "malformed_event:bad_source"
    MALFORMED_UNKNOWN_REGISTRY = "malformed_event:unknown_registry"
    MALFORMED_BAD_STORAGE_CLASS = "malformed_event:bad_storage_class"
    MALFORMED_BAD_DETAIL = "malformed_event:bad_detail"
    MALFORMED_BAD_REPOSITORY = "malformed_event:bad_repository"
    MALFORMED_BAD_DIGEST = "malformed_event:bad_digest"
    MALFORMED_BAD_FIELD_TYPE = "malformed_event:bad_field_type"
    MALFORMED_MISSING_FIELD = "malformed_event:missing_field"
    MALFORMED_EMPTY_FIELD = "malformed_event:empty_field"
    MALFORMED_BAD_TIME = "malformed_event:bad_time"
    MALFORMED_FUTURE_TIME = "malformed_event:future_time"
    # Operator requests.
    INVALID_REQUEST = "invalid_request"
    UNKNOWN_APP = "unknown_app"
    UNKNOWN_ENVIRONMENT = "unknown_environment"
    TAG_NOT_DERIVABLE = "tag_not_derivable"
    NO_DEPLOYMENT_RECORDED = "no_deployment_recorded"
    NO_EARLIER_SUCCESS = "no_earlier_success"
    IDENTITY_MISSING = "identity_missing"
    IDENTITY_INVALID = "identity_invalid"
    IDENTITY_REFUSED = "identity_refused"
    IDENTITY_REPLAYED = "identity_replayed"
    IDENTITY_UNVERIFIABLE = "identity_unverifiable"
    NOT_ALLOWED = "not_allowed"
    REQUEST_ID_REUSED = "request_id_reused"


# Which verdict speaks for an event that decided several things (e.g. two environments).
_PRECEDENCE = (
    Verdict.REJECT,
    Verdict.ALERT,
    Verdict.PROMOTE,
    Verdict.SUPERSEDED,
    Verdict.SKIP,
    Verdict.NOOP,
    Verdict.WAIT,
    Verdict.IGNORE,
)

# How each verdict is written in the ledger (the words of the promotion issue).
LEDGER_OUTCOME: dict[Verdict, Outcome] = {
    Verdict.PROMOTE: Outcome.COMMITTED,
    Verdict.WAIT: Outcome.WAITING,
    Verdict.IGNORE: Outcome.IGNORED,
    Verdict.REJECT: Outcome.REJECTED,
    Verdict.NOOP: Outcome.NOOP,
    Verdict.SUPERSEDED: Outcome.SUPERSEDED,
    Verdict.SKIP: Outcome.SKIPPED,
    Verdict.ALERT: Outcome.ALERT,
}


def ledger_outcome(verdict: Verdict, *, by_operator: bool) -> Outcome:
    """How a decision is recorded. An operator's deploy or rollback that waits or is rejected was
    ``refused``, not a release rejected: kept (no later event re-evaluates it), and not counted as a
    security rejection of a release."""
    if by_operator and verdict in (Verdict.WAIT, Verdict.REJECT):
        return Outcome.REFUSED
    return LEDGER_OUTCOME[verdict]


CheckStatus = Literal["pass", "fail", "wait", "skip"]


@dataclass(frozen=True)
class Check:
    """One step of the evaluation and what it found; `tagrelay explain` prints these."""

    name: str
    status: CheckStatus
    detail: str


@dataclass(frozen=True)
class EnvDecision:
    """The decision for one environment (env is None when it was decided before any was known)."""

    env: str | None
    verdict: Verdict
    reason: Reason
    message: str
    previous_tag: str | None = None
    deployed_sha: str | None = None  # for SUPERSEDED: the newer commit the environment holds
    gitops_commit: str | None = None
    gitops_url: str | None = None
    committed_at: str | None = None  # for PROMOTE: when the GitOps commit was made
    pull_request_url: str | None = None  # gitops.write: pull_request: the pull request that carries it


@dataclass
class Evaluation:
    """Everything tagrelay found and decided for one event and one release tag."""

    event_id: str | None
    app: str | None = None
    trigger: str | None = None  # release_tag | branch_tag | signature | manual
    tag: str | None = None
    sha: str | None = None
    full_sha: str | None = None
    source_branch: str | None = None
    actor: str | None = None
    source_committed_at: datetime | None = None
    digests: dict[str, str] = field(default_factory=dict)
    signers: dict[str, str] = field(default_factory=dict)
    signed_commits: dict[str, str] = field(default_factory=dict)  # image -> commit its signature binds
    tag_policy: str | None = None  # "immutable" | "mutable (allow_mutable_tags)", once checked
    promoted_digests: dict[str, str] = field(default_factory=dict)  # tag_moved: what the tag was promoted as
    checks: list[Check] = field(default_factory=list)
    decisions: list[EnvDecision] = field(default_factory=list)

    def check(self, name: str, status: CheckStatus, detail: str) -> None:
        self.checks.append(Check(name, status, detail))

    def decide(self, env: str | None, verdict: Verdict, reason: Reason, message: str, **facts: str | None) -> None:
        self.decisions.append(EnvDecision(env, verdict, reason, message, **facts))

    def apply(self, name: str, ruling: Ruling, envs: Iterable[str | None], **facts: str | None) -> bool:
        """Record a check's ruling and, when it decides, that decision for each of ``envs``. True when
        it decided (the evaluation stops there)."""
        self.check(name, ruling.status, ruling.detail)
        return self.rule(ruling, envs, **facts)

    def rule(self, ruling: Ruling, envs: Iterable[str | None], **facts: str | None) -> bool:
        """Record a ruling's decision for each of ``envs``, and no check: a finding about what an
        environment runs (services/reconcile.py) is no step of a release's evaluation. True when it decided."""
        if ruling.verdict is None or ruling.reason is None:
            return False
        for env in envs:
            self.decide(env, ruling.verdict, ruling.reason, ruling.decision_message, **facts)
        return True

    @property
    def verdict(self) -> Verdict:
        return summary_verdict([d.verdict for d in self.decisions])

    @property
    def headline(self) -> EnvDecision:
        """The decision that speaks for the whole evaluation."""
        verdict = self.verdict
        return next(d for d in self.decisions if d.verdict is verdict)


def summary_verdict(verdicts: list[Verdict]) -> Verdict:
    for verdict in _PRECEDENCE:
        if verdict in verdicts:
            return verdict
    raise ValueError("an evaluation must decide something")


def missing_images(resolved: Mapping[str, str | None]) -> list[str]:
    """Release readiness: the images of the app that do not carry the tag yet."""
    return [image for image, digest in resolved.items() if digest is None]


def environments_for_digest(branch_heads: Mapping[str, str | None], digest: str) -> list[str]:
    """Bare tags: the environments whose branch tag points at the same digest as the release tag."""
    return [env for env, head in branch_heads.items() if head == digest]


def reachable_from_branch(compare_status: str) -> bool:
    """GitHub compare(base=candidate, head=branch): the branch contains the candidate commit."""
    return compare_status in ("identical", "ahead")


def candidate_is_older(compare_status: str) -> bool:
    """GitHub compare(base=deployed, head=candidate): 'behind' means the candidate is an ancestor."""
    return compare_status == "behind"


def candidate_descends(compare_status: str) -> bool:
    """GitHub compare(base=deployed, head=candidate): only 'ahead' (or the same commit) means the
    candidate contains everything the environment runs; 'diverged' would drop some of it."""
    return compare_status in ("ahead", "identical")


def moved_images(promoted: Mapping[str, str], current: Mapping[str, str]) -> dict[str, tuple[str, str]]:
    """Images whose release tag now points at another digest than the one tagrelay promoted:
    image -> (promoted digest, current digest)."""
    return {
        image: (digest, current[image])
        for image, digest in promoted.items()
        if image in current and current[image] != digest
    }


# --------------------------------------------------------------------------------------------------
# The rules of the checks: pure functions over what the registry, GitHub and the ledger said. Each
# answers a Ruling; the service records it (Evaluation.apply) and stops at the first that decides.


@dataclass(frozen=True)
class Ruling:
    """What one check found: its status and detail, and, when it decides, the verdict and reason."""

    status: CheckStatus
    detail: str
    verdict: Verdict | None = None  # None: the evaluation goes on
    reason: Reason | None = None
    message: str | None = None  # the decision's message, when it says more or other than the check's detail

    @property
    def decides(self) -> bool:
        return self.verdict is not None

    @property
    def decision_message(self) -> str:
        return self.detail if self.message is None else self.message

    def recorded_as(self) -> tuple[Outcome, Reason, str]:
        """How a ruling that decides is written in the ledger on its own (an alert, a no-op): outcome,
        reason, message."""
        if self.verdict is None or self.reason is None:
            raise ValueError(f"a ruling that decides nothing is not recorded: {self.detail}")
        return LEDGER_OUTCOME[self.verdict], self.reason, self.decision_message


def judge_tag_moved(tag: str, moved: Mapping[str, tuple[str, str]], *, running_in: str | None = None) -> Ruling:
    """A release tag tagrelay committed before must still point at the digests it committed
    (``moved``: image -> (promoted digest, current digest), from ``moved_images``). ``running_in``: the
    environment that runs the tag, when the sweep found the move (services/reconcile.py), not a release."""
    if not moved:
        return Ruling("pass", f"{tag} still points at the digests it was promoted with")
    if running_in is not None:
        what = "; ".join(
            f"{image} was deployed as {old} and now points at {new}" for image, (old, new) in moved.items()
        )
        message = (
            f"{running_in} runs {tag}, and the tag moved: {what}. A pod started now would pull an image tagrelay "
            "never verified. Find who pushed it (CloudTrail PutImage), restore the tag or deploy another release"
        )
        return Ruling("fail", message, Verdict.REJECT, Reason.TAG_MOVED)
    what = "; ".join(f"{image} was promoted as {old} and now points at {new}" for image, (old, new) in moved.items())
    message = (
        f"release tag {tag} moved: {what}. A pod started now would pull an image tagrelay never "
        f"verified. Find who pushed it (CloudTrail PutImage), restore the tag or redeploy another release; "
        f"tagrelay will not commit {tag} again while it points elsewhere"
    )
    return Ruling("fail", message, Verdict.REJECT, Reason.TAG_MOVED)


def judge_tag_mutability(tag: str, problems: Mapping[str, str], *, app: str, allow_mutable_tags: bool) -> Ruling:
    """ECR must not let the release tag be overwritten, unless the app accepts the risk
    (``problems``: image -> why its release tags are not protected, with the fix)."""
    if not problems:
        return Ruling("pass", f"ECR keeps {tag} on its digest in every repository")
    listing = "; ".join(f"{image}: {problem}" for image, problem in problems.items())
    if allow_mutable_tags:
        return Ruling("skip", f"risk accepted (allow_mutable_tags: true): {listing}")
    message = (
        f"release tags can be overwritten, so the image verified now may not be the one that runs: {listing}. "
        f"Or accept the risk with apps.{app}.allow_mutable_tags: true"
    )
    return Ruling("fail", message, Verdict.REJECT, Reason.TAGS_MUTABLE)


def judge_signatures(verdicts: Mapping[str, SignatureVerdict], *, overdue: str | None) -> Ruling:
    """Every image must carry an acceptable signature. Invalid ones reject (with the one fixable
    reason when all say the same); missing ones wait, until ``overdue`` (how long since the release
    tag was first seen, once past the grace window) makes them a rejection: fail closed."""
    invalid = {image: v for image, v in verdicts.items() if v.status == "invalid"}
    if invalid:
        message = "; ".join(f"{image}: {v.reason}" for image, v in invalid.items())
        codes = {v.code for v in invalid.values()}
        only = next(iter(codes)) if len(codes) == 1 else None
        return Ruling("fail", message, Verdict.REJECT, only or Reason.SIGNATURE_INVALID)
    missing = {image: v for image, v in verdicts.items() if v.status == "missing"}
    if missing:
        message = "; ".join(f"{image}: {v.reason}" for image, v in missing.items())
        if overdue is not None:
            message = f"{message} (still unsigned {overdue} after the release tag was first seen)"
            return Ruling("fail", message, Verdict.REJECT, Reason.SIGNATURE_MISSING)
        return Ruling("wait", message, Verdict.WAIT, Reason.SIGNATURE_MISSING)
    if all(v.status == "not_required" for v in verdicts.values()):
        return Ruling("skip", "not verified: the app's policy is 'signature: none'")
    return Ruling("pass", "; ".join(f"{image}: {v.signer or 'unknown'}" for image, v in verdicts.items()))


def judge_order(
    env: str, deployed_tag: str, deployed_sha: str, candidate_sha: str, compare_status: str | None, *, manual: bool
) -> Ruling:
    """Descendants only: the candidate must contain the commit the environment runs (``compare_status``:
    GitHub's compare(base=deployed, head=candidate); None when GitHub knows no such deployed commit, e.g.
    after a hand edit, so there is nothing to order against). Older is superseded; diverged is refused,
    except for a manual deploy, which records it and goes on."""
    if compare_status is None:
        return Ruling("skip", f"deployed tag {deployed_tag} names no known commit")
    if candidate_is_older(compare_status):
        message = f"{env} runs {deployed_tag}, a newer commit than {candidate_sha[:12]}; not going back"
        return Ruling("fail", message, Verdict.SUPERSEDED, Reason.NEWER_COMMIT_DEPLOYED)
    if not candidate_descends(compare_status):
        message = (
            f"{candidate_sha} does not descend from {deployed_sha} ({deployed_tag}, what {env} runs): GitHub "
            f"compare says {compare_status!r}, so promoting it would drop commits {env} has"
        )
        if manual:
            return Ruling("skip", f"{message}; deployed anyway: a manual deploy")
        return Ruling("fail", message, Verdict.REJECT, Reason.NOT_DESCENDANT)
    return Ruling("pass", f"{candidate_sha[:12]} is {compare_status} of deployed {deployed_tag}")


def judge_rollback_order() -> Ruling:
    """A rollback goes back on purpose: the no-downgrade guard (judge_order) does not apply to it."""
    return Ruling("skip", "a rollback: the no-downgrade guard does not apply")


def judge_archive(env: str, inactive: Mapping[str, tuple[str, str]], images: int) -> Ruling:
    """An archived image cannot be pulled until it is restored: never commit a release that has one
    (``inactive``: image -> (digest, ECR image status) for each image that is not ACTIVE)."""
    if not inactive:
        return Ruling("pass", f"all {images} images are ACTIVE in ECR")
    message = (
        "; ".join(f"{image}@{digest} is {status} in ECR" for image, (digest, status) in inactive.items())
        + ": an archived image cannot be pulled until it is restored. Restore it with "
        + "; ".join(
            f"aws ecr update-image-storage-class --repository-name {image} --image-id imageDigest={digest} "
            "--target-storage-class STANDARD"
            for image, (digest, _status) in inactive.items()
        )
        + ", wait until it is ACTIVE again, then run this again"
    )
    return Ruling("fail", message, Verdict.REJECT, Reason.IMAGE_ARCHIVED)


def judge_unarchivable(registry: str) -> Ruling:
    """A registry that is not ECR archives nothing: the archive check does not apply."""
    return Ruling("skip", f"{registry} is not ECR: images are never archived")


def judge_pin(env: str, *, pinned: bool, pin_reason: str | None) -> Ruling | None:
    """A pinned environment takes no release until it is unpinned (None: not pinned, nothing to record)."""
    if not pinned:
        return None
    message = f"{env} is pinned ({pin_reason or 'no reason given'}); run `tagrelay unpin --env {env}`"
    return Ruling("skip", message, Verdict.SKIP, Reason.ENVIRONMENT_PINNED)


# --- the event and its release tag ---


def judge_malformed_event(problem: str, reason: Reason) -> Ruling:
    """An event that cannot be read is refused (``problem``, ``reason``: what intake found wrong)."""
    return Ruling("fail", problem, Verdict.REJECT, reason)


def judge_ignored_event(why: str, reason: Reason) -> Ruling:
    """An event tagrelay does not act on (``why``, ``reason``: what intake found it to be)."""
    return Ruling("skip", why, Verdict.IGNORE, reason)


def judge_referrer_without_subject(repository: str, digest: str) -> Ruling:
    """A referrer (a cosign v3 bundle) whose manifest names no subject image signs nothing to evaluate."""
    message = f"referrer {repository}@{digest} names no subject image"
    return Ruling("skip", message, Verdict.IGNORE, Reason.REFERRER_WITHOUT_SUBJECT)


def judge_release_tag_not_seen(repository: str, digest: str) -> Ruling:
    """A branch-tag or signature push for a digest whose release tag the ledger has not seen: the
    release-tag push (which may come later) evaluates the release."""
    message = (
        f"no release tag has been pushed for {repository}@{digest[:19]}… yet; "
        "its release-tag push will evaluate the release"
    )
    return Ruling("wait", message, Verdict.WAIT, Reason.RELEASE_TAG_NOT_SEEN)


# --- release-wide: readiness and environments ---


def judge_readiness(tag: str, resolved: Mapping[str, str | None]) -> Ruling:
    """Every image of the app must carry the release tag (``resolved``: image -> the digest the
    registry resolved the tag to, None when the image has no such tag yet)."""
    missing = missing_images(resolved)
    if missing:
        message = f"{', '.join(missing)} {'has' if len(missing) == 1 else 'have'} no tag {tag} yet"
        return Ruling("wait", message, Verdict.WAIT, Reason.RELEASE_INCOMPLETE)
    return Ruling("pass", f"all {len(resolved)} images carry {tag}")


def judge_event_digest(tag: str, event_digest: str, current_digest: str | None) -> Ruling | None:
    """The release is evaluated from the digest its tag points at now, which may no longer be the one
    the event named (None: the same, nothing to record)."""
    if current_digest in (None, event_digest):
        return None
    return Ruling("skip", f"{tag} moved since the event; evaluating its current digest")


def judge_named_environment(env: str, *, by_operator: bool) -> Ruling:
    """The environment is named, by the operator's request or by the release tag's prefix."""
    return Ruling("pass", f"{env} (named by the operator)" if by_operator else f"{env} (from the tag's prefix)")


def judge_branch_tags(tag: str, image: str, branches: Mapping[str, str], matched: Sequence[str]) -> Ruling:
    """A bare release tag goes to the environments whose branch tag points at its digest (``branches``:
    env -> branch, every environment of the app; ``matched``: those whose branch tag of ``image`` does,
    from environments_for_digest). None yet: wait for a branch-tag push."""
    if not matched:
        message = f"no branch tag ({', '.join(branches.values())}) of {image} points at {tag}'s digest yet"
        return Ruling("wait", message, Verdict.WAIT, Reason.NO_ENVIRONMENT)
    return Ruling("pass", ", ".join(f"{env} (tag {branches[env]})" for env in matched))


# --- per environment: the values file ---


def judge_values_file_missing(problem: str) -> Ruling:
    """The environment's values file does not exist (``problem``: what GitHub said): tagrelay edits a
    file, it never creates one."""
    return Ruling("fail", problem, Verdict.REJECT, Reason.VALUES_FILE_MISSING, message=f"{problem}; create it first")


def judge_values_file_too_large(problem: str, max_bytes: int) -> Ruling:
    """The values file is larger than tagrelay reads (``problem``: what the read said)."""
    message = (
        f"{problem}: tagrelay edits values files up to limits.values_file_max_bytes ({max_bytes} bytes); "
        "split the file, or raise the limit"
    )
    return Ruling("fail", message, Verdict.REJECT, Reason.VALUES_FILE_TOO_LARGE)


def judge_values_file_invalid(location: str, problem: str) -> Ruling:
    """The values file cannot be edited as one line (``problem``: what its format found, e.g. not UTF-8,
    no such key): it is a person's to fix, never rewritten."""
    message = f"{location} {problem}; fix the file by hand, tagrelay will not rewrite it"
    return Ruling("fail", message, Verdict.REJECT, Reason.VALUES_FILE_INVALID)


def judge_already_deployed(path: str, field: str, tag: str, *, recovered_commit: str | None) -> Ruling:
    """The values file already holds the tag: a no-op, or, when ``recovered_commit`` is tagrelay's own
    commit of this tag whose record was lost (the healer recovered it), that deployment."""
    if recovered_commit is not None:
        return Ruling(
            "pass",
            f"already at {tag} by our commit {recovered_commit}",
            Verdict.PROMOTE,
            Reason.COMMITTED,
            message=f"recovered the record of commit {recovered_commit[:12]}",
        )
    message = f"{path} already sets {field} to {tag}"
    return Ruling("skip", message, Verdict.NOOP, Reason.ALREADY_DEPLOYED)


def judge_precondition(env: str, *, expected_tag: str | None, current_tag: str | None) -> Ruling | None:
    """An operator change acts only on the state it was prepared against: the file must still hold the
    tag the command saw (None: it does, nothing to record)."""
    if current_tag == expected_tag:
        return None
    message = (
        f"{env} now runs {current_tag or 'no tag'}, not {expected_tag or 'no tag'} as when "
        "the command was prepared: nothing was changed; run the command again to act on what runs now"
    )
    return Ruling("fail", message, Verdict.REJECT, Reason.PRECONDITION_FAILED)


# --- the source commit and its branch ---


def judge_commit_not_found(sha: str, repo: str, problem: str) -> Ruling:
    """The tag's SHA is no commit of the source repository (``problem``: what GitHub said)."""
    return Ruling("fail", f"{sha} is not a commit of {repo} ({problem})", Verdict.REJECT, Reason.COMMIT_NOT_FOUND)


def judge_commit(sha: str, commit_sha: str, *, subject: str, author: str, requested_sha: str | None) -> Ruling:
    """The commit the tag's ``sha`` resolves to. An operator's longer SHA must be a prefix of it: it
    can only name its own commit."""
    if requested_sha and not commit_sha.startswith(requested_sha):
        message = f"{requested_sha} is not a prefix of {commit_sha}, the commit {sha} names"
        return Ruling("fail", message, Verdict.REJECT, Reason.COMMIT_NOT_FOUND)
    return Ruling("pass", f"{sha} is {commit_sha} ({subject!r} by {author})")


def judge_signature_binding(tag: str, sha: str, commit_sha: str, signed_commits: Mapping[str, str]) -> Ruling | None:
    """Every signature that names a commit (``signed_commits``: image -> that commit, as signed) names
    this one, at least as precisely as the tag's ``sha`` (None: they do, nothing to record). A commit
    that only shares the tag's short prefix is another commit."""
    unbound = {
        image: signed
        for image, signed in signed_commits.items()
        if not commit_sha.startswith(signed) or len(signed) < len(sha)
    }
    if not unbound:
        return None
    what = "; ".join(f"{image} is signed for commit {signed}" for image, signed in unbound.items())
    message = f"{tag} resolves to {commit_sha}, but {what}; sign the release's own commit"
    return Ruling("fail", message, Verdict.REJECT, Reason.SIGNATURE_INVALID)


def judge_branch(branch: str, commit_sha: str, compare_status: str) -> Ruling:
    """The commit must be on the environment's branch (``compare_status``: GitHub's
    compare(base=commit, head=branch))."""
    if not reachable_from_branch(compare_status):
        message = f"commit {commit_sha[:12]} is not on branch {branch} (GitHub compare says {compare_status!r})"
        return Ruling("fail", message, Verdict.REJECT, Reason.COMMIT_NOT_ON_BRANCH)
    return Ruling("pass", f"{branch} contains {commit_sha[:12]}")


# --- per environment: the write ---


def judge_dry_run(field: str, tag: str) -> Ruling:
    """Every check passed, and nothing is written: what the commit would do (`tagrelay explain`)."""
    return Ruling(
        "pass", f"would set {field} to {tag}", Verdict.PROMOTE, Reason.READY, message="dry run: nothing written"
    )


def judge_committed(
    repo: str, gitops_commit: str, fields: Sequence[str], tag: str, *, field: str, previous_tag: str | None
) -> Ruling:
    """The GitOps commit was made (``fields``: the keys it changed; ``field``: the format's description)."""
    return Ruling(
        "pass",
        f"{gitops_commit[:12]} sets {', '.join(fields)} to {tag}",
        Verdict.PROMOTE,
        Reason.COMMITTED,
        message=f"{repo}@{gitops_commit[:12]}: {field} {previous_tag!r} -> {tag!r}",
    )


def judge_deployment_already_recorded(repo: str, gitops_commit: str | None) -> Ruling:
    """Another invocation recorded this commit's deployment first (a concurrent or earlier one, or the
    one that healed the state): this event's own decision is a no-op, so every event still ends in a
    decision of its own."""
    message = f"the deployment of {repo}@{(gitops_commit or '')[:12]} was already recorded"
    return Ruling("skip", message, Verdict.NOOP, Reason.ALREADY_DEPLOYED)


def judge_pull_request(url: str, tag: str, *, merged_commit: str | None, github_says: str) -> Ruling:
    """``gitops.write: pull_request``: merged (``merged_commit``) goes on to the commit; otherwise GitHub
    does not allow the merge yet (``github_says``: its reason, e.g. required reviews or checks), and
    the release waits for a later event or the reconcile sweep."""
    if merged_commit is not None:
        return Ruling("pass", f"{url} merged as {merged_commit[:12]}")
    message = (
        f"{url} proposes {tag} and waits: GitHub does not merge it yet ({github_says}); it is merged "
        "once GitHub allows (review it, or let its checks pass), or put the app on the ruleset's bypass list "
        "(docs/deploy.md)"
    )
    return Ruling("wait", message, Verdict.WAIT, Reason.PULL_REQUEST_OPEN)


# --- an image archived or restored in ECR (an ECR storage-class event) ---


def judge_image_restored(repository: str, digest: str) -> Ruling:
    """A restored image can be pulled again: nothing to do."""
    what = f"{repository}@{digest}"
    return Ruling(
        "skip",
        f"{what} was restored to ECR standard storage",
        Verdict.IGNORE,
        Reason.IMAGE_RESTORED,
        message=f"{what} was restored; nothing to do",
    )


def judge_archived_not_deployed(repository: str, digest: str) -> Ruling:
    """An archived image that no environment runs harms no one (a release with it is refused by judge_archive)."""
    message = f"{repository}@{digest} was archived; no environment runs it"
    return Ruling("skip", message, Verdict.IGNORE, Reason.IMAGE_ARCHIVED_NOT_DEPLOYED)


def judge_archived_deployed(env: str, tag: str, repository: str, digest: str) -> Ruling:
    """An environment runs an archived image: a person must act, since a pod that starts now cannot pull it."""
    return Ruling("fail", archived_deployed_message(env, tag, repository, digest), Verdict.ALERT, Reason.IMAGE_ARCHIVED)


def archived_deployed_message(env: str, tag: str, repository: str, digest: str) -> str:
    return (
        f"{env} runs {tag}, whose image {repository}@{digest} was archived in ECR: a pod that starts now (a "
        f"rescheduled node, a scale-up) cannot pull it. Restore it: aws ecr update-image-storage-class "
        f"--repository-name {repository} --image-id imageDigest={digest} --target-storage-class STANDARD; or "
        f"deploy another release (tagrelay rollback --env {env}); and exclude deployed tags from the lifecycle rule"
    )


# The checks of a release, in the order services/promote.py makes them; the first one not met decides.
# Names as the evaluation records them ("{env}: " for the per-environment ones). docs/promotion.md
# lists the same names in the same order, and tests/operator/test_check_order.py holds the code and
# the document to these lists.
PUSH_CHECK_ORDER = (
    "readiness",
    "moved tag",
    "tag immutability",
    "environment",
    "signatures",
    "{env}: values file",
    "{env}: precondition",
    "commit",
    "{env}: branch",
    "{env}: pin",
    "{env}: order",
    "{env}: archive",
    "{env}: commit",
)
# `tagrelay deploy` and `rollback` name a commit: whether it exists and is on the environment's branch
# comes first (a typo or a develop commit for prod is said as that); its signatures are then bound to it.
OPERATOR_CHECK_ORDER = (
    "commit",
    "{env}: branch",
    "readiness",
    "moved tag",
    "tag immutability",
    "environment",
    "signatures",
    "{env}: values file",
    "{env}: precondition",
    "commit",  # the signatures' commit is the one resolved first
    "{env}: pin",
    "{env}: order",
    "{env}: archive",
    "{env}: commit",
)
