"""Ports: one Protocol per outside system the services use.

The services (services/) are written against these, never against an adapter; runtime.py is the only
place that chooses what implements them: the adapters (adapters/) in Lambda and in the CLI, in-memory
fakes (tests/fakes/) in the service tests. tests/contract/ runs the same assertions against each
fake and its adapter on the local stack, so the two cannot drift apart.

What a port answers is a fact (domain/facts.py, domain/records.py). What it refuses with is an error
of tagrelay.errors: ``TransientError`` when a retry may help, ``MisconfiguredError`` when an operator
must fix something, and an ``Answer`` (``CommitNotFound``, ``WriteConflict``, ...) when the refusal
is itself the fact the service decides on.

| port                 | outside system                  | adapter                                |
|----------------------|---------------------------------|----------------------------------------|
| SourceRepository     | the app's source repository     | adapters/github.py GitHub              |
| GitOpsStore          | the GitOps repository           | adapters/github.py GitHub              |
| PullRequestHost      | the GitOps repository's PRs     | adapters/github.py GitHub              |
| DeploymentRecords    | GitHub Deployments (source repo)| adapters/github.py GitHub              |
| ImageRegistry        | the OCI registry (ECR)          | adapters/registry.py Registry          |
| RegistryControlPlane | ECR's API (tags, image status)  | adapters/ecr.py EcrControlPlane        |
| SignatureVerifier    | cosign signatures, Sigstore     | adapters/signatures CosignVerifier     |
| DeploymentLedger     | the ledger (DynamoDB)           | adapters/store.py Ledger               |
| ArgoCD               | Argo CD's application API       | adapters/argocd.py ArgoCDClient        |
| IdentityVerifier     | STS (who is calling)            | adapters/identity.py StsIdentityVerifier|
| PromoterFunction     | the promoter Lambda (the CLI's) | adapters/promoter_function.py          |
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol

from tagrelay.domain.facts import (
    CommitRef,
    CompareStatus,
    Comparison,
    FileVersion,
    ImageDetail,
    Manifest,
    MergeResult,
    PullRequestRef,
    ReleaseContext,
    RepositorySettings,
    SignatureVerdict,
    SourceCommit,
    VerifiedCaller,
)
from tagrelay.domain.outcome import AccessDenied, ApplicationObservation, AppMissing, ArgoCDUnreachable
from tagrelay.domain.records import (
    DecisionRecord,
    EnvironmentState,
    HistoryPage,
    PromotedRelease,
    StoredRequest,
    UndecidedRelease,
)

# --------------------------------------------------------------------------------------------------
# GitHub: the source repository and the GitOps repository.


class SourceRepository(Protocol):
    """The app's source repository: which commit a short SHA names, and how two commits relate.

    Each method is one request; ``request_count`` counts them (the benchmarks and budgets read it).
    """

    request_count: int

    def resolve_commit(self, repo: str, short_sha: str) -> SourceCommit:
        """Exactly one commit whose SHA starts with ``short_sha``.

        Raises CommitNotFound when there is none, or (GitHub answers so) more than one."""
        ...

    def compare(self, repo: str, base: str, head: str) -> CompareStatus:
        """How ``head`` relates to ``base``. Raises CommitNotFound for an unknown ref."""
        ...

    def comparison(self, repo: str, base: str, head: str) -> Comparison:
        """Like ``compare``, with the commits ``head`` has that ``base`` has not (the first page)."""
        ...


class GitOpsStore(Protocol):
    """The GitOps repository: read a file, and replace it by compare-and-swap on its blob SHA."""

    request_count: int

    def read_file(self, repo: str, path: str, branch: str, *, max_bytes: int | None = None) -> FileVersion:
        """A file's bytes and blob SHA at ``branch`` (a branch name or a commit SHA).

        Raises FileNotFound, or FileTooLarge when it is over ``max_bytes`` (nothing more is read)."""
        ...

    def write_file(
        self, repo: str, path: str, branch: str, *, content: bytes, blob_sha: str, message: str
    ) -> CommitRef:
        """Commit ``content`` to ``path`` on ``branch`` only if the file's blob is still ``blob_sha``.

        Raises WriteConflict when it is not (someone committed in between): re-read and decide again."""
        ...

    def commits_touching(self, repo: str, path: str, branch: str, *, limit: int) -> list[CommitRef]:
        """The newest ``limit`` commits on ``branch`` that changed ``path``, newest first."""
        ...


class PullRequestHost(GitOpsStore, Protocol):
    """The GitOps repository's branches and pull requests (``gitops.write: pull_request``). One request each."""

    def branch_head(self, repo: str, branch: str) -> str | None:
        """The commit ``branch`` points at, or None when it does not exist."""
        ...

    def reset_branch(self, repo: str, branch: str, sha: str, *, exists: bool) -> None:
        """Point ``branch`` at ``sha``: created, or moved there even when that is not a fast-forward."""
        ...

    def open_pull_request(self, repo: str, head: str, base: str) -> PullRequestRef | None:
        """The open pull request from ``head`` into ``base``, if there is one."""
        ...

    def create_pull_request(self, repo: str, head: str, base: str, *, title: str, body: str) -> PullRequestRef: ...

    def update_pull_request(
        self, repo: str, number: int, *, title: str | None = None, body: str | None = None, close: bool = False
    ) -> None:
        """Retitle a pull request (a newer release took it over), or close it."""
        ...

    def merge_pull_request(self, repo: str, number: int, *, head_sha: str, title: str, message: str) -> MergeResult:
        """Squash-merge the pull request if GitHub lets us now; else why not (``merged`` False)."""
        ...

    def pull_request_for_commit(self, repo: str, sha: str) -> PullRequestRef | None:
        """The pull request commit ``sha`` came through: the one squash-merged as ``sha`` first, else the
        first GitHub associates with it (merged or open); None when there is none."""
        ...


