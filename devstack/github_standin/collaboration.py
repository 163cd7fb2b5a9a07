"""Pull requests and Deployments: the stand-in's routes for pull-request write-back and deployment notifications.

Kept in memory (they live as long as the server), over the real bare repository: a pull request's
head and base are real branches, its merge is a real commit (``git merge-tree`` decides whether it is
mergeable), and a deployment's ``ref`` is resolved to a real commit. Behaviours from GitHub's REST
docs (docs.github.com/rest/pulls/pulls, /rest/deployments/deployments, /rest/deployments/statuses):

* ``POST /pulls`` answers 422 ``Validation Failed`` when the head branch does not exist, when an open
  pull request already exists for head and base ("A pull request already exists for owner:branch."),
  and when head has no commits base lacks ("No commits between base and head").
* ``PUT /pulls/{n}/merge`` answers 405 ``Pull Request is not mergeable`` (closed, merged, or a
  conflict) and 409 ``Head branch was modified. Review and try the merge again.`` for a stale ``sha``.
  A protected branch's refusal (405 "At least 1 approving review is required ...") is a fault to inject.
* Auto-merge is not served: GitHub enables it only through GraphQL (``enablePullRequestAutoMerge``).
* ``POST /deployments/{id}/statuses`` with ``auto_inactive`` (default true) and state ``success`` adds an
  ``inactive`` status to the earlier deployments of that environment whose last status was success.
"""

from __future__ import annotations

import itertools
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from devstack.github_standin import shapes
from devstack.github_standin.gitstore import (
    AmbiguousShortSha,
    BareRepo,
    Identity,
    ObjectNotFound,
    git_env,
    is_valid_ref_name,
)

if TYPE_CHECKING:
    from devstack.github_standin.api import Call, GitHubApi, Reply

T = TypeVar("T")
DOCS_PULLS = "https://docs.github.com/rest/pulls/pulls"
DOCS_MERGE = "https://docs.github.com/rest/pulls/pulls#merge-a-pull-request"
DOCS_DEPLOYMENTS = "https://docs.github.com/rest/deployments/deployments"
DOCS_STATUSES = "https://docs.github.com/rest/deployments/statuses"
BOT = "tagrelay[bot]"  # who the stand-in says made a pull request, deployment or status (one token, one actor)
MERGER = Identity("GitHub", "noreply@github.com")
_STATES = ("error", "failure", "inactive", "in_progress", "queued", "pending", "success")


@dataclass
class RepoState:
    pulls: list[shapes.Pull] = field(default_factory=list)
    deployments: list[shapes.Deployment] = field(default_factory=list)


@dataclass
class Collaboration:
    """Every repository's pull requests and deployments; ids are global as on GitHub."""

    lock: threading.RLock = field(default_factory=threading.RLock)
    repos: dict[str, RepoState] = field(default_factory=dict)
    ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1001))

    def state(self, call: Call) -> RepoState:
        return self.repos.setdefault(f"{call.params['owner']}/{call.params['repo']}", RepoState())


