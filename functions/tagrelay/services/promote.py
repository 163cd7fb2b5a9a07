"""promote(event): turn one ECR push event into recorded decisions, and at most one GitOps commit per environment.

Level-triggered: the event only says which digest to look at; the release is then evaluated from
current facts, in this order (domain/decision.py PUSH_CHECK_ORDER, docs/promotion.md §3), stopping at
the first check that is not met:

1. readiness         every image of the app carries the release tag      (registry: 1 HEAD per image)
2. moved tag         the tag still points at the digests tagrelay promoted it with, if it ever did
                                                                          (ledger: 1 read)
3. tag immutability  ECR will not let the release tag be overwritten      (ECR: <= 1 per repository per
                                                                           container per cache period)
4. environment       from the tag's env prefix, or the branch tags that point at the same digest
                                                                          (registry: 1 HEAD per environment)
5. signatures        every digest signed as the app's policy demands      (registry: 2 GETs per image)
6. values file       per environment, read (and edited in memory) before the commit is resolved, so
                     that a duplicate event costs one request             (GitHub: 1 read)
7. precondition      operator requests: the file holds the tag the command saw
8. commit            the short SHA is exactly one commit of the source repo, the signatures' commit
                                                                          (GitHub: 1)
9-12. per environment: branch (GitHub compare), pin (ledger), order: the commit descends from the one
      the file holds (GitHub compare), then a compare-and-swap commit of the one-line edit (GitHub: 1).

Operator requests (services/operate.py: `tagrelay deploy`, `tagrelay rollback`) take the same path
with the environment named instead of resolved, but check the commit and its branch first
(OPERATOR_CHECK_ORDER): an operator names a commit, and a typo (`commit_not_found`) or a develop
commit for prod (`commit_not_on_branch`) must be said as that, not as an incomplete release or a bad
signature; the signatures are then bound to that commit. A refused operator request is recorded as
`refused`, not `rejected`. A rollback also passes the pin (it pins the environment itself) and the
no-downgrade guard, each by an explicit field of its ReleaseRequest.

Every decision is written to the ledger, except in a dry run (`tagrelay explain`), which writes nothing.
"""

from __future__ import annotations

import dataclasses
import logging
import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from tagrelay.config import App, Config
from tagrelay.domain import decision as rules
from tagrelay.domain.commit_message import CommitDetails, Trigger, commit_message
from tagrelay.domain.decision import Evaluation, Verdict
from tagrelay.domain.deployment_events import DeploymentEvent
from tagrelay.domain.events import (
    BranchTagPushed,
    EcrPush,
    Ignored,
    MalformedEvent,
    ReferrerPushed,
    ReleaseTagPushed,
    SignaturePushed,
    StorageClassChanged,
    classify,
)
from tagrelay.domain.events import (
    Trigger as AcceptedEvent,
)
from tagrelay.domain.facts import CommitRef, FileVersion, ReleaseContext, SourceCommit
from tagrelay.domain.gitops_format import GitOpsEdit
from tagrelay.domain.mutability import SIGNATURE_TAG_FILTER, assess, fix_command, safe_exclusions
from tagrelay.domain.outcome import DeploymentState
from tagrelay.domain.records import UNRESOLVED_ENV, DecisionRecord, EnvironmentState, new_decision_id, timestamp
from tagrelay.domain.tags import ReleaseTag, is_digest, parse_release_tag
from tagrelay.domain.values_patch import InvalidEditRequest, ValuesFileError
from tagrelay.errors import (
    CommitNotFound,
    FileNotFound,
    FileTooLarge,
    MisconfiguredError,
    TransientError,
    WriteConflict,
)
from tagrelay.ports import (
    DeploymentLedger,
    GitHost,
    ImageRegistry,
    PullRequestHost,
    RegistryControlPlane,
    SignatureVerifier,
)
from tagrelay.services.heal import EnvironmentHealer
from tagrelay.services.notify import event_from_record

logger = logging.getLogger(__name__)

# Backoff between compare-and-swap attempts: base * 2^attempt, scaled by a random factor in [0.5, 1.5).
CAS_BACKOFF_BASE_SECONDS = 0.1
CAS_BACKOFF_CAP_SECONDS = 2.0


@dataclass
class PromoterDependencies:
    """The outside world, injected so the tests and the CLI can use the local stack."""

    config: Config
    ledger: DeploymentLedger
    github: GitHost
    registry_for: Callable[[App], ImageRegistry]
    verifier_for: Callable[[App], SignatureVerifier]
    # The app's ECR control plane (tag mutability); None when its registry is not ECR.
    ecr_for: Callable[[App], RegistryControlPlane | None] = lambda app: None
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    sleep: Callable[[float], None] = time.sleep
    jitter: Callable[[], float] = random.random
    monotonic: Callable[[], float] = time.monotonic
    # (app, env) -> None, called right after a commit: the Argo CD refresh nudge (runtime.refresh_nudge).
    # It must never raise nor block for long; None when the configuration turns it off.
    refresh_environment: Callable[[str, str], None] | None = None
    # Deployment notifications (runtime.build_notifier): told of each deployment once it is recorded, after
    # the commit. It never raises (services/notify.py retries and counts); None when none is configured.
    publish: Callable[[DeploymentEvent], None] | None = None
    # The GitOps repository's pull requests, for ``gitops.write: pull_request`` (runtime.py gives the
    # same GitHub client as ``github``); None where no app writes through pull requests.
    pull_requests: PullRequestHost | None = None


