"""Facts: what the outside systems said, as the ports (tagrelay/ports.py) hand it to the services.

Plain values, no I/O. The adapters build them from the wire (PyGithub, the OCI distribution API,
ECR's API, STS, Sigstore bundles); the in-memory fakes of the tests build the same values, and the
domain's rules are functions over them. The ledger's own values (records, states) are in records.py.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from tagrelay.domain.decision import Reason
from tagrelay.errors import RegistryError

if TYPE_CHECKING:
    from tagrelay.config import App

# --------------------------------------------------------------------------------------------------
# The source repository and the GitOps repository (GitHub).

# GitHub compare(base, head): how head relates to base.
CompareStatus = Literal["identical", "ahead", "behind", "diverged"]
COMPARE_STATUSES: tuple[CompareStatus, ...] = ("identical", "ahead", "behind", "diverged")


@dataclass(frozen=True)
class SourceCommit:
    sha: str
    author: str  # GitHub login when GitHub knows it, else the git author name
    committed_at: datetime | None
    subject: str
    url: str


@dataclass(frozen=True)
class Comparison:
    """``base...head``: how head relates to base, and the commits head has that base has not (the first
    page only: GitHub sends up to 250 with the comparison itself; ``total_commits`` says how many there are)."""

    status: CompareStatus
    commits: tuple[str, ...]
    total_commits: int

    @property
    def complete(self) -> bool:
        return len(self.commits) >= self.total_commits


@dataclass(frozen=True)
class FileVersion:
    """A file's bytes and its git blob SHA: the compare-and-swap token of the write that replaces it."""

    content: bytes
    blob_sha: str


@dataclass(frozen=True)
class CommitRef:
    sha: str
    url: str
    message: str = ""
    author: str = ""  # GitHub login when GitHub knows it, else the git author name

    @property
    def subject(self) -> str:
        return self.message.splitlines()[0] if self.message else ""


@dataclass(frozen=True)
class PullRequestRef:
    """A pull request (pull-request write-back): an open one, or the one a GitOps commit came through."""

    number: int
    url: str  # html_url
    head_sha: str
    title: str
    merged: bool = False


@dataclass(frozen=True)
class MergeResult:
    """What GitHub answered to a merge: merged (with the merge commit), or why not."""

    merged: bool
    sha: str | None  # the merge commit on the base branch
    reason: str  # GitHub's message (why it did not merge)


# --------------------------------------------------------------------------------------------------
# The registry (OCI distribution API) and ECR's control plane.


@dataclass(frozen=True)
class Manifest:
    """A manifest exactly as the registry served it; ``digest`` is the SHA-256 of ``raw``."""

    digest: str
    media_type: str
    raw: bytes

    def document(self) -> dict[str, Any]:
        """The parsed JSON object. Signatures are checked over ``raw``, never over a re-serialisation."""
        try:
            document = json.loads(self.raw)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise RegistryError(f"manifest {self.digest} is not valid JSON: {exc}") from None
        if not isinstance(document, dict):
            raise RegistryError(f"manifest {self.digest} is not a JSON object")
        return document


@dataclass(frozen=True)
class RepositorySettings:
    """What DescribeRepositories says about one repository's tags."""

    name: str
    mutability: str  # MUTABLE | IMMUTABLE | IMMUTABLE_WITH_EXCLUSION | MUTABLE_WITH_EXCLUSION
    exclusion_filters: tuple[str, ...] = ()


@dataclass(frozen=True)
class ImageDetail:
    """What DescribeImages says about one image."""

    digest: str
    tags: tuple[str, ...]
    status: str  # ACTIVE | ARCHIVED | ACTIVATING
    pushed_at: datetime | None = None
    last_archived_at: datetime | None = None


# --------------------------------------------------------------------------------------------------
# Signatures: what a signature must be bound to, and the verdict for one image digest.

SignatureStatus = Literal["verified", "missing", "invalid", "not_required"]
SignatureCheckStatus = Literal["pass", "fail", "skip"]


@dataclass(frozen=True)
class EnvironmentContext:
    """An environment a release is about to be promoted to: fills ``{env}`` and ``{branch}``."""

    name: str
    branch: str


@dataclass(frozen=True)
class ReleaseContext:
    """What a signature must be bound to: the release tag's short SHA, and its target environments.

    ``sha`` None means the digest was named without a release tag (``tagrelay verify IMAGE@sha256:…``):
    a keyless signature then fails closed, because its commit cannot be bound to anything.
    """

    sha: str | None
    environments: tuple[EnvironmentContext, ...] = ()

    @classmethod
    def for_release(cls, app: App, sha: str | None, envs: Iterable[str]) -> ReleaseContext:
        """The context of a release of ``app`` bound for ``envs`` (names of the app's environments)."""
        return cls(
            sha=sha,
            environments=tuple(EnvironmentContext(name=env, branch=app.environments[env].branch) for env in envs),
        )


@dataclass(frozen=True)
class SignatureCheck:
    """One rule applied to one signature, for ``tagrelay verify`` and the verdict's details."""

    name: str
    status: SignatureCheckStatus
    detail: str


@dataclass(frozen=True)
class SignerIdentity:
    """Who signed, as a Fulcio certificate says it: what the ledger records for a keyless signature."""

    subject: str
    issuer: str
    repository: str | None = None
    ref: str | None = None
    commit: str | None = None
    trigger: str | None = None
    workflow: str | None = None

    def describe(self) -> str:
        """``keyless <SAN> (issuer …, repository …, ref …, commit …)``: one line, safe to log and record."""
        facts = [f"issuer {self.issuer}"]
        facts += [f"{name} {value}" for name, value in (("repository", self.repository), ("ref", self.ref)) if value]
        facts.append(f"commit {self.commit}" if self.commit else "commit unknown")
        return f"keyless {self.subject} ({', '.join(facts)})"


@dataclass(frozen=True)
class Examined:
    """One candidate signature and what became of it, check by check."""

    origin: str
    accepted: bool
    reason: str
    checks: tuple[SignatureCheck, ...] = ()


@dataclass(frozen=True)
class SignatureVerdict:
    """The outcome for one image digest, ready to record on a decision.

    ``missing``: no signature artifact yet (cosign pushes it a minute or two after the image; the
    signature's own push event re-triggers the check). ``invalid``: signatures exist but none is
    acceptable. ``not_required``: the app's configuration says ``signature: none``.
    """

    status: SignatureStatus
    signer: str | None
    reason: str | None
    details: tuple[str, ...] = ()
    identity: SignerIdentity | None = None  # the accepted keyless identity (None for keys)
    examined: tuple[Examined, ...] = ()  # every candidate looked at, in order, with its checks
    # The commit the accepted signature is bound to (certificate, or the key signature's annotation);
    # the promoter checks it against the commit the tag resolves to.
    commit: str | None = None
    # Why an invalid verdict is invalid, when it is one fixable thing: SIGNATURE_COMMIT_UNBOUND.
    code: Reason | None = None

    @property
    def acceptable(self) -> bool:
        """Whether this digest may be promoted as far as signatures are concerned."""
        return self.status in ("verified", "not_required")


# --------------------------------------------------------------------------------------------------
# Identity (STS).


@dataclass(frozen=True)
class VerifiedCaller:
    """Who called, as STS answered a replay of their signed GetCallerIdentity."""

    arn: str
    account: str
    user_id: str
