"""JSON bodies shaped like GitHub's (GitHub's REST API docs, as PyGithub 2.x calls it), with every URL pointing back at the stand-in.

PyGithub refuses to follow a URL whose host or port differs from its ``base_url``, so no body may
mention api.github.com. API URLs carry the prefix (``/api/v3`` for GitHub Enterprise); web URLs
(``html_url``) do not, as on a GitHub Enterprise host.
"""

from __future__ import annotations

import base64
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from devstack.github_standin.config import GitHubAppSpec
from devstack.github_standin.gitstore import CommitInfo, FileChange, Signature, TreeEntry

CONTENT_INLINE_LIMIT = 1024 * 1024  # larger files come back with encoding "none", as on GitHub
UNSIGNED = {"verified": False, "reason": "unsigned", "signature": None, "payload": None, "verified_at": None}
_ENTRY_TYPES = {"blob": "file", "tree": "dir", "commit": "submodule"}


@dataclass(frozen=True)
class Links:
    """URL builder for one repository as seen from one request."""

    api: str  # scheme://host:port/<prefix>
    web: str  # scheme://host:port
    owner: str
    repo: str

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.repo}"

    @property
    def repo_api(self) -> str:
        return f"{self.api}/repos/{self.full_name}"

    @property
    def repo_web(self) -> str:
        return f"{self.web}/{self.full_name}"

    def git_commit(self, sha: str) -> str:
        return f"{self.repo_api}/git/commits/{sha}"

    def commit(self, sha: str) -> str:
        return f"{self.repo_api}/commits/{sha}"

    def commit_web(self, sha: str) -> str:
        return f"{self.repo_web}/commit/{sha}"


