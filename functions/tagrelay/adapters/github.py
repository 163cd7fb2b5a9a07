"""GitHub through PyGithub: resolve commits, compare them, and read and compare-and-swap a values file.

Works against github.com, GitHub Enterprise (``github.base_url``) and the local stand-in. Credentials
(a token, or a GitHub App's private key) come from Secrets Manager and never appear in errors or logs.

Error rule (errors.py): 5xx, rate limits, timeouts and connection failures raise TransientError;
401/403 raise MisconfiguredError; what a decision depends on (unknown commit, missing file, a stale
blob SHA) is returned as a specific exception the service turns into a decision.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from tagrelay.config import GitHubConfig
from tagrelay.domain.facts import COMPARE_STATUSES, CommitRef, CompareStatus, Comparison, FileVersion, SourceCommit
from tagrelay.errors import (
    CommitAmbiguous,
    CommitNotFound,
    FileNotFound,
    FileTooLarge,
    MisconfiguredError,
    TransientError,
    WriteConflict,
)

if TYPE_CHECKING:
    from github import Github
    from github.Auth import Auth
    from github.Repository import Repository

logger = logging.getLogger(__name__)


class GitHub:
    """One authenticated PyGithub client per process, made on first use (no network at construction)."""

    def __init__(self, config: GitHubConfig, credentials: Callable[[], Auth]) -> None:
        self._config = config
        self._credentials = credentials
        self._client: Github | None = None
        self._repos: dict[str, Repository] = {}
        # Requests made (each method is one; PyGithub's own retries are not counted): the benchmarks and
        # the reconcile sweep's budget read it.
        self.request_count = 0

    def resolve_commit(self, repo: str, short_sha: str) -> SourceCommit:
        """Exactly one commit whose SHA starts with ``short_sha`` (one request)."""
        from github import GithubException

        try:
            with self._translate(f"resolve commit {short_sha} in {repo}"):
                commit = self._repo(repo).get_commit(short_sha)
                # With lazy=True the object is fetched on first attribute access; read `.commit` first so
                # that `.sha` is GitHub's full SHA rather than the short one we passed in.
                git_commit = commit.commit
                sha = commit.sha
                author = commit.author.login if commit.author else git_commit.author.name
                committed_at = git_commit.author.date if git_commit.author else None
                subject = (git_commit.message or "").splitlines()[0] if git_commit.message else ""
                url = commit.html_url
        except GithubException as exc:
            message = _message(exc)
            if exc.status == 422 and "ambiguous" in message.lower():
                raise CommitAmbiguous(message) from None
            if exc.status in (404, 422):
                raise CommitNotFound(message) from None
            raise
        if not sha.startswith(short_sha):
            raise CommitNotFound(f"GitHub answered {sha} for {short_sha}")
        return SourceCommit(sha=sha, author=author, committed_at=committed_at, subject=subject, url=url)

    def compare(self, repo: str, base: str, head: str) -> CompareStatus:
        """How ``head`` relates to ``base`` (one request). Raises CommitNotFound for an unknown ref."""
        from github import GithubException

        try:
            with self._translate(f"compare {base}...{head} in {repo}"):
                status = self._repo(repo).compare(base, head).status
        except GithubException as exc:
            if exc.status in (404, 422):
                raise CommitNotFound(_message(exc)) from None
            raise
        if status not in COMPARE_STATUSES:
            raise TransientError("github", f"compare {base}...{head} answered an unknown status {status!r}")
        return status

    def comparison(self, repo: str, base: str, head: str) -> Comparison:
        """Like ``compare``, with the commits between (one request: the first page comes with the answer)."""
        from github import GithubException

        try:
            with self._translate(f"compare {base}...{head} in {repo}"):
                answer = self._repo(repo).compare(base, head)
                status, total = answer.status, answer.total_commits
                first_page = answer.raw_data.get("commits") or []
        except GithubException as exc:
            if exc.status in (404, 422):
                raise CommitNotFound(_message(exc)) from None
            raise
        if status not in COMPARE_STATUSES:
            raise TransientError("github", f"compare {base}...{head} answered an unknown status {status!r}")
        commits = tuple(c["sha"] for c in first_page if isinstance(c, dict) and isinstance(c.get("sha"), str))
        return Comparison(status, commits, total)

    def read_file(self, repo: str, path: str, branch: str, *, max_bytes: int | None = None) -> FileVersion:
        """A file's bytes and blob SHA (one request; two for a file over 1 MB).

        GitHub's Contents API inlines files up to 1 MB; for 1-100 MB it answers ``encoding: "none"``
        with empty content, and the bytes come from the Git blobs API (docs.github.com, "Repository
        contents" and "Git blobs"). A file over ``max_bytes`` raises FileTooLarge before that.
        """
        from github import GithubException

        try:
            with self._translate(f"read {path} on {repo}@{branch}"):
                content = self._repo(repo).get_contents(path, ref=branch)
                if isinstance(content, list):
                    raise FileNotFound(f"{path} on {repo}@{branch} is a directory, not a file")
                size = int(content.size or 0)
                if max_bytes is not None and size > max_bytes:
                    raise FileTooLarge(f"{path} on {repo}@{branch} is {size} bytes, more than {max_bytes}", size)
                if content.encoding == "base64":
                    data = content.decoded_content
                else:  # "none": too large to inline
                    blob = self._repo(repo).get_git_blob(content.sha)
                    if blob.encoding != "base64":
                        raise TransientError("github", f"blob {content.sha} of {path} came as {blob.encoding!r}")
                    data = base64.b64decode(blob.content)
                if len(data) != size or (max_bytes is not None and len(data) > max_bytes):
                    raise TransientError(
                        "github", f"{path} on {repo}@{branch}: {len(data)} bytes read, {size} announced"
                    )
                return FileVersion(content=data, blob_sha=content.sha)
        except GithubException as exc:
            if exc.status == 404:
                raise FileNotFound(f"{path} does not exist on {repo}@{branch}") from None
            raise

    def write_file(
        self, repo: str, path: str, branch: str, *, content: bytes, blob_sha: str, message: str
    ) -> CommitRef:
        """Replace the file only if its blob is still ``blob_sha`` (the Contents API's compare-and-swap)."""
        from github import GithubException, InputGitAuthor

        committer = InputGitAuthor(self._config.committer_name, self._config.committer_email)
        try:
            with self._translate(f"commit {path} on {repo}@{branch}"):
                result = self._repo(repo).update_file(
                    path, message, content, blob_sha, branch=branch, committer=committer, author=committer
                )
        except GithubException as exc:
            if exc.status in (409, 422):
                raise WriteConflict(_message(exc)) from None
            raise
        commit = result["commit"]
        return CommitRef(sha=commit.sha, url=commit.html_url, message=message)

    def commits_touching(self, repo: str, path: str, branch: str, *, limit: int) -> list[CommitRef]:
        """The newest ``limit`` commits on ``branch`` that changed ``path``, newest first (one request for
        up to 30): how services/heal.py finds who set the values file's tag."""
        found: list[CommitRef] = []
        with self._translate(f"list commits of {path} on {repo}@{branch}"):
            for commit in self._repo(repo).get_commits(sha=branch, path=path):
                git_commit = commit.commit
                author = commit.author.login if commit.author else (git_commit.author.name or "")
                found.append(CommitRef(sha=commit.sha, url=commit.html_url, message=git_commit.message, author=author))
                if len(found) >= limit:
                    break
        return found

    def _repo(self, full_name: str) -> Repository:
        if full_name not in self._repos:
            self._repos[full_name] = self._github().get_repo(full_name)
        return self._repos[full_name]

    def _github(self) -> Github:
        if self._client is None:
            from github import Github, GithubRetry

            self._client = Github(
                auth=self._credentials(),
                base_url=self._config.base_url,
                timeout=int(self._config.timeout_seconds),
                # A few quick retries of 5xx and rate limits; the Lambda retry covers longer outages.
                retry=GithubRetry(total=3, backoff_factor=0.3, secondary_rate_wait=5, max_rate_limit_wait=10),
                # PyGithub's default pacing (0.25 s per request, 1 s per write) would add seconds per event.
                seconds_between_requests=None,
                seconds_between_writes=None,
                lazy=True,
            )
        return self._client

    @contextmanager
    def _translate(self, action: str) -> Iterator[None]:
        """Map PyGithub/requests failures onto the retry rule; let decision-relevant ones through."""
        import requests
        from github import BadCredentialsException, GithubException, RateLimitExceededException

        self.request_count += 1
        try:
            yield
        except RateLimitExceededException:
            raise TransientError("github", f"{action}: rate limited") from None
        except BadCredentialsException:
            raise MisconfiguredError(
                "github", f"{action}: bad credentials; check the secret named in github.auth"
            ) from None
        except GithubException as exc:
            if exc.status >= 500 or exc.status == 429:
                raise TransientError("github", f"{action}: HTTP {exc.status}") from None
            if exc.status in (401, 403):
                raise MisconfiguredError(
                    "github", f"{action}: HTTP {exc.status} ({_message(exc)}); check the token's access"
                ) from None
            raise
        except requests.exceptions.RetryError:
            raise TransientError("github", f"{action}: still failing after retries") from None
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise TransientError("github", f"{action}: {type(exc).__name__}") from None


def _message(exc: Any) -> str:
    data = getattr(exc, "data", None)
    if isinstance(data, dict) and isinstance(data.get("message"), str):
        return str(data["message"])
    return str(getattr(exc, "message", "") or exc)


def credentials_from_secrets(
    config: GitHubConfig, read_secret: Callable[[str], str], *, installation_repo: str
) -> Callable[[], Auth]:
    """A factory of PyGithub auth from Secrets Manager: a token, or a GitHub App installation token.

    Without ``installation_id`` the App's installation is looked up on ``installation_repo`` (the
    GitOps repository), one extra request per process.
    """

    def make() -> Auth:
        from github import Auth, GithubIntegration

        if config.auth.token_secret:
            return Auth.Token(read_secret(config.auth.token_secret).strip())
        app = config.auth.app
        assert app is not None  # the schema requires token_secret or app
        app_auth = Auth.AppAuth(app.app_id, read_secret(app.private_key_secret))
        installation_id = app.installation_id
        if installation_id is None:
            owner, name = installation_repo.split("/", 1)
            integration = GithubIntegration(auth=app_auth, base_url=config.base_url)
            installation_id = integration.get_repo_installation(owner, name).id
        return app_auth.get_installation_auth(installation_id)

    return make
