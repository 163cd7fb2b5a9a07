"""The promotion decision: its vocabulary (verdicts, reasons, checks) and the pure rules behind it.

The service (services/promote.py) gathers facts from the registry, GitHub and the ledger; the
judgements about those facts are functions here (the ``judge_*`` rules answer a Ruling, which
Evaluation.apply records), so they can be read and tested without any server.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
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
        if ruling.verdict is None or ruling.reason is None:
            return False
        for env in envs:
            self.decide(env, ruling.verdict, ruling.reason, ruling.detail, **facts)
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

    @property
    def decides(self) -> bool:
        return self.verdict is not None


def judge_tag_moved(tag: str, moved: Mapping[str, tuple[str, str]]) -> Ruling:
    """A release tag tagrelay committed before must still point at the digests it committed
    (``moved``: image -> (promoted digest, current digest), from ``moved_images``)."""
    if not moved:
        return Ruling("pass", f"{tag} still points at the digests it was promoted with")
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
    env: str, deployed_tag: str, deployed_sha: str, candidate_sha: str, compare_status: str, *, manual: bool
) -> Ruling:
    """Descendants only: the candidate must contain the commit the environment runs (``compare_status``:
    GitHub's compare(base=deployed, head=candidate)). Older is superseded; diverged is refused, except
    for a manual deploy, which records it and goes on."""
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


def judge_pin(env: str, *, pinned: bool, pin_reason: str | None) -> Ruling | None:
    """A pinned environment takes no release until it is unpinned (None: not pinned, nothing to record)."""
    if not pinned:
        return None
    message = f"{env} is pinned ({pin_reason or 'no reason given'}); run `tagrelay unpin --env {env}`"
    return Ruling("skip", message, Verdict.SKIP, Reason.ENVIRONMENT_PINNED)


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