def iso_date(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def node_id(kind: str, key: str) -> str:
    return base64.b64encode(f"{kind}:{key}".encode()).decode()


def numeric_id(key: str) -> int:
    return zlib.crc32(key.encode()) or 1


def error(message: str, documentation_url: str = "https://docs.github.com/rest") -> dict[str, Any]:
    return {"message": message, "documentation_url": documentation_url}


def user(api: str, web: str, login: str, *, kind: str = "User") -> dict[str, Any]:
    """GitHub's ``simple-user``, with every field its schema requires (the ``*_url`` templates too)."""
    user_api = f"{api}/users/{quote(login)}"
    return {
        "login": login,
        "id": numeric_id(login),
        "node_id": node_id("User", login),
        "avatar_url": f"{web}/avatars/{quote(login)}",
        "gravatar_id": "",
        "url": user_api,
        "html_url": f"{web}/{quote(login)}",
        "followers_url": f"{user_api}/followers",
        "following_url": f"{user_api}/following{{/other_user}}",
        "gists_url": f"{user_api}/gists{{/gist_id}}",
        "starred_url": f"{user_api}/starred{{/owner}}{{/repo}}",
        "subscriptions_url": f"{user_api}/subscriptions",
        "organizations_url": f"{user_api}/orgs",
        "repos_url": f"{user_api}/repos",
        "events_url": f"{user_api}/events{{/privacy}}",
        "received_events_url": f"{user_api}/received_events",
        "type": kind,
        "user_view_type": "public",
        "site_admin": False,
    }


def login_for_email(email: str) -> str | None:
    """GitHub maps a commit email to an account; the stand-in derives a login from the email's local part.

    ``12345+octocat@users.noreply.github.com`` → ``octocat`` (GitHub's no-reply form).
    """
    local = email.partition("@")[0]
    if not local:
        return None
    return local.split("+", 1)[1] if "+" in local and local.split("+", 1)[0].isdigit() else local


def commit_user(links: Links, signature: Signature) -> dict[str, Any] | None:
    login = login_for_email(signature.email)
    if login is None:
        return None
    return user(links.api, links.web, login, kind="Bot" if login.endswith("[bot]") else "User")


def person(signature: Signature) -> dict[str, Any]:
    return {"name": signature.name, "email": signature.email, "date": iso_date(signature.timestamp)}


def git_commit(links: Links, info: CommitInfo) -> dict[str, Any]:
    """The Git Data API commit object (``GET /git/commits/{sha}``, ``POST /git/commits``)."""
    return {
        "sha": info.sha,
        "node_id": node_id("Commit", f"{links.full_name}:{info.sha}"),
        "url": links.git_commit(info.sha),
        "html_url": links.commit_web(info.sha),
        "author": person(info.author),
        "committer": person(info.committer),
        "message": info.message,
        "tree": {"sha": info.tree, "url": f"{links.repo_api}/git/trees/{info.tree}"},
        "parents": [
            {"sha": parent, "url": links.git_commit(parent), "html_url": links.commit_web(parent)}
            for parent in info.parents
        ],
        "verification": dict(UNSIGNED),
    }


def commit(links: Links, info: CommitInfo, files: Sequence[FileChange] | None = None) -> dict[str, Any]:
    """The REST commit object of the commits and compare endpoints; ``files`` adds stats and files."""
    body: dict[str, Any] = {
        "sha": info.sha,
        "node_id": node_id("Commit", f"{links.full_name}:{info.sha}"),
        "url": links.commit(info.sha),
        "html_url": links.commit_web(info.sha),
        "comments_url": f"{links.commit(info.sha)}/comments",
        "commit": {
            "url": links.git_commit(info.sha),
            "author": person(info.author),
            "committer": person(info.committer),
            "message": info.message,
            "tree": {"sha": info.tree, "url": f"{links.repo_api}/git/trees/{info.tree}"},
            "comment_count": 0,
            "verification": dict(UNSIGNED),
        },
        "author": commit_user(links, info.author),
        "committer": commit_user(links, info.committer),
        "parents": [
            {"sha": parent, "url": links.commit(parent), "html_url": links.commit_web(parent)}
            for parent in info.parents
        ],
    }
    if files is not None:
        additions = sum(change.additions for change in files)
        deletions = sum(change.deletions for change in files)
        body["stats"] = {"total": additions + deletions, "additions": additions, "deletions": deletions}
        body["files"] = [_file_change(links, info.sha, change) for change in files]
    return body


def _file_change(links: Links, commit_sha: str, change: FileChange) -> dict[str, Any]:
    quoted = quote(change.path)
    body: dict[str, Any] = {
        "sha": change.sha,
        "filename": change.path,
        "status": change.status,
        "additions": change.additions,
        "deletions": change.deletions,
        "changes": change.additions + change.deletions,
        "blob_url": f"{links.repo_web}/blob/{commit_sha}/{quoted}",
        "raw_url": f"{links.repo_web}/raw/{commit_sha}/{quoted}",
        "contents_url": f"{links.repo_api}/contents/{quoted}?ref={commit_sha}",
    }
    if change.patch is not None:
        body["patch"] = change.patch
    return body


def content_entry(links: Links, entry: TreeEntry, ref: str) -> dict[str, Any]:
    """A directory listing item, or the metadata part of a file (no ``content``)."""
    quoted = quote(entry.path)
    kind = "symlink" if entry.mode == "120000" else _ENTRY_TYPES.get(entry.type, "file")
    api_url = f"{links.repo_api}/contents/{quoted}?ref={quote(ref, safe='')}"
    git_url = (
        f"{links.repo_api}/git/trees/{entry.sha}" if entry.type == "tree" else f"{links.repo_api}/git/blobs/{entry.sha}"
    )
    html_url = f"{links.repo_web}/{'tree' if entry.type == 'tree' else 'blob'}/{ref}/{quoted}"
    return {
        "type": kind,
        "size": entry.size or 0,
        "name": entry.name,
        "path": entry.path,
        "sha": entry.sha,
        "url": api_url,
        "git_url": git_url,
        "html_url": html_url,
        "download_url": f"{links.repo_web}/raw/{ref}/{quoted}" if entry.type == "blob" else None,
        "_links": {"self": api_url, "git": git_url, "html": html_url},
    }


def content_file(links: Links, entry: TreeEntry, ref: str, data: bytes) -> dict[str, Any]:
    """``GET /contents/{path}`` for a file: base64 with a newline every 60 characters, as GitHub sends it."""
    body = content_entry(links, entry, ref)
    if len(data) > CONTENT_INLINE_LIMIT:
        body.update(encoding="none", content="")
    else:
        encoded = base64.b64encode(data).decode()
        lines = [encoded[start : start + 60] for start in range(0, len(encoded), 60)]
        body.update(encoding="base64", content="".join(f"{line}\n" for line in lines))
    if entry.mode == "120000":
        body["target"] = data.decode(errors="replace")
    return body


def git_ref(links: Links, full_ref: str, sha: str) -> dict[str, Any]:
    return {
        "ref": full_ref,
        "node_id": node_id("Ref", f"{links.full_name}:{full_ref}"),
        "url": f"{links.repo_api}/git/{quote(full_ref)}",
        "object": {"type": "commit", "sha": sha, "url": links.git_commit(sha)},
    }


def git_tree(links: Links, sha: str, entries: Sequence[TreeEntry]) -> dict[str, Any]:
    items = []
    for entry in entries:
        item: dict[str, Any] = {"path": entry.path, "mode": entry.mode, "type": entry.type, "sha": entry.sha}
        if entry.type == "blob":
            item["size"] = entry.size
            item["url"] = f"{links.repo_api}/git/blobs/{entry.sha}"
        elif entry.type == "tree":
            item["url"] = f"{links.repo_api}/git/trees/{entry.sha}"
        items.append(item)
    return {"sha": sha, "url": f"{links.repo_api}/git/trees/{sha}", "tree": items, "truncated": False}


def git_blob(links: Links, sha: str, data: bytes | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"sha": sha, "url": f"{links.repo_api}/git/blobs/{sha}"}
    if data is not None:
        body.update(
            node_id=node_id("Blob", f"{links.full_name}:{sha}"),
            size=len(data),
            content=base64.b64encode(data).decode(),
            encoding="base64",
        )
    return body


def branch(links: Links, name: str, head: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": name,
        "commit": head,
        "protected": False,
        "_links": {"self": f"{links.repo_api}/branches/{quote(name)}", "html": f"{links.repo_web}/tree/{name}"},
    }


def repository(links: Links, default_branch: str) -> dict[str, Any]:
    owner = user(links.api, links.web, links.owner, kind="Organization")
    api = links.repo_api
    return {
        "id": numeric_id(links.full_name),
        "node_id": node_id("Repository", links.full_name),
        "name": links.repo,
        "full_name": links.full_name,
        "private": True,
        "owner": owner,
        "html_url": links.repo_web,
        "description": None,
        "fork": False,
        "url": api,
        "branches_url": f"{api}/branches{{/branch}}",
        "commits_url": f"{api}/commits{{/sha}}",
        "compare_url": f"{api}/compare/{{base}}...{{head}}",
        "contents_url": f"{api}/contents/{{+path}}",
        "git_commits_url": f"{api}/git/commits{{/sha}}",
        "git_refs_url": f"{api}/git/refs{{/sha}}",
        "trees_url": f"{api}/git/trees{{/sha}}",
        "blobs_url": f"{api}/git/blobs{{/sha}}",
        "clone_url": f"{links.repo_web}.git",
        "default_branch": default_branch,
        "visibility": "private",
        "archived": False,
        "disabled": False,
        "permissions": {"admin": False, "maintain": False, "push": True, "triage": True, "pull": True},
    }


def installation(api: str, web: str, app: GitHubAppSpec, account: str) -> dict[str, Any]:
    return {
        "id": app.installation_id,
        "app_id": app.app_id,
        "app_slug": app.slug,
        "client_id": f"Iv1.{app.app_id:016x}",
        "target_id": numeric_id(account),
        "target_type": "Organization",
        "account": user(api, web, account, kind="Organization"),
        "repository_selection": "selected",
        "access_tokens_url": f"{api}/app/installations/{app.installation_id}/access_tokens",
        "repositories_url": f"{api}/installation/repositories",
        "html_url": f"{web}/organizations/{quote(account)}/settings/installations/{app.installation_id}",
        "permissions": dict(app.permissions),
        "events": [],
        "created_at": "2024-01-01T00:00:00Z",
        "updated_at": "2024-01-01T00:00:00Z",
        "single_file_name": None,
        "suspended_at": None,
        "suspended_by": None,
    }


def app_body(api: str, web: str, app: GitHubAppSpec) -> dict[str, Any]:
    return {
        "id": app.app_id,
        "slug": app.slug,
        "node_id": node_id("App", str(app.app_id)),
        "name": app.slug,
        "owner": user(api, web, "tagrelay", kind="Organization"),
        "html_url": f"{web}/apps/{app.slug}",
        "permissions": dict(app.permissions),
        "events": [],
        "created_at": "2024-01-01T00:00:00Z",
        "updated_at": "2024-01-01T00:00:00Z",
    }


_REPO_URL_TEMPLATES = {
    "archive_url": "/{archive_format}{/ref}",
    "assignees_url": "/assignees{/user}",
    "blobs_url": "/git/blobs{/sha}",
    "branches_url": "/branches{/branch}",
    "collaborators_url": "/collaborators{/collaborator}",
    "comments_url": "/comments{/number}",
    "commits_url": "/commits{/sha}",
    "compare_url": "/compare/{base}...{head}",
    "contents_url": "/contents/{+path}",
    "contributors_url": "/contributors",
    "deployments_url": "/deployments",
    "downloads_url": "/downloads",
    "events_url": "/events",
    "forks_url": "/forks",
    "git_commits_url": "/git/commits{/sha}",
    "git_refs_url": "/git/refs{/sha}",
    "git_tags_url": "/git/tags{/sha}",
    "hooks_url": "/hooks",
    "issue_comment_url": "/issues/comments{/number}",
    "issue_events_url": "/issues/events{/number}",
    "issues_url": "/issues{/number}",
    "keys_url": "/keys{/key_id}",
    "labels_url": "/labels{/name}",
    "languages_url": "/languages",
    "merges_url": "/merges",
    "milestones_url": "/milestones{/number}",
    "notifications_url": "/notifications{?since,all,participating}",
    "pulls_url": "/pulls{/number}",
    "releases_url": "/releases{/id}",
    "stargazers_url": "/stargazers",
    "statuses_url": "/statuses/{sha}",
    "subscribers_url": "/subscribers",
    "subscription_url": "/subscription",
    "tags_url": "/tags",
    "teams_url": "/teams",
    "trees_url": "/git/trees{/sha}",
}


def full_repository(links: Links, default_branch: str) -> dict[str, Any]:
    """GitHub's ``repository`` schema (inside a pull request's head and base), every required field present."""
    body = repository(links, default_branch)
    body.update({name: f"{links.repo_api}{suffix}" for name, suffix in _REPO_URL_TEMPLATES.items()})
    host = links.web.split("://", 1)[-1]
    body.update(
        {
            "git_url": f"git://{host}/{links.full_name}.git",
            "ssh_url": f"git@{host}:{links.full_name}.git",
            "svn_url": links.repo_web,
            "mirror_url": None,
            "homepage": None,
            "language": None,
            "license": None,
            "forks": 0,
            "forks_count": 0,
            "stargazers_count": 0,
            "watchers_count": 0,
            "watchers": 0,
            "size": 0,
            "open_issues": 0,
            "open_issues_count": 0,
            "has_issues": True,
            "has_projects": False,
            "has_wiki": False,
            "has_pages": False,
            "has_downloads": False,
            "pushed_at": "2024-01-01T00:00:00Z",
            "created_at": "2024-01-01T00:00:00Z",
            "updated_at": "2024-01-01T00:00:00Z",
        }
    )
    return body


@dataclass
class Pull:
    """A pull request as the stand-in keeps it (in memory: it lives as long as the server)."""

    number: int
    title: str
    body: str | None
    head: str  # branch name in the same repository
    base: str
    user: str
    created_at: float
    updated_at: float
    head_sha: str  # the head branch's commit when last seen (kept after the branch is deleted)
    state: str = "open"
    closed_at: float | None = None
    merged_at: float | None = None
    merge_commit_sha: str | None = None
    merged_by: str | None = None


def _optional_date(timestamp: float | None) -> str | None:
    return iso_date(timestamp) if timestamp is not None else None


def pull_request(
    links: Links,
    pull: Pull,
    default_branch: str,
    base_sha: str,
    *,
    full: bool,
    mergeable: bool | None = None,
    changed_files: int = 0,
) -> dict[str, Any]:
    """``pull-request`` (``full``: GET one, create, update) or ``pull-request-simple`` (the list)."""
    api = f"{links.repo_api}/pulls/{pull.number}"
    issue = f"{links.repo_api}/issues/{pull.number}"
    html = f"{links.repo_web}/pull/{pull.number}"
    repo = full_repository(links, default_branch)
    owner = user(links.api, links.web, links.owner, kind="Organization")

    def side(branch: str, sha: str) -> dict[str, Any]:
        return {"label": f"{links.owner}:{branch}", "ref": branch, "sha": sha, "user": owner, "repo": repo}

    body: dict[str, Any] = {
        "url": api,
        "id": numeric_id(f"{links.full_name}#{pull.number}"),
        "node_id": node_id("PullRequest", f"{links.full_name}#{pull.number}"),
        "html_url": html,
        "diff_url": f"{html}.diff",
        "patch_url": f"{html}.patch",
        "issue_url": issue,
        "commits_url": f"{api}/commits",
        "review_comments_url": f"{api}/comments",
        "review_comment_url": f"{links.repo_api}/pulls/comments{{/number}}",
        "comments_url": f"{issue}/comments",
        "statuses_url": f"{links.repo_api}/statuses/{pull.head_sha}",
        "number": pull.number,
        "state": pull.state,
        "locked": False,
        "title": pull.title,
        "user": user(links.api, links.web, pull.user, kind="Bot" if pull.user.endswith("[bot]") else "User"),
        "body": pull.body,
        "labels": [],
        "milestone": None,
        "active_lock_reason": None,
        "created_at": iso_date(pull.created_at),
        "updated_at": iso_date(pull.updated_at),
        "closed_at": _optional_date(pull.closed_at),
        "merged_at": _optional_date(pull.merged_at),
        "merge_commit_sha": pull.merge_commit_sha,
        "assignee": None,
        "assignees": [],
        "requested_reviewers": [],
        "requested_teams": [],
        "head": side(pull.head, pull.head_sha),
        "base": side(pull.base, base_sha),
        "_links": {
            name: {"href": href}
            for name, href in {
                "self": api,
                "html": html,
                "issue": issue,
                "comments": f"{issue}/comments",
                "review_comments": f"{api}/comments",
                "review_comment": f"{links.repo_api}/pulls/comments{{/number}}",
                "commits": f"{api}/commits",
                "statuses": f"{links.repo_api}/statuses/{pull.head_sha}",
            }.items()
        },
        "author_association": "NONE",
        "auto_merge": None,
        "draft": False,
    }
    if full:
        merged = pull.merged_at is not None
        body.update(
            {
                "merged": merged,
                "mergeable": mergeable,
                "rebaseable": mergeable,
                "mergeable_state": "unknown" if mergeable is None else ("clean" if mergeable else "dirty"),
                "merged_by": user(links.api, links.web, pull.merged_by) if merged and pull.merged_by else None,
                "comments": 0,
                "review_comments": 0,
                "maintainer_can_modify": False,
                "commits": 1,
                "additions": changed_files,
                "deletions": changed_files,
                "changed_files": changed_files,
            }
        )
    return body


@dataclass
class Deployment:
    id: int
    sha: str
    ref: str
    task: str
    environment: str
    payload: Any
    description: str | None
    creator: str
    created_at: float
    updated_at: float
    transient_environment: bool = False
    production_environment: bool = False
    statuses: list[DeploymentStatus] = field(default_factory=list)


@dataclass
class DeploymentStatus:
    id: int
    state: str
    description: str
    environment: str
    log_url: str
    environment_url: str
    creator: str
    created_at: float


def deployment(links: Links, record: Deployment) -> dict[str, Any]:
    url = f"{links.repo_api}/deployments/{record.id}"
    return {
        "url": url,
        "id": record.id,
        "node_id": node_id("Deployment", str(record.id)),
        "sha": record.sha,
        "ref": record.ref,
        "task": record.task,
        "payload": record.payload,
        "original_environment": record.environment,
        "environment": record.environment,
        "description": record.description,
        "creator": user(links.api, links.web, record.creator),
        "created_at": iso_date(record.created_at),
        "updated_at": iso_date(record.updated_at),
        "statuses_url": f"{url}/statuses",
        "repository_url": links.repo_api,
        "transient_environment": record.transient_environment,
        "production_environment": record.production_environment,
        "performed_via_github_app": None,
    }


def deployment_status(links: Links, record: Deployment, status: DeploymentStatus) -> dict[str, Any]:
    deployment_url = f"{links.repo_api}/deployments/{record.id}"
    return {
        "url": f"{deployment_url}/statuses/{status.id}",
        "id": status.id,
        "node_id": node_id("DeploymentStatus", str(status.id)),
        "state": status.state,
        "creator": user(links.api, links.web, status.creator),
        "description": status.description,
        "environment": status.environment,
        "target_url": status.log_url,
        "log_url": status.log_url,
        "environment_url": status.environment_url,
        "created_at": iso_date(status.created_at),
        "updated_at": iso_date(status.created_at),
        "deployment_url": deployment_url,
        "repository_url": links.repo_api,
        "performed_via_github_app": None,
    }
