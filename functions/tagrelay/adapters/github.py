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
from tagrelay.domain.facts import (
    COMPARE_STATUSES,
    CommitRef,
    CompareStatus,
    Comparison,
    FileVersion,
    MergeResult,
    PullRequestRef,
    SourceCommit,
)
from tagrelay.errors import (
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
                # GitHub's schema lets both be null: no account for the email, and no git author.
                author = _author(commit, git_commit)
                person = git_commit.author or git_commit.committer
                committed_at = person.date if person else None
                subject = (git_commit.message or "").splitlines()[0] if git_commit.message else ""
                url = commit.html_url
        except GithubException as exc:
            if exc.status in (404, 422):
                hint = (
                    ""
                    if len(short_sha) == 40
                    else f"; GitHub answers so too when more than one commit starts with {short_sha}: "
                    "a longer SHA settles it"
                )
                raise CommitNotFound(f"{_message(exc)}{hint}") from None
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
                author = _author(commit, git_commit, unknown="")
                found.append(CommitRef(sha=commit.sha, url=commit.html_url, message=git_commit.message, author=author))
                if len(found) >= limit:
                    break
        return found

    # --- pull-request write-back (gitops.write: pull_request) ---

    def branch_head(self, repo: str, branch: str) -> str | None:
        """The commit ``branch`` points at, or None when it does not exist (one request)."""
        from github import GithubException

        try:
            with self._translate(f"read branch {branch} of {repo}"):
                return str(self._repo(repo).get_git_ref(f"heads/{branch}").object.sha)
        except GithubException as exc:
            if exc.status == 404:
                return None
            raise

    def reset_branch(self, repo: str, branch: str, sha: str, *, exists: bool) -> None:
        """Point ``branch`` at ``sha``: created, or moved there even when that is not a fast-forward.

        GitHub's 422 ("Reference already exists", "Reference does not exist") means another writer created
        or deleted the branch since it was read: a WriteConflict, so the caller re-reads and decides again."""
        from urllib.parse import quote

        from github import GithubException

        try:
            with self._translate(f"reset {branch} of {repo} to {sha[:12]}"):
                if exists:
                    # PATCH /git/refs/{ref} itself: a lazy GitRef would PATCH the /git/ref/ URL it was read
                    # from, which GitHub does not serve (the OpenAPI check of the stand-in's answers found it).
                    url = f"{self._config.base_url}/repos/{repo}/git/refs/heads/{quote(branch)}"
                    self._github().requester.requestJsonAndCheck("PATCH", url, input={"sha": sha, "force": True})
                else:
                    self._repo(repo).create_git_ref(f"refs/heads/{branch}", sha)
        except GithubException as exc:
            if exc.status == 422:
                raise WriteConflict(f"{branch} of {repo}: {_message(exc)}") from None
            raise

    def open_pull_request(self, repo: str, head: str, base: str) -> PullRequestRef | None:
        """The open pull request from ``head`` into ``base``, if there is one (one request)."""
        owner = repo.split("/", 1)[0]
        with self._translate(f"list pull requests {head} -> {base} of {repo}"):
            for pull in self._repo(repo).get_pulls(state="open", head=f"{owner}:{head}", base=base):
                return PullRequestRef(number=pull.number, url=pull.html_url, head_sha=pull.head.sha, title=pull.title)
        return None

    def create_pull_request(self, repo: str, head: str, base: str, *, title: str, body: str) -> PullRequestRef:
        """A pull request from ``head`` into ``base`` (one request).

        GitHub's 422 (a pull request for head and base is open already, a branch is gone, or head has
        nothing base lacks) means another evaluation got there first: a WriteConflict, re-read and decided again.
        """
        from github import GithubException

        try:
            with self._translate(f"open a pull request {head} -> {base} on {repo}"):
                pull = self._repo(repo).create_pull(base=base, head=head, title=title, body=body)
                return PullRequestRef(number=pull.number, url=pull.html_url, head_sha=pull.head.sha, title=pull.title)
        except GithubException as exc:
            if exc.status == 422:
                raise WriteConflict(f"pull request {head} -> {base} of {repo}: {_validation_message(exc)}") from None
            raise

    def update_pull_request(
        self, repo: str, number: int, *, title: str | None = None, body: str | None = None, close: bool = False
    ) -> None:
        """Retitle a pull request (a newer release took it over), or close it."""
        from github.GithubObject import NotSet

        with self._translate(f"update pull request #{number} of {repo}"):
            self._repo(repo).get_pull(number).edit(
                title=title if title is not None else NotSet,
                body=body if body is not None else NotSet,
                state="closed" if close else NotSet,
            )

    def merge_pull_request(self, repo: str, number: int, *, head_sha: str, title: str, message: str) -> MergeResult:
        """Squash-merge the pull request if GitHub lets us now (one request; two with the lazy pull).

        A protected branch that requires reviews or checks, a conflict, or a head that moved answer
        405/409: the pull request stays open (``merged`` False, with GitHub's reason). GitHub's
        auto-merge can only be enabled through GraphQL, so tagrelay merges through REST when it can.
        """
        from github import GithubException

        try:
            with self._translate(f"merge pull request #{number} of {repo}"):
                pull = self._repo(repo).get_pull(number)
                merged = pull.merge(commit_title=title, commit_message=message, merge_method="squash", sha=head_sha)
                return MergeResult(merged=bool(merged.merged), sha=merged.sha, reason=merged.message or "")
        except GithubException as exc:
            if exc.status in (405, 409, 422):
                return MergeResult(merged=False, sha=None, reason=_message(exc))
            raise

    def pull_request_for_commit(self, repo: str, sha: str) -> PullRequestRef | None:
        """The pull request commit ``sha`` came through (one request: the first page of GitHub's "List pull
        requests associated with a commit", ``GET /repos/{owner}/{repo}/commits/{sha}/pulls``).

        For a commit on the default branch GitHub answers the merged pull request that introduced it (a
        squash merge's commit is its ``merge_commit_sha``); elsewhere, the pull requests that contain it.
        The one merged as ``sha`` wins, else the first answered; None when GitHub knows none, or knows no
        such commit (its 422 "No commit found for SHA")."""
        from github import GithubException

        try:
            with self._translate(f"list pull requests of commit {sha[:12]} on {repo}"):
                answered = [
                    (
                        pull.merge_commit_sha == sha,
                        PullRequestRef(
                            number=pull.number,
                            url=pull.html_url,
                            head_sha=pull.head.sha,
                            title=pull.title,
                            merged=pull.merged_at is not None,
                        ),
                    )
                    for pull in self._repo(repo).get_commit(sha).get_pulls().get_page(0)
                ]
        except GithubException as exc:
            if exc.status in (404, 422):
                return None
            raise
        merged_as_sha = [pull for is_merge_commit, pull in answered if is_merge_commit]
        return next(iter(merged_as_sha or [pull for _, pull in answered]), None)

    # --- GitHub Deployments (notifications) ---

    def find_deployment(self, repo: str, sha: str, environment: str, decision_id: str) -> int | None:
        """The deployment tagrelay created for this decision (its payload names it), if any (one request
        for up to 100 deployments of the commit and environment)."""
        with self._translate(f"list deployments of {sha[:12]} to {environment} on {repo}"):
            url = f"{self._config.base_url}/repos/{repo}/deployments"
            _, found = self._github().requester.requestJsonAndCheck(
                "GET", url, parameters={"sha": sha, "environment": environment, "per_page": 100}
            )
        for deployment in found if isinstance(found, list) else []:
            payload = deployment.get("payload") if isinstance(deployment, dict) else None
            if isinstance(payload, dict) and payload.get("tagrelay_decision_id") == decision_id:
                return int(deployment["id"])
        return None

    def create_deployment(
        self, repo: str, *, sha: str, environment: str, description: str, payload: dict[str, Any], production: bool
    ) -> int:
        """A deployment of commit ``sha`` to ``environment``; its id (one request).

        ``auto_merge`` off and ``required_contexts`` empty: the record is of what tagrelay deploys, it
        must neither merge branches nor wait for commit statuses (docs.github.com/rest/deployments).
        """
        from github import GithubException

        try:
            with self._translate(f"create a deployment of {sha[:12]} to {environment} on {repo}"):
                deployment = self._repo(repo).create_deployment(
                    ref=sha,
                    task="deploy",
                    auto_merge=False,
                    required_contexts=[],
                    payload=payload,
                    environment=environment,
                    description=description[:140],
                    transient_environment=False,
                    production_environment=production,
                )
                return int(deployment.id)
        except GithubException as exc:
            if exc.status == 422:  # "No ref found for: <sha>": GitHub does not know the commit
                raise CommitNotFound(f"{repo}: {_message(exc)}") from None
            raise

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
    ) -> None:
        """A status of the deployment (one request). ``log_url`` replaces the legacy ``target_url``;
        PyGithub does not send it, so the request is made through its requester. ``auto_inactive``: GitHub
        marks the environment's earlier successful deployments inactive."""
        body: dict[str, Any] = {"state": state, "description": description[:140], "auto_inactive": auto_inactive}
        if log_url:
            body["log_url"] = log_url
        if environment_url:
            body["environment_url"] = environment_url
        with self._translate(f"post deployment status {state} on {repo}"):
            url = f"{self._config.base_url}/repos/{repo}/deployments/{deployment_id}/statuses"
            self._github().requester.requestJsonAndCheck("POST", url, input=body)

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


def _author(commit: Any, git_commit: Any, *, unknown: str = "unknown") -> str:
    """The GitHub login when GitHub maps the commit to an account, else the git author's name."""
    if commit.author is not None and commit.author.login:
        return str(commit.author.login)
    person = git_commit.author or git_commit.committer
    return str(person.name) if person is not None and person.name else unknown


def _message(exc: Any) -> str:
    data = getattr(exc, "data", None)
    if isinstance(data, dict) and isinstance(data.get("message"), str):
        return str(data["message"])
    return str(getattr(exc, "message", "") or exc)


def _validation_message(exc: Any) -> str:
    """GitHub's message with what its ``errors`` say ("Validation Failed" alone names nothing)."""
    data = getattr(exc, "data", None)
    errors = data.get("errors") if isinstance(data, dict) else None
    details = [
        str(error.get("message") or f"{error.get('field', error.get('resource', ''))} {error.get('code', '')}".strip())
        for error in errors or []
        if isinstance(error, dict)
    ]
    return "; ".join([_message(exc), *details])


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