class DeploymentRecords(Protocol):
    """GitHub Deployments on the app's source repository: where people see what runs (notifications)."""

    def find_deployment(self, repo: str, sha: str, environment: str, decision_id: str) -> int | None:
        """The deployment tagrelay created for this decision (its payload names it), if any."""
        ...

    def create_deployment(
        self, repo: str, *, sha: str, environment: str, description: str, payload: dict[str, Any], production: bool
    ) -> int:
        """A deployment of commit ``sha`` to ``environment``; its id."""
        ...

    def create_deployment_status(
        self,
        repo: str,
        deployment_id: int,
        *,
        state: str,
        description: str,
        log_url: str | None,
        environment_url: str | None = None,
        auto_inactive: bool = False,
    ) -> None: ...


# --------------------------------------------------------------------------------------------------
# The registry, its control plane, and the signatures in it.


class ImageRegistry(Protocol):
    """An OCI distribution registry, read-only. Unknown tags, manifests and referrer APIs are None."""

    @property
    def request_count(self) -> int: ...

    def resolve_tag(self, repository: str, tag: str) -> str | None:
        """The digest ``tag`` points to, or None when the tag does not exist."""
        ...

    def get_manifest(self, repository: str, reference: str) -> Manifest | None:
        """A manifest by tag or digest, exactly as stored, or None when unknown."""
        ...

    def get_blob(self, repository: str, digest: str, *, max_bytes: int = ...) -> bytes:
        """A blob's bytes, checked against its digest. Raises RegistryError when it is unknown or too large."""
        ...

    def list_referrers(
        self, repository: str, digest: str, *, artifact_type: str | None = None
    ) -> list[dict[str, Any]] | None:
        """The descriptors of the manifests whose subject is ``digest``; None without a referrers API."""
        ...


class RegistryControlPlane(Protocol):
    """ECR's API for one registry (account and region)."""

    account: str
    region: str
    request_count: int

    def repository_settings(self, names: Sequence[str]) -> dict[str, RepositorySettings]:
        """Each repository's tag mutability and exclusion filters."""
        ...

    def describe_images(
        self, repository: str, *, digests: Sequence[str] = (), tags: Sequence[str] = ()
    ) -> list[ImageDetail]:
        """The images named by digest or tag, with their status (archived or not)."""
        ...


class SignatureVerifier(Protocol):
    """Is an image digest signed as the app's policy demands? Called once per image digest."""

    def verify(
        self, registry: ImageRegistry, repository: str, digest: str, *, release: ReleaseContext | None = None
    ) -> SignatureVerdict: ...


# --------------------------------------------------------------------------------------------------
# The ledger.