@dataclass(frozen=True)
class _ValuesSnapshot:
    """The environment's GitOps file as read, and the edited text that would replace it."""

    file: FileVersion
    edit: GitOpsEdit


@dataclass(frozen=True)
class ReleaseRequest:
    """What to evaluate: one release tag of one app, and why."""

    app_name: str
    release: ReleaseTag
    trigger: Trigger
    event_id: str | None
    push: EcrPush | None = None
    actor: str | None = None  # manual deploys: the operator; pushes: the commit's author
    # Operator requests (services/operate.py) name the environment instead of resolving it from branch tags.
    env: str | None = None
    # A rollback goes back on purpose: the no-downgrade guard does not apply to it.
    allow_downgrade: bool = False
    # A rollback pins the environment itself before committing; every other request stops at a pin.
    respect_pin: bool = True
    # Operator changes: the request's id (written into the commit and the record), and the precondition
    # it was computed against: the environment's tag then. If the values file holds another tag now (and
    # not the release's), the change is refused as precondition_failed instead of acting on a new state.
    request_id: str | None = None
    check_precondition: bool = False
    expect_current_tag: str | None = None
    # Operator requests: the SHA exactly as given (7 to 40 characters); the commit must start with it.
    requested_sha: str | None = None


class Promoter:
    def __init__(self, deps: PromoterDependencies, *, dry_run: bool = False) -> None:
        self.deps = deps
        self.config = deps.config
        self.dry_run = dry_run
        self.healer = EnvironmentHealer(deps.config, deps.ledger, deps.github, self._now, deps.pull_requests)
        self._deadline: float | None = None  # deps.monotonic() time by which the invocation ends

    def _now(self) -> datetime:
        # Read through deps each time: tests and the local stack replace the clock after construction.
        return self.deps.clock()

    @contextmanager
    def invocation_deadline(self, deadline: float | None) -> Iterator[None]:
        """While inside, a commit starts only if ``limits.commit_reserve_seconds`` remain before ``deadline``."""
        previous, self._deadline = self._deadline, deadline
        try:
            yield
        finally:
            self._deadline = previous

    def _ensure_time_for_a_commit(self, env: str) -> None:
        if self._deadline is None:
            return
        left = self._deadline - self.deps.monotonic()
        reserve = self.config.limits.commit_reserve_seconds
        if left < reserve:
            raise TransientError(
                "lambda",
                f"only {max(left, 0):.1f}s of the invocation remain, less than the {reserve:g}s a commit to {env} "
                "may need (limits.commit_reserve_seconds): retrying the event rather than starting a commit that "
                "could be cut short",
            )

    # --- entry points ---

    def process(self, event: Any) -> list[Evaluation]:
        """Intake, then evaluation. Malformed and ignored events are decided without any request."""
        try:
            intake = classify(event, self.config, now=self.deps.clock())
        except MalformedEvent as exc:
            evaluation = Evaluation(event_id=None)  # its id is not trusted: it may be what is wrong
            evaluation.apply("event", rules.judge_malformed_event(str(exc), exc.reason), [None])
            return [evaluation]
        if isinstance(intake, Ignored):
            evaluation = Evaluation(event_id=intake.event_id)
            evaluation.apply("event", rules.judge_ignored_event(intake.message, intake.code), [None])
            return [evaluation]
        if isinstance(intake, StorageClassChanged):
            return [self.storage_class_changed(intake)]
        return self.evaluate_trigger(intake)

    def evaluate_trigger(self, trigger: AcceptedEvent) -> list[Evaluation]:
        """An accepted event: find the release tag(s) of its digest and evaluate each."""
        push = trigger.push
        app = self.config.apps[trigger.app_name]
        if isinstance(trigger, ReleaseTagPushed):
            if not self.dry_run:
                # Written before the registry is read, so that a branch or signature event racing
                # with this one always finds the tag (see docs/promotion.md, "event order").
                self.deps.ledger.record_sighting(push.repository, push.digest, trigger.release.tag, self.deps.clock())
            releases = [trigger.release]
        else:
            digest = self._digest_to_evaluate(trigger, app)
            if digest is None:
                evaluation = Evaluation(event_id=push.event_id, app=trigger.app_name, trigger="signature")
                evaluation.apply("referrer", rules.judge_referrer_without_subject(push.repository, push.digest), [None])
                return [evaluation]
            tags = self.deps.ledger.release_tags_for(push.repository, digest)
            releases = [r for t in tags if (r := parse_release_tag(t, app.tag_regex)) is not None]
            if not releases:
                return [self._release_tag_not_seen(trigger, digest)]
        kind = {
            ReleaseTagPushed: "release_tag",
            BranchTagPushed: "branch_tag",
            SignaturePushed: "signature",
            ReferrerPushed: "signature",
        }
        evaluations = []
        for release in releases:
            request = ReleaseRequest(trigger.app_name, release, "push", push.event_id, push)
            evaluation = self.evaluate_release(request)
            evaluation.trigger = kind[type(trigger)]
            evaluations.append(evaluation)
        return evaluations

    def _digest_to_evaluate(self, trigger: BranchTagPushed | SignaturePushed | ReferrerPushed, app: App) -> str | None:
        """The image digest whose release(s) an event asks to re-evaluate."""
        if isinstance(trigger, BranchTagPushed):
            return trigger.push.digest
        if isinstance(trigger, SignaturePushed):
            return trigger.signed_digest
        # A cosign v3 bundle pushed by digest: its manifest's subject is the signed image (one request).
        manifest = self.deps.registry_for(app).get_manifest(trigger.push.repository, trigger.push.digest)
        subject = manifest.document().get("subject") if manifest else None
        digest = subject.get("digest") if isinstance(subject, dict) else None
        return digest if isinstance(digest, str) and is_digest(digest) else None

    def evaluate_release(self, request: ReleaseRequest) -> Evaluation:
        """Evaluate one release from current facts, decide, and record every decision."""
        app = self.config.apps[request.app_name]
        evaluation = Evaluation(
            event_id=request.event_id,
            app=request.app_name,
            tag=request.release.tag,
            sha=request.release.sha,
            actor=request.actor,
        )
        commit: SourceCommit | None = None
        if request.trigger != "push":
            evaluation.trigger = request.trigger
            # An operator names a commit, and what an operator gets wrong is the commit: a typo, or a
            # develop commit for prod. Say that first, not what it does to the images or signatures.
            commit = self._operator_commit(app, request, evaluation)
            if commit is None:
                if not self.dry_run:
                    self._record(app, request, evaluation)
                return evaluation
        envs = self._check_artifacts(app, request, evaluation)
        # Read each environment's values file before asking GitHub about the commit: a duplicate or
        # late event then costs one request (the file already holds the tag) instead of four.
        pending = [(env, snapshot) for env in envs if (snapshot := self._read_values(app, env, request, evaluation))]
        if pending:
            branch_checked = commit is not None
            if commit is None:
                commit = self._resolve_commit(app, request, evaluation, [env for env, _ in pending])
            elif not self._signed_for(commit, request, evaluation, [env for env, _ in pending]):
                # An operator's commit was resolved before the signatures named theirs: bind them now.
                commit = None
            if commit is not None:
                for env, snapshot in pending:
                    self._promote_to_environment(
                        app, env, commit, snapshot, request, evaluation, branch_checked=branch_checked
                    )
        if not self.dry_run:
            self._record(app, request, evaluation)
        return evaluation

    def _operator_commit(self, app: App, request: ReleaseRequest, evaluation: Evaluation) -> SourceCommit | None:
        """An operator request's commit: it exists, and it is on the environment's branch; None once decided."""
        env = request.env or request.release.env
        if env is None:  # operator requests always name their environment (services/operate.py)
            raise ValueError("an operator request names its environment")
        commit = self._resolve_commit(app, request, evaluation, [env])
        if commit is None or not self._on_branch(app, env, commit, evaluation):
            return None
        return commit

    # --- release-wide checks on the registry: readiness, environments, signatures ---

    def _check_artifacts(self, app: App, request: ReleaseRequest, evaluation: Evaluation) -> list[str]:
        """The environments the release is ready for; [] when a check already decided."""
        release = request.release
        registry = self.deps.registry_for(app)
        resolved = {image: registry.resolve_tag(image, release.tag) for image in app.images}
        if evaluation.apply("readiness", rules.judge_readiness(release.tag, resolved), [request.env or release.env]):
            return []
        digests = {image: digest for image, digest in resolved.items() if digest}
        evaluation.digests = digests
        if self._tag_moved(app, request, evaluation) or not self._tags_immutable(app, request, evaluation):
            return []
        if request.push and (
            moved := rules.judge_event_digest(release.tag, request.push.digest, digests.get(request.push.repository))
        ):
            evaluation.apply("event digest", moved, [])
        if request.env is not None:
            evaluation.apply("environment", rules.judge_named_environment(request.env, by_operator=True), [])
            envs = [request.env]
        else:
            envs = self._environments(app, release, digests, registry, evaluation)
        if envs and self._signatures(app, digests, registry, evaluation, envs):
            return envs
        return []

    def _tag_moved(self, app: App, request: ReleaseRequest, evaluation: Evaluation) -> bool:
        """A release tag tagrelay committed before must still point at the digests it committed."""
        release = request.release
        promoted = self.deps.ledger.promoted_release(request.app_name, release.tag)
        if promoted is None:  # never promoted: nothing it could have moved from
            return False
        ruling = rules.judge_tag_moved(release.tag, rules.moved_images(promoted.digests, evaluation.digests))
        if ruling.decides:
            evaluation.promoted_digests = dict(promoted.digests)
        return evaluation.apply("moved tag", ruling, promoted.envs or (request.env or release.env,))

    def _tags_immutable(self, app: App, request: ReleaseRequest, evaluation: Evaluation) -> bool:
        """ECR must not let the release tag be overwritten (or the app accepts it: allow_mutable_tags)."""
        release = request.release
        problems = self._mutability_problems(app)
        ruling = rules.judge_tag_mutability(
            release.tag, problems, app=request.app_name, allow_mutable_tags=app.allow_mutable_tags
        )
        if not ruling.decides:
            evaluation.tag_policy = "mutable (allow_mutable_tags)" if problems else "immutable"
        return not evaluation.apply("tag immutability", ruling, [request.env or release.env])

    def _mutability_problems(self, app: App) -> dict[str, str]:
        """image -> why its release tags are not protected, with the command that fixes it."""
        ecr = self.deps.ecr_for(app)
        if ecr is None:
            return {
                image: f"{app.registry} is not an Amazon ECR registry, so tagrelay cannot establish that tags "
                "are immutable (name its ECR registry with `ecr:`)"
                for image in app.images
            }
        required = [SIGNATURE_TAG_FILTER, *dict.fromkeys(env.branch for env in app.environments.values())]
        problems = {}
        for image, settings in ecr.repository_settings(app.images).items():
            verdict = assess(settings.mutability, settings.exclusion_filters, app.tag_regex)
            if not verdict.protected:
                exclusions = safe_exclusions(settings.exclusion_filters, app.tag_regex, required)
                command = fix_command(image, account=ecr.account, region=ecr.region, exclusions=exclusions)
                problems[image] = f"repository {image}: {verdict.problem}; fix: {command}"
        return problems

    def _environments(
        self, app: App, release: ReleaseTag, digests: dict[str, str], registry: ImageRegistry, evaluation: Evaluation
    ) -> list[str]:
        if release.env is not None:
            evaluation.apply("environment", rules.judge_named_environment(release.env, by_operator=False), [])
            return [release.env]
        first_image = app.images[0]
        heads = {env: registry.resolve_tag(first_image, cfg.branch) for env, cfg in app.environments.items()}
        envs = rules.environments_for_digest(heads, digests[first_image])
        branches = {env: cfg.branch for env, cfg in app.environments.items()}
        if evaluation.apply("environment", rules.judge_branch_tags(release.tag, first_image, branches, envs), [None]):
            return []
        return envs

    def _signatures(
        self, app: App, digests: dict[str, str], registry: ImageRegistry, evaluation: Evaluation, envs: list[str]
    ) -> bool:
        verifier = self.deps.verifier_for(app)
        release = ReleaseContext.for_release(app, evaluation.sha, envs)
        verdicts = {
            image: verifier.verify(registry, image, digest, release=release) for image, digest in digests.items()
        }
        # The ledger is asked how long the release has waited only when that decides: signatures are
        # missing, and none is invalid.
        statuses = {v.status for v in verdicts.values()}
        unsigned = "missing" in statuses and "invalid" not in statuses
        overdue = self._signature_overdue(app, evaluation.tag or "", digests) if unsigned else None
        ruling = rules.judge_signatures(verdicts, overdue=overdue)
        if evaluation.apply("signatures", ruling, envs):
            return False
        evaluation.signers = {image: v.signer or "unknown" for image, v in verdicts.items()}
        evaluation.signed_commits = {image: v.commit for image, v in verdicts.items() if v.commit}
        return True

    def _signature_overdue(self, app: App, tag: str, digests: dict[str, str]) -> str | None:
        """cosign signs minutes after the push, so a missing signature is a wait at first; once the
        grace window has passed since the tag was first seen, the release is rejected (fail closed)."""
        grace = timedelta(minutes=self.config.promotion.signature_grace_minutes)
        first_image = app.images[0]
        first_seen = self.deps.ledger.first_seen(first_image, digests[first_image], tag)
        if first_seen is None:
            return None
        waited = self.deps.clock() - first_seen
        return f"{int(waited.total_seconds() // 60)} min" if waited >= grace else None

    # --- the values file and the source commit ---

    def _read_values(
        self, app: App, env: str, request: ReleaseRequest, evaluation: Evaluation
    ) -> _ValuesSnapshot | None:
        """Read and edit the environment's values file in memory; None once decided (noop, invalid, missing)."""
        repo, path = app.gitops.repo, app.gitops.values_path(env)
        cap = self.config.limits.values_file_max_bytes
        check = f"{env}: values file"
        try:
            current = self.deps.github.read_file(repo, path, app.gitops.branch, max_bytes=cap)
        except FileNotFound as exc:
            evaluation.apply(check, rules.judge_values_file_missing(str(exc)), [env])
            return None
        except FileTooLarge as exc:
            evaluation.apply(check, rules.judge_values_file_too_large(str(exc), cap), [env])
            return None
        try:
            # The digests pinned beside the tag (when the format pins them) are the ones just verified.
            edit = app.gitops_format.plan(current.content.decode("utf-8"), request.release.tag, evaluation.digests)
        except (UnicodeDecodeError, ValuesFileError, InvalidEditRequest) as exc:
            problem = "is not UTF-8" if isinstance(exc, UnicodeDecodeError) else str(exc)
            evaluation.apply(check, rules.judge_values_file_invalid(f"{repo}:{path}", problem), [env])
            return None
        if not edit.changed:
            self._already_deployed(app, env, request, evaluation, current)
            return None
        previous = edit.previous.tag
        if request.check_precondition and (
            stale := rules.judge_precondition(env, expected_tag=request.expect_current_tag, current_tag=previous)
        ):
            evaluation.apply(f"{env}: precondition", stale, [env], previous_tag=previous)
            return None
        return _ValuesSnapshot(current, edit)

    def _resolve_commit(
        self, app: App, request: ReleaseRequest, evaluation: Evaluation, envs: list[str]
    ) -> SourceCommit | None:
        release = request.release
        try:
            # An operator's longer SHA is resolved as given, so that it can only name its own commit.
            commit = self.deps.github.resolve_commit(app.source_repo, request.requested_sha or release.sha)
        except CommitNotFound as exc:
            evaluation.apply("commit", rules.judge_commit_not_found(release.sha, app.source_repo, str(exc)), envs)
            return None
        if not self._signed_for(commit, request, evaluation, envs):
            return None
        ruling = rules.judge_commit(
            release.sha, commit.sha, subject=commit.subject, author=commit.author, requested_sha=request.requested_sha
        )
        if evaluation.apply("commit", ruling, envs):
            return None
        evaluation.full_sha = commit.sha
        evaluation.actor = request.actor or commit.author
        evaluation.source_committed_at = commit.committed_at
        return commit

    def _signed_for(
        self, commit: SourceCommit, request: ReleaseRequest, evaluation: Evaluation, envs: list[str]
    ) -> bool:
        """Every signature's commit (evaluation.signed_commits, from the signature check) is this commit."""
        release = request.release
        unbound = rules.judge_signature_binding(release.tag, release.sha, commit.sha, evaluation.signed_commits)
        return unbound is None or not evaluation.apply("commit", unbound, envs)

    # --- per environment: branch, pin, order, compare-and-swap commit ---

    def _on_branch(self, app: App, env: str, commit: SourceCommit, evaluation: Evaluation) -> bool:
        """The commit is on the environment's branch; otherwise decided (commit_not_on_branch)."""
        branch = app.environments[env].branch
        status = self.deps.github.compare(app.source_repo, commit.sha, branch)
        if evaluation.apply(f"{env}: branch", rules.judge_branch(branch, commit.sha, status), [env]):
            return False
        evaluation.source_branch = branch
        return True

    def _promote_to_environment(  # noqa: PLR0911, PLR0912 - each return is a check that decided; the compare-and-swap loop runs them again per attempt
        self,
        app: App,
        env: str,
        commit: SourceCommit,
        snapshot: _ValuesSnapshot,
        request: ReleaseRequest,
        evaluation: Evaluation,
        *,
        branch_checked: bool = False,
    ) -> None:
        github = self.deps.github
        branch = app.environments[env].branch
        if not branch_checked and not self._on_branch(app, env, commit, evaluation):
            return

        repo, path = app.gitops.repo, app.gitops.values_path(env)
        attempts = self.config.github.commit_attempts
        for attempt in range(attempts):
            if attempt:
                # The file changed under us: re-read it and decide again from what it holds now.
                refreshed = self._read_values(app, env, request, evaluation)
                if refreshed is None:
                    return
                snapshot = refreshed
            # The pin, on every attempt: a rollback that pinned and committed since the last attempt is
            # what changed the file, and must not be overwritten by this push.
            if request.respect_pin and self._pinned(request.app_name, env, evaluation):
                return
            previous = snapshot.edit.previous.tag
            if request.allow_downgrade:
                evaluation.apply(f"{env}: order", rules.judge_rollback_order(), [env])
            # Every tag an image runs (they differ only after a hand edit of one per-image key) must be older.
            elif any(
                self._out_of_order(app, env, deployed, commit, request, evaluation)
                for deployed in snapshot.edit.previous.distinct_tags
            ):
                return
            if not attempt and self._archived(app, env, evaluation):
                return
            if self.dry_run:
                dry_run = rules.judge_dry_run(app.gitops_format.describe(), request.release.tag)
                evaluation.apply(f"{env}: commit", dry_run, [env], previous_tag=previous)
                return
            message = commit_message(
                CommitDetails(
                    env=env,
                    tag=request.release.tag,
                    trigger=request.trigger,
                    source_branch=branch,
                    full_sha=commit.sha,
                    actor=evaluation.actor or "unknown",
                    digests=evaluation.digests,
                    signer=_signer_line(app, evaluation),
                    event_id=request.event_id,
                    request_id=request.request_id,
                    tag_policy=evaluation.tag_policy,
                )
            )
            self._ensure_time_for_a_commit(env)
            try:
                if app.gitops.write == "pull_request":
                    through_pull = self._write_through_pull_request(
                        app, env, commit, snapshot, message, request, evaluation
                    )
                    if through_pull is None:
                        return  # decided: the pull request waits for GitHub to allow its merge, or is newer
                    written, pull_request_url = through_pull
                else:
                    written = github.write_file(
                        repo,
                        path,
                        app.gitops.branch,
                        content=snapshot.edit.text.encode("utf-8"),
                        blob_sha=snapshot.file.blob_sha,
                        message=message,
                    )
                    pull_request_url = None
            except WriteConflict as exc:
                delay = min(CAS_BACKOFF_CAP_SECONDS, CAS_BACKOFF_BASE_SECONDS * 2**attempt) * (0.5 + self.deps.jitter())
                logger.info(
                    "values file changed under us; re-reading",
                    extra={"env": env, "attempt": attempt + 1, "conflict": str(exc), "retry_in_s": round(delay, 3)},
                )
                self.deps.sleep(delay)
                continue
            committed = rules.judge_committed(
                repo,
                written.sha,
                snapshot.edit.fields,
                request.release.tag,
                field=app.gitops_format.describe(),
                previous_tag=previous,
            )
            evaluation.apply(
                f"{env}: commit",
                committed,
                [env],
                previous_tag=previous,
                gitops_commit=written.sha,
                gitops_url=written.url,
                pull_request_url=pull_request_url,
                # The commit's own time orders deployments (the environment state never moves back to an
                # older one), not the later moment its record is written.
                committed_at=timestamp(self.deps.clock()),
            )
            if self.deps.refresh_environment is not None:
                self.deps.refresh_environment(request.app_name, env)
            return
        raise TransientError(
            "github", f"{repo}:{path} kept changing: {attempts} compare-and-swap attempts lost; retrying the event"
        )

    def _write_through_pull_request(
        self,
        app: App,
        env: str,
        commit: SourceCommit,
        snapshot: _ValuesSnapshot,
        message: str,
        request: ReleaseRequest,
        evaluation: Evaluation,
    ) -> tuple[CommitRef, str] | None:
        """``gitops.write: pull_request``: the same one-file change on ``tagrelay/<app>/<env>``, reset to the
        GitOps branch's head, through one pull request per environment, squash-merged when GitHub allows.

        Returns the merge commit (what Argo CD syncs) and the pull request's URL; None once decided: the
        open pull request proposes a newer release (superseded), or GitHub does not allow the merge yet
        (required reviews or checks: a wait, re-evaluated by later events and the reconcile sweep).
        Raises WriteConflict when the GitOps branch moved under the change (the caller re-reads and retries).
        """
        github = self.deps.pull_requests
        if github is None:
            raise MisconfiguredError(
                "github", f"{app.gitops.repo}: gitops.write is pull_request, but no pull request client"
            )
        repo, base, path = app.gitops.repo, app.gitops.branch, app.gitops.values_path(env)
        branch = f"tagrelay/{request.app_name}/{env}"
        tag = request.release.tag
        pull = github.open_pull_request(repo, branch, base)
        wanted = snapshot.edit.text.encode("utf-8")
        proposed_bytes: bytes | None = None
        if pull is not None:
            # No-downgrade holds against what the open pull request proposes, not only what runs.
            try:
                proposed_bytes = github.read_file(repo, path, pull.head_sha).content
                proposed = app.gitops_format.read(proposed_bytes.decode("utf-8"))
            except (FileNotFound, ValuesFileError, UnicodeDecodeError):
                proposed = None
            if (
                proposed is not None
                and proposed.tag != tag
                and any(
                    self._out_of_order(app, env, deployed, commit, request, evaluation)
                    for deployed in proposed.distinct_tags
                    if not request.allow_downgrade
                )
            ):
                return None
        base_head = github.branch_head(repo, base)
        if base_head is None:
            raise FileNotFound(f"branch {base} of {repo} does not exist")
        head_before = github.branch_head(repo, branch)
        # The open pull request is reused only when it proposes exactly the file this evaluation would write:
        # the same release on the file as the GitOps branch has it now. A hand edit on the branch since (which
        # may conflict with it) or a newer release rebuilds the branch on the GitOps branch's head.
        if pull is None or head_before is None or pull.title != message.splitlines()[0] or proposed_bytes != wanted:
            github.reset_branch(repo, branch, base_head, exists=head_before is not None)
            written = github.write_file(
                repo, path, branch, content=wanted, blob_sha=snapshot.file.blob_sha, message=message
            )
            head_sha = written.sha
        else:  # this release's pull request, from an earlier evaluation: merge it if GitHub allows now
            head_sha = head_before
        title, _, body = message.partition("\n")
        body = body.strip()
        if pull is None:
            pull = github.create_pull_request(repo, branch, base, title=title, body=body)
        elif pull.title != title:
            github.update_pull_request(repo, pull.number, title=title, body=body)  # a newer release took it over
        merged = github.merge_pull_request(repo, pull.number, head_sha=head_sha, title=title, message=body)
        merge_commit = merged.sha if merged.merged and merged.sha else None
        if merge_commit is None and github.branch_head(repo, base) != base_head:
            raise WriteConflict(f"{base} moved while {pull.url} was merged ({merged.reason})")
        ruling = rules.judge_pull_request(pull.url, tag, merged_commit=merge_commit, github_says=merged.reason)
        facts = {"previous_tag": snapshot.edit.previous.tag, "pull_request_url": pull.url}
        evaluation.apply(f"{env}: pull request", ruling, [env], **facts)
        if merge_commit is None:
            return None  # decided: the pull request waits
        commit_url = f"{pull.url.split('/pull/')[0]}/commit/{merge_commit}"
        return CommitRef(sha=merge_commit, url=commit_url, message=message), pull.url

    def _out_of_order(
        self,
        app: App,
        env: str,
        current_tag: str | None,
        commit: SourceCommit,
        request: ReleaseRequest,
        evaluation: Evaluation,
    ) -> bool:
        """Descendants only: the candidate must contain the environment's current commit. Older is
        superseded; diverged is refused on the push path (a manual deploy records it and goes on)."""
        if current_tag is None:
            return False
        current = parse_release_tag(current_tag, app.tag_regex)
        if current is None or commit.sha.startswith(current.sha):
            return False
        status: str | None
        try:
            status = self.deps.github.compare(app.source_repo, current.sha, commit.sha)
        except CommitNotFound:
            status = None  # GitHub knows no such deployed commit (a hand edit): nothing to order against
        ruling = rules.judge_order(
            env, current_tag, current.sha, commit.sha, status, manual=request.trigger == "manual"
        )
        return evaluation.apply(f"{env}: order", ruling, [env], previous_tag=current_tag, deployed_sha=current.sha)

    # --- images archived in ECR (a lifecycle rule, or by hand) ---

    def storage_class_changed(self, trigger: StorageClassChanged) -> Evaluation:
        """An image was archived or restored. Archived and deployed somewhere: an alert (recorded once per
        environment and digest, in the metrics every time), since a pod that starts now cannot pull it."""
        push = trigger.push
        evaluation = Evaluation(event_id=push.event_id, app=trigger.app_name, trigger="storage_class")
        if not trigger.archived:
            evaluation.apply("storage class", rules.judge_image_restored(push.repository, push.digest), [None])
            return evaluation
        deployed = self.deployed_where(trigger.app_name, push.repository, push.digest)
        if not deployed:
            evaluation.apply("storage class", rules.judge_archived_not_deployed(push.repository, push.digest), [None])
            return evaluation
        for env, tag in deployed:
            evaluation.tag = tag
            alert = rules.judge_archived_deployed(env, tag, push.repository, push.digest)
            evaluation.apply(f"{env}: deployed image", alert, [env])
            if not self.dry_run:
                self.record_alert(
                    trigger.app_name,
                    env,
                    tag,
                    alert,
                    key=f"image_archived:{push.digest}",
                    digests={push.repository: push.digest},
                    event_id=push.event_id,
                )
        return evaluation

    def deployed_where(self, app_name: str, repository: str, digest: str) -> list[tuple[str, str]]:
        """The environments whose current release runs ``repository@digest``: (env, tag)."""
        found = []
        for env in self.config.apps[app_name].environments:
            state = self.deps.ledger.environment_state(app_name, env)
            if state is None or state.current_tag is None:
                continue
            if self.deployed_digests(app_name, env, state).get(repository) == digest:
                found.append((env, state.current_tag))
        return found

    def deployed_digests(self, app_name: str, env: str, state: EnvironmentState) -> dict[str, str]:
        """The digests the environment's current release was deployed with: those its tag was first promoted
        with, else those of its deployment record ({} for a change made outside tagrelay)."""
        assert state.current_tag is not None
        promoted = self.deps.ledger.promoted_release(app_name, state.current_tag)
        if promoted is not None:
            return dict(promoted.digests)
        if state.current_decision_id and state.committed_at:
            record = self.deps.ledger.decision(app_name, env, state.committed_at, state.current_decision_id)
            if record is not None:
                return dict(record.digests)
        return {}

    def record_alert(
        self,
        app_name: str,
        env: str,
        tag: str,
        ruling: rules.Ruling,
        *,
        key: str,
        digests: dict[str, str],
        event_id: str | None,
    ) -> bool:
        """A finding about what an environment runs (``image_archived``, ``tag_moved``), recorded in its
        history once per ``key`` while that release runs (its state's ``alerts``). The record's outcome is
        the ruling's verdict in the ledger's words: a moved tag is ``rejected`` as the promoter records it
        (the ReleaseTagMoved alarm, and no redeploying it), an archived image an ``alert``."""
        outcome, reason, message = ruling.recorded_as()
        if not self.deps.ledger.note_alert(app_name, env, key):
            return False
        release = parse_release_tag(tag, self.config.apps[app_name].tag_regex)
        self.deps.ledger.record_decision(
            DecisionRecord(
                decision_id=new_decision_id(),
                app=app_name,
                env=env,
                outcome=outcome,
                reason=reason,
                message=message,
                created_at=timestamp(self.deps.clock()),
                trigger="push",
                tag=tag,
                sha=release.sha if release else None,
                digests=digests,
                event_ids=(event_id,) if event_id else (),
            )
        )
        return True

    def _archived(self, app: App, env: str, evaluation: Evaluation) -> bool:
        """An archived image cannot be pulled until it is restored: never commit a release that has one.

        Asked of ECR (DescribeImages, one request per image) only when a commit is next, so a push that
        waits or a duplicate costs nothing more; a registry that is not ECR has no archive."""
        ecr = self.deps.ecr_for(app)
        if ecr is None:
            return evaluation.apply(f"{env}: archive", rules.judge_unarchivable(app.registry), [env])
        inactive = {}
        for image, digest in evaluation.digests.items():
            details = ecr.describe_images(image, digests=[digest])
            status = details[0].status if details else "ACTIVE"
            if status != "ACTIVE":
                inactive[image] = (digest, status)
        ruling = rules.judge_archive(env, inactive, len(evaluation.digests))
        return evaluation.apply(f"{env}: archive", ruling, [env])

    def _pinned(self, app_name: str, env: str, evaluation: Evaluation) -> bool:
        state = self.deps.ledger.environment_state(app_name, env)
        if state is None:
            return False
        ruling = rules.judge_pin(env, pinned=state.pinned, pin_reason=state.pin_reason)
        return ruling is not None and evaluation.apply(f"{env}: pin", ruling, [env])

    def _already_deployed(
        self, app: App, env: str, request: ReleaseRequest, evaluation: Evaluation, current: FileVersion
    ) -> None:
        """The values file already holds the tag. Usually a duplicate event. Sometimes our own commit whose
        records were lost (the invocation died after committing, or the state update failed): healing the
        environment state records it now, and makes it current."""
        tag = request.release.tag
        recovered = None
        if not self.dry_run:
            healed = self.healer.heal(request.app_name, env, file=current)
            if healed.kind == "recovered" and healed.record is not None and healed.record.tag == tag:
                recovered = healed.record
        ruling = rules.judge_already_deployed(
            app.gitops.values_path(env),
            app.gitops_format.describe(),
            tag,
            recovered_commit=recovered.gitops_commit if recovered else None,
        )
        facts = (
            {
                "gitops_commit": recovered.gitops_commit,
                "gitops_url": recovered.gitops_url,
                "pull_request_url": recovered.pull_request_url,
            }
            if recovered
            else {}
        )
        evaluation.apply(f"{env}: values file", ruling, [env], **facts)

    def _release_tag_not_seen(
        self, trigger: BranchTagPushed | SignaturePushed | ReferrerPushed, digest: str
    ) -> Evaluation:
        push = trigger.push
        app = self.config.apps[trigger.app_name]
        env = app.env_for_branch(trigger.branch) if isinstance(trigger, BranchTagPushed) else None
        evaluation = Evaluation(event_id=push.event_id, app=trigger.app_name)
        evaluation.trigger = "branch_tag" if isinstance(trigger, BranchTagPushed) else "signature"
        evaluation.apply("release tag", rules.judge_release_tag_not_seen(push.repository, digest), [env])
        if not self.dry_run:
            self._record(app, None, evaluation)
        return evaluation

    # --- the ledger ---

    def _note_release(self, request: ReleaseRequest, evaluation: Evaluation) -> None:
        """Keep a waiting release in the ledger's ``undecided`` index, for the reconcile sweep (its last
        event may be lost); take it out once decided. A no-op decides nothing new: no write."""
        waits = [d for d in evaluation.decisions if d.verdict is Verdict.WAIT]
        ledger, now = self.deps.ledger, self.deps.clock()
        if waits:
            ledger.note_release_waiting(
                request.app_name, request.release.tag, reason=waits[0].reason, message=waits[0].message, now=now
            )
        elif any(d.verdict is not Verdict.NOOP for d in evaluation.decisions):
            ledger.note_release_decided(
                request.app_name, request.release.tag, decision=evaluation.verdict.value, now=now
            )

    def _record(self, app: App, request: ReleaseRequest | None, evaluation: Evaluation) -> None:
        now = timestamp(self.deps.clock())
        push = request.push if request else None
        if request is not None and request.trigger == "push":
            self._note_release(request, evaluation)
        for decided in evaluation.decisions:
            outcome = rules.ledger_outcome(
                decided.verdict, by_operator=request is not None and request.trigger != "push"
            )
            # A deployment is dated by its commit (the state's committed_at names its record's sort key).
            created_at = (decided.committed_at or now) if decided.verdict is Verdict.PROMOTE else now
            record = DecisionRecord(
                decision_id=new_decision_id(),
                app=evaluation.app or "",
                env=decided.env or UNRESOLVED_ENV,
                outcome=outcome,
                reason=decided.reason,
                message=decided.message,
                created_at=created_at,
                trigger=request.trigger if request else "push",
                tag=evaluation.tag,
                sha=evaluation.sha,
                full_sha=evaluation.full_sha,
                source_branch=evaluation.source_branch,
                actor=evaluation.actor,
                digests=dict(evaluation.digests),
                signers=dict(evaluation.signers),
                signature_policy="required" if app.signature_required else "none",
                tag_policy=evaluation.tag_policy,
                promoted_digests=dict(evaluation.promoted_digests),
                previous_tag=decided.previous_tag,
                deployed_sha=decided.deployed_sha,
                gitops_commit=decided.gitops_commit,
                gitops_url=decided.gitops_url,
                pull_request_url=decided.pull_request_url,
                event_ids=(evaluation.event_id,) if evaluation.event_id else (),
                request_id=request.request_id if request else None,
                status=DeploymentState.COMMITTED if decided.verdict is Verdict.PROMOTE else None,
                committed_at=created_at if decided.verdict is Verdict.PROMOTE else None,
                pushed_at=timestamp(push.time) if push and push.time else None,
                source_committed_at=(
                    timestamp(evaluation.source_committed_at) if evaluation.source_committed_at else None
                ),
            )
            if decided.verdict is Verdict.PROMOTE:
                recorded = self.deps.ledger.record_deployment(record, app.gitops.repo)
                if recorded and self.deps.publish is not None:
                    self.deps.publish(
                        event_from_record(self.config, record, DeploymentState.COMMITTED, decided.message)
                    )
                if not recorded:
                    logger.info("deployment already recorded", extra={"gitops_commit": record.gitops_commit})
                    noop = rules.judge_deployment_already_recorded(app.gitops.repo, record.gitops_commit)
                    noop_outcome, noop_reason, noop_message = noop.recorded_as()
                    self.deps.ledger.record_decision(
                        dataclasses.replace(
                            record,
                            outcome=noop_outcome,
                            reason=noop_reason,
                            message=noop_message,
                            status=None,
                            committed_at=None,
                        )
                    )
            else:
                self.deps.ledger.record_decision(record)


def _signer_line(app: App, evaluation: Evaluation) -> str:
    if not app.signature_required:
        return "not verified (the app's policy is 'signature: none')"
    signers = set(evaluation.signers.values())
    if len(signers) == 1:
        return f"verified, {signers.pop()}"
    return "verified, " + "; ".join(f"{image}: {signer}" for image, signer in evaluation.signers.items())