def _page(call: Call, items: Sequence[T], render: Callable[[T], Any]) -> Reply:
    """One page of a list, as GitHub pages its list endpoints: ``per_page`` (30, at most 100) and
    ``page``, with the ``Link`` header of the pages around it."""
    per_page = call.int_query("per_page", 30, 100)
    page = call.int_query("page", 1, 10_000)
    reply = _reply(200, [render(item) for item in items[(page - 1) * per_page : page * per_page]])
    reply.headers.update(call.page_links(page, max(1, -(-len(items) // per_page))))
    return reply


def _reply(status: int, body: Any = None) -> Reply:
    from devstack.github_standin.api import Reply

    return Reply(status, body)


def _error(status: int, message: str, docs: str, errors: list[dict[str, Any]] | None = None) -> Exception:
    from devstack.github_standin.api import ApiError

    error = ApiError(status, message, docs)
    if errors is not None:
        error.errors = errors  # type: ignore[attr-defined]
    return error


# -- pull requests --------------------------------------------------------------------------------


def _mergeable(repo: BareRepo, base_sha: str, head_sha: str) -> tuple[bool, str | None]:
    """Whether head merges cleanly into base, and the merged tree (git merge-tree --write-tree, git >= 2.38)."""
    if repo.is_ancestor(base_sha, head_sha):
        return True, repo.commit(head_sha).tree
    result = subprocess.run(
        ["git", f"--git-dir={repo.git_dir}", "merge-tree", "--write-tree", base_sha, head_sha],
        capture_output=True,
        env=git_env(),
        check=False,
    )
    if result.returncode == 0:
        return True, result.stdout.decode().split()[0]
    return False, None


def _pull_body(api: GitHubApi, call: Call, pull: shapes.Pull, *, full: bool) -> dict[str, Any]:
    repo = api.repository(call.params["owner"], call.params["repo"])
    head = repo.branch_head(pull.head)
    if head is not None and pull.state == "open":
        pull.head_sha = head
    base_sha = repo.branch_head(pull.base) or pull.head_sha
    mergeable = None
    if full and pull.state == "open":
        mergeable = _mergeable(repo, base_sha, pull.head_sha)[0]
    changed = len(repo.compare(base_sha, pull.head_sha).ahead) if full and pull.state == "open" else 0
    return shapes.pull_request(
        call.links(), pull, repo.default_branch(), base_sha, full=full, mergeable=mergeable, changed_files=changed
    )


def _pull(api: GitHubApi, call: Call) -> shapes.Pull:
    number = int(call.params["number"])
    found = next((pull for pull in api.collaboration.state(call).pulls if pull.number == number), None)
    if found is None:
        raise _error(404, "Not Found", DOCS_PULLS)
    return found


def create_pull(api: GitHubApi, call: Call) -> Reply:
    repo = api.repository(call.params["owner"], call.params["repo"])
    body = call.request.json()
    title, head, base = body.get("title"), body.get("head"), body.get("base")
    if not all(isinstance(value, str) and value for value in (title, head, base)):
        raise _error(422, "Validation Failed", DOCS_PULLS, [{"resource": "PullRequest", "code": "missing_field"}])
    head = str(head).split(":", 1)[-1]
    head_sha = repo.branch_head(head) if is_valid_ref_name(head) else None
    base_sha = repo.branch_head(str(base)) if is_valid_ref_name(str(base)) else None
    if head_sha is None or base_sha is None:
        field_name = "head" if head_sha is None else "base"
        raise _error(
            422, "Validation Failed", DOCS_PULLS, [{"resource": "PullRequest", "field": field_name, "code": "invalid"}]
        )
    with api.collaboration.lock:
        state = api.collaboration.state(call)
        if any(p.state == "open" and p.head == head and p.base == base for p in state.pulls):
            message = f"A pull request already exists for {call.params['owner']}:{head}."
            raise _error(
                422,
                "Validation Failed",
                DOCS_PULLS,
                [{"resource": "PullRequest", "code": "custom", "message": message}],
            )
        if repo.is_ancestor(head_sha, base_sha):
            message = f"No commits between {base} and {head}"
            raise _error(
                422,
                "Validation Failed",
                DOCS_PULLS,
                [{"resource": "PullRequest", "code": "custom", "message": message}],
            )
        now = time.time()
        pull = shapes.Pull(
            number=len(state.pulls) + 1,
            title=str(title),
            body=body.get("body") if isinstance(body.get("body"), str) else None,
            head=head,
            base=str(base),
            user=BOT,
            created_at=now,
            updated_at=now,
            head_sha=head_sha,
        )
        state.pulls.append(pull)
    return _reply(201, _pull_body(api, call, pull, full=True))


def list_pulls(api: GitHubApi, call: Call) -> Reply:
    query = call.request.query
    wanted_state = query.get("state", "open")
    head = query.get("head")
    base = query.get("base")
    with api.collaboration.lock:
        pulls = [
            pull
            for pull in reversed(api.collaboration.state(call).pulls)  # newest first (sort=created, desc)
            if wanted_state in ("all", pull.state)
            and (head is None or f"{call.params['owner']}:{pull.head}" == head or pull.head == head)
            and (base is None or pull.base == base)
        ]
    return _page(call, pulls, lambda pull: _pull_body(api, call, pull, full=False))


def get_pull(api: GitHubApi, call: Call) -> Reply:
    return _reply(200, _pull_body(api, call, _pull(api, call), full=True))


def update_pull(api: GitHubApi, call: Call) -> Reply:
    body = call.request.json()
    with api.collaboration.lock:
        pull = _pull(api, call)
        if isinstance(body.get("title"), str):
            pull.title = body["title"]
        if isinstance(body.get("body"), str):
            pull.body = body["body"]
        if body.get("state") in ("open", "closed") and pull.merged_at is None:
            pull.state = body["state"]
            pull.closed_at = time.time() if pull.state == "closed" else None
        pull.updated_at = time.time()
    return _reply(200, _pull_body(api, call, pull, full=True))


def merge_pull(api: GitHubApi, call: Call) -> Reply:
    repo = api.repository(call.params["owner"], call.params["repo"])
    body = call.request.json()
    method = body.get("merge_method", "merge")
    if method not in ("merge", "squash", "rebase"):
        raise _error(
            422,
            "Validation Failed",
            DOCS_MERGE,
            [{"resource": "PullRequest", "field": "merge_method", "code": "invalid"}],
        )
    with api.collaboration.lock, repo.write_lock:
        pull = _pull(api, call)
        head_sha = repo.branch_head(pull.head) or pull.head_sha
        base_sha = repo.branch_head(pull.base)
        if pull.state != "open" or base_sha is None:
            raise _error(405, "Pull Request is not mergeable", DOCS_MERGE)
        if isinstance(body.get("sha"), str) and body["sha"] != head_sha:
            raise _error(409, "Head branch was modified. Review and try the merge again.", DOCS_MERGE)
        clean, tree = _mergeable(repo, base_sha, head_sha)
        if not clean or tree is None:
            raise _error(405, "Pull Request is not mergeable", DOCS_MERGE)
        head_commit = repo.commit(head_sha)
        title = body.get("commit_title") or (
            f"{pull.title} (#{pull.number})" if method == "squash" else f"Merge pull request #{pull.number}"
        )
        message = title + (f"\n\n{body['commit_message']}" if body.get("commit_message") else "")
        if method == "merge":
            parents = [base_sha, head_sha]
            author = MERGER
        else:  # squash, and rebase of the one commit tagrelay makes: the head commit's author
            parents = [base_sha]
            author = Identity(head_commit.author.name, head_commit.author.email)
            if method == "rebase":
                message = head_commit.message
        sha = repo.write_commit(tree, parents, message, author, MERGER)
        if not repo.update_ref(f"refs/heads/{pull.base}", sha, base_sha):
            raise _error(409, "Base branch was modified. Review and try the merge again.", DOCS_MERGE)
        now = time.time()
        pull.head_sha, pull.state, pull.merged_at, pull.closed_at = head_sha, "closed", now, now
        pull.merge_commit_sha, pull.merged_by, pull.updated_at = sha, BOT, now
    return _reply(200, {"sha": sha, "merged": True, "message": "Pull Request successfully merged"})


def commit_pulls(api: GitHubApi, call: Call) -> Reply:
    """``GET /commits/{commit_sha}/pulls`` ("List pull requests associated with a commit"): the pull
    requests merged as the commit (a squash merge's ``merge_commit_sha``) or holding it in their head, an
    open one only while its base lacks it; newest first, as ``pull-request-simple``. An unknown commit is
    answered as ``GET /commits/{ref}`` answers it (422)."""
    from devstack.github_standin.api import DOCS_COMMIT

    repo = api.repository(call.params["owner"], call.params["repo"])
    ref = call.params["ref"]
    try:
        sha = repo.resolve_commit(ref)
    except (AmbiguousShortSha, ObjectNotFound) as error:
        raise _error(422, f"No commit found for SHA: {ref}", DOCS_COMMIT) from error

    def holds(pull: shapes.Pull) -> bool:
        head = (repo.branch_head(pull.head) if pull.state == "open" else None) or pull.head_sha
        if not repo.is_ancestor(sha, head):
            return False
        base = repo.branch_head(pull.base)
        return pull.merged_at is not None or base is None or not repo.is_ancestor(sha, base)

    with api.collaboration.lock:
        associated = [
            pull
            for pull in reversed(api.collaboration.state(call).pulls)
            if pull.merge_commit_sha == sha or holds(pull)
        ]
    return _page(call, associated, lambda pull: _pull_body(api, call, pull, full=False))


# -- deployments ----------------------------------------------------------------------------------


def _deployment(api: GitHubApi, call: Call) -> shapes.Deployment:
    wanted = int(call.params["deployment_id"])
    found = next((d for d in api.collaboration.state(call).deployments if d.id == wanted), None)
    if found is None:
        raise _error(404, "Not Found", DOCS_DEPLOYMENTS)
    return found


def create_deployment(api: GitHubApi, call: Call) -> Reply:
    repo = api.repository(call.params["owner"], call.params["repo"])
    body = call.request.json()
    ref = body.get("ref")
    if not isinstance(ref, str) or not ref:
        raise _error(422, 'Invalid request.\n\n"ref" wasn\'t supplied.', DOCS_DEPLOYMENTS)
    try:
        sha = repo.resolve_commit(ref)
    except (ObjectNotFound, Exception) as error:  # an unknown or ambiguous ref
        raise _error(422, f"No ref found for: {ref}", DOCS_DEPLOYMENTS) from error
    payload = body.get("payload", {})
    if not isinstance(payload, (dict, str)):
        raise _error(
            422, "Invalid request.\n\nFor 'properties/payload', must be an object or a string.", DOCS_DEPLOYMENTS
        )
    now = time.time()
    with api.collaboration.lock:
        record = shapes.Deployment(
            id=next(api.collaboration.ids),
            sha=sha,
            ref=ref,
            task=str(body.get("task") or "deploy"),
            environment=str(body.get("environment") or "production"),
            payload=payload,
            description=body.get("description") if isinstance(body.get("description"), str) else None,
            creator=BOT,
            created_at=now,
            updated_at=now,
            transient_environment=bool(body.get("transient_environment", False)),
            production_environment=bool(body.get("production_environment", body.get("environment") == "production")),
        )
        api.collaboration.state(call).deployments.append(record)
    return _reply(201, shapes.deployment(call.links(), record))


def list_deployments(api: GitHubApi, call: Call) -> Reply:
    query: Mapping[str, str] = call.request.query
    with api.collaboration.lock:
        found = [
            d
            for d in reversed(api.collaboration.state(call).deployments)
            if all(
                query.get(name) in (None, value)
                for name, value in (("sha", d.sha), ("ref", d.ref), ("task", d.task), ("environment", d.environment))
            )
        ]
    return _page(call, found, lambda deployment: shapes.deployment(call.links(), deployment))


def get_deployment(api: GitHubApi, call: Call) -> Reply:
    return _reply(200, shapes.deployment(call.links(), _deployment(api, call)))


def create_deployment_status(api: GitHubApi, call: Call) -> Reply:
    body = call.request.json()
    state = body.get("state")
    if state not in _STATES:
        raise _error(
            422,
            "Validation Failed",
            DOCS_STATUSES,
            [{"resource": "DeploymentStatus", "field": "state", "code": "invalid"}],
        )
    with api.collaboration.lock:
        record = _deployment(api, call)
        now = time.time()
        status = _new_status(api, record, state, body, now)
        if state == "success" and body.get("auto_inactive", True):
            for earlier in api.collaboration.state(call).deployments:
                if (
                    earlier.id != record.id
                    and earlier.environment == record.environment
                    and earlier.created_at <= record.created_at
                    and earlier.statuses
                    and earlier.statuses[-1].state == "success"
                ):
                    _new_status(api, earlier, "inactive", {}, now)
    return _reply(201, shapes.deployment_status(call.links(), record, status))


def _new_status(
    api: GitHubApi, record: shapes.Deployment, state: str, body: Mapping[str, Any], now: float
) -> shapes.DeploymentStatus:
    log_url = str(body.get("log_url") or body.get("target_url") or "")
    status = shapes.DeploymentStatus(
        id=next(api.collaboration.ids),
        state=state,
        description=str(body.get("description") or "")[:140],
        environment=str(body.get("environment") or record.environment),
        log_url=log_url,
        environment_url=str(body.get("environment_url") or ""),
        creator=BOT,
        created_at=now,
    )
    record.statuses.append(status)
    record.updated_at = now
    return status


def list_deployment_statuses(api: GitHubApi, call: Call) -> Reply:
    with api.collaboration.lock:
        record = _deployment(api, call)
        statuses = list(reversed(record.statuses))  # newest first, as GitHub lists them
    return _reply(200, [shapes.deployment_status(call.links(), record, status) for status in statuses])