class DeploymentLedger(Protocol):
    """The deployment ledger: decisions, deployments, environment states, pins, sightings, requests.

    Writes that must happen once are conditional and say whether they happened (a bool, or the
    request seen before); ``request_count`` counts the requests made.
    """

    request_count: int
    table_name: str

    # digest sightings: which release tags point at a digest
    def record_sighting(self, repository: str, digest: str, tag: str, now: datetime) -> None: ...
    def release_tags_for(self, repository: str, digest: str) -> list[str]: ...
    def first_seen(self, repository: str, digest: str, tag: str) -> datetime | None: ...

    # decisions and deployments
    def record_decision(self, record: DecisionRecord) -> None: ...
    def record_deployment(self, record: DecisionRecord, gitops_repo: str, *, make_current: bool = True) -> bool:
        """Once per GitOps commit: False when that commit was already recorded."""
        ...

    def deployment_for_commit(
        self, app: str, env: str, gitops_repo: str, gitops_commit: str
    ) -> DecisionRecord | None: ...
    def promoted_release(self, app: str, tag: str) -> PromotedRelease | None: ...
    def decision(self, app: str, env: str, created_at: str, decision_id: str) -> DecisionRecord | None: ...
    def deployments(
        self,
        app: str,
        env: str,
        *,
        since: str | None = None,
        through_key: tuple[str, str] | None = None,
        newest_first: bool = True,
        page_size: int = 100,
    ) -> Iterator[DecisionRecord]: ...

    # the environment state
    def environment_state(self, app: str, env: str) -> EnvironmentState | None: ...
    def set_current(self, record: DecisionRecord, *, expected_gitops_commit: str | None) -> bool:
        """Compare-and-swap on the state's GitOps commit: False when another writer changed it."""
        ...

    def note_alert(self, app: str, env: str, key: str) -> bool:
        """Remember on the state that an alert was raised for ``key``; False when it already was. A new
        current deployment forgets them."""
        ...

    def set_pin(self, app: str, env: str, *, reason: str, pinned_by: str, pinned_at: str) -> None: ...
    def clear_pin(self, app: str, env: str) -> None: ...

    # releases not decided yet (the reconcile sweep's work list)
    def note_release_waiting(self, app: str, tag: str, *, reason: str, message: str, now: datetime) -> None: ...
    def note_release_decided(self, app: str, tag: str, *, decision: str, now: datetime) -> None: ...
    def undecided_releases(self, *, seen_since: str, limit: int) -> tuple[list[UndecidedRelease], bool]: ...

    # operator requests (idempotency) and identity-proof nonces (single use)
    def begin_request(
        self, request_id: str, *, fingerprint: str, operation: str, app: str, env: str, actor: str, now: datetime
    ) -> StoredRequest | None:
        """None the first time a request id is seen; the request seen before otherwise."""
        ...

    def finish_request(self, request_id: str, outcome: Mapping[str, Any], *, now: datetime) -> None: ...
    def use_nonce(self, nonce: str, *, expires_at: datetime) -> bool:
        """False when the nonce was used before."""
        ...

    # tracking, and the history the CLI pages through
    def in_flight(self) -> list[DecisionRecord]: ...
    def record_tracking(
        self, record: DecisionRecord, status: str, attributes: Mapping[str, Any], *, final: bool
    ) -> bool:
        """Only while the record still has the status it was read with: False when it changed."""
        ...

    def history(
        self, app: str, env: str, *, limit: int = 20, next_token: dict[str, Any] | None = None
    ) -> HistoryPage: ...
    def history_by_sha(self, sha: str, *, limit: int = 20, next_token: dict[str, Any] | None = None) -> HistoryPage: ...
    def resume_key(self, record: DecisionRecord, *, by_sha: bool = False) -> dict[str, Any]:
        """The ``next_token`` that resumes ``history`` (or ``history_by_sha``) right after ``record``."""
        ...


# --------------------------------------------------------------------------------------------------
# Argo CD, and who is calling.


class ArgoCD(Protocol):
    """Argo CD's application API, for one run (made per run, closed after it)."""

    request_count: int

    def get_application(
        self, name: str, project: str | None = None
    ) -> ApplicationObservation | AppMissing | AccessDenied:
        """One application. Raises TransientError when Argo CD cannot be reached."""
        ...

    def observe_application(
        self, name: str, project: str | None = None
    ) -> ApplicationObservation | AppMissing | AccessDenied | ArgoCDUnreachable:
        """Like ``get_application``, with an unreachable Argo CD as a value."""
        ...

    def list_applications(
        self, selector: str | None = None, names: Collection[str] | None = None
    ) -> list[ApplicationObservation]: ...

    def refresh(self, name: str, project: str | None = None) -> bool:
        """Ask Argo CD to reconcile ``name`` now. Never raises: False when refused or unreachable."""
        ...

    def close(self) -> None: ...
    def __enter__(self) -> ArgoCD: ...
    def __exit__(self, *exc: object) -> None: ...


class PromoterFunction(Protocol):
    """The promoter function as the `tagrelay` operator commands call it: the caller's identity signed
    into the request, one synchronous invocation, the function's answer."""

    def call(self, operation: str, fields: Mapping[str, Any]) -> dict[str, Any]:
        """Raises InvocationFailed; its ``may_have_run`` says whether the request may have been carried out."""
        ...


class IdentityVerifier(Protocol):
    """Who is calling: a signed proof checked with STS. Raises IdentityError (its ``code`` says why)."""

    def verify(self, proof: Mapping[str, Any] | None, *, binding: str) -> VerifiedCaller: ...


class GitHost(SourceRepository, GitOpsStore, Protocol):
    """Both repositories on one host (GitHub): the promoter reads the source repository's commits and
    writes the GitOps repository through one client."""
