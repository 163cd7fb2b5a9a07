"""The GitHub REST routes the stand-in serves, each a small handler over a bare repository.

Paths here are relative to the API prefix and still percent-encoded; route parameters are decoded
after matching, so ``feature%2Fx`` and ``feature/x`` both name a branch ``feature/x``.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import os
import re
import stat
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlencode

from devstack.github_standin import collaboration, shapes
from devstack.github_standin.app_auth import AuthFailure, Credentials
from devstack.github_standin.config import GitHubAppSpec
from devstack.github_standin.faults import Fault
from devstack.github_standin.gitstore import (
    AmbiguousShortSha,
    BareRepo,
    Identity,
    ObjectNotFound,
    TreeChange,
    is_valid_ref_name,
    normalise_path,
)

DOCS = "https://docs.github.com/rest"
DOCS_CONTENTS = "https://docs.github.com/rest/repos/contents#create-or-update-file-contents"
DOCS_COMMIT = "https://docs.github.com/rest/commits/commits#get-a-commit"
DOCS_REFS = "https://docs.github.com/rest/git/refs#update-a-reference"
DOCS_TREES = "https://docs.github.com/rest/git/trees#create-a-tree"
DOCS_GIT_COMMITS = "https://docs.github.com/rest/git/commits#create-a-commit"
DEFAULT_BOT = Identity("github-standin[bot]", "github-standin[bot]@users.noreply.github.com")
CONCURRENT_WRITER = Identity("concurrent-writer", "concurrent-writer@users.noreply.github.com")
COMPARE_PAGE_SIZE = 250
OPEN_REPOS = 64  # repositories whose cat-file processes and caches are kept; the least recent are closed
_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")
_HEXISH = re.compile(r"^[0-9a-fA-F]+$")
_TREE_TYPES = {"100644": "blob", "100755": "blob", "120000": "blob", "040000": "tree", "160000": "commit"}


class ApiError(Exception):
    """A GitHub error answer: ``{"message": …, "documentation_url": …}`` with ``status``."""

    def __init__(self, status: int, message: str, documentation_url: str = DOCS) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.documentation_url = documentation_url


@dataclass(frozen=True)
class Request:
    method: str
    path: str  # below the prefix, percent-encoded
    query: Mapping[str, str]
    authorization: str | None
    body: bytes

    def json(self) -> dict[str, Any]:
        if not self.body.strip():
            return {}
        try:
            data = json.loads(self.body)
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise ApiError(400, "Problems parsing JSON") from error
        if not isinstance(data, dict):
            raise ApiError(400, "Problems parsing JSON")
        return data


@dataclass
class Reply:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Call:
    """One matched request: decoded route parameters and the base URLs to build bodies with."""

    request: Request
    params: Mapping[str, str]
    api: str
    web: str
    app: GitHubAppSpec | None = None  # the App whose JWT authenticated an App route

    def links(self) -> shapes.Links:
        return shapes.Links(self.api, self.web, self.params["owner"], self.params["repo"])

    def int_query(self, name: str, default: int, maximum: int) -> int:
        raw = self.request.query.get(name)
        if raw is None:
            return default
        try:
            return max(1, min(int(raw), maximum))
        except ValueError:
            return default

    def page_links(self, page: int, last_page: int) -> dict[str, str]:
        """GitHub's ``Link`` header for page ``page`` of ``last_page``; PyGithub follows ``rel="next"``."""
        if last_page <= 1:
            return {}
        query = {name: value for name, value in self.request.query.items() if name != "page"}

        def url(number: int) -> str:
            return f"{self.api}{self.request.path}?{urlencode({**query, 'page': number})}"

        rels = []
        if page > 1:
            rels += [f'<{url(page - 1)}>; rel="prev"', f'<{url(1)}>; rel="first"']
        if page < last_page:
            rels += [f'<{url(page + 1)}>; rel="next"', f'<{url(last_page)}>; rel="last"']
        return {"Link": ", ".join(rels)} if rels else {}


Handler = Callable[["GitHubApi", Call], Reply]


@dataclass(frozen=True)
class Route:
    method: str
    pattern: re.Pattern[str]
    handler: Handler
    auth: str  # "token": a token or installation token; "app": a GitHub App JWT


@dataclass(frozen=True)
class Outcome:
    reply: Reply
    auth: str  # what authenticated the request, for the request log (never the secret)


class GitHubApi:
    def __init__(self, data_dir: Path, credentials: Credentials) -> None:
        self.data_dir = data_dir
        self.credentials = credentials
        # One persistent BareRepo per repository, keyed by path and checked against the objects
        # directory's identity, so a repository deleted and created again is opened afresh.
        self._open: OrderedDict[Path, tuple[tuple[int, int], BareRepo]] = OrderedDict()
        self._open_lock = threading.Lock()
        self.collaboration = collaboration.Collaboration()  # pull requests and deployments, in memory

    def close(self) -> None:
        """End every repository's cat-file processes (the server is stopping)."""
        with self._open_lock:
            repos = [repo for _identity, repo in self._open.values()]
            self._open.clear()
        for repo in repos:
            repo.close()

    def handle(self, request: Request, *, api: str, web: str) -> Outcome:
        route, params = _match(request.method, request.path)
        if route is None:
            return Outcome(Reply(404, shapes.error("Not Found")), "none")
        app: GitHubAppSpec | None = None
        try:
            if route.auth == "app":
                app = self.credentials.authenticate_app(request.authorization)
                auth = "app-jwt"
            else:
                auth = self.credentials.authenticate_token(request.authorization).kind
        except AuthFailure as failure:
            return Outcome(Reply(401, shapes.error(failure.message)), "refused")
        try:
            return Outcome(route.handler(self, Call(request, params, api, web, app)), auth)
        except ApiError as failure:
            body = shapes.error(failure.message, failure.documentation_url)
            if getattr(failure, "errors", None):
                body["errors"] = failure.errors  # type: ignore[attr-defined]
            return Outcome(Reply(failure.status, body), auth)

    # -- repositories -----------------------------------------------------------------------------

    def repo_path(self, owner: str, name: str) -> Path:
        """Where ``owner/name`` lives on disk: DATA_DIR/<owner>/<name>.git."""
        if not (_NAME.match(owner) and _NAME.match(name)) or {owner, name} & {".", ".."}:
            raise ApiError(404, "Not Found")
        return self.data_dir / owner / f"{name}.git"

    def repository(self, owner: str, name: str) -> BareRepo:
        path = self.repo_path(owner, name)
        try:
            objects = os.stat(path / "objects")
        except OSError:
            objects = None
        if objects is None or not stat.S_ISDIR(objects.st_mode) or not (path / "HEAD").is_file():
            raise ApiError(404, "Not Found")
        identity = (objects.st_dev, objects.st_ino)
        stale: list[BareRepo] = []
        with self._open_lock:
            known = self._open.get(path)
            if known is not None and known[0] == identity:
                self._open.move_to_end(path)
                return known[1]
            if known is not None:
                stale.append(known[1])
            repo = BareRepo(path, persistent=True)
            self._open[path] = (identity, repo)
            while len(self._open) > OPEN_REPOS:
                stale.append(self._open.popitem(last=False)[1][1])
        for old in stale:
            old.close()  # a request still holding it falls back to one git process per question
        return repo

    def _repo(self, call: Call) -> BareRepo:
        return self.repository(call.params["owner"], call.params["repo"])

    def get_repo(self, call: Call) -> Reply:
        repo = self._repo(call)
        return Reply(200, shapes.repository(call.links(), repo.default_branch()))

    def get_branch(self, call: Call) -> Reply:
        repo = self._repo(call)
        name = call.params["branch"]
        head = repo.branch_head(name) if is_valid_ref_name(name) else None
        if head is None:
            raise ApiError(404, "Branch not found", "https://docs.github.com/rest/branches/branches#get-a-branch")
        links = call.links()
        return Reply(200, shapes.branch(links, name, shapes.commit(links, repo.commit(head))))

    # -- contents ---------------------------------------------------------------------------------

    def get_contents(self, call: Call) -> Reply:
        repo = self._repo(call)
        ref = call.request.query.get("ref") or repo.default_branch()
        commit_sha = _resolve_unless_empty(repo, ref, 404, "This repository is empty.")
        try:
            path = normalise_path(call.params.get("path", ""))
        except ValueError as error:
            raise ApiError(404, "Not Found") from error
        entry = repo.entry(commit_sha, path)
        if entry is None:
            raise ApiError(404, "Not Found")
        links = call.links()
        if entry.type == "tree":
            listing = repo.list_directory(commit_sha, path)
            return Reply(200, [shapes.content_entry(links, item, ref) for item in listing])
        if entry.type == "commit":
            return Reply(200, shapes.content_entry(links, entry, ref))
        return Reply(200, shapes.content_file(links, entry, ref, repo.read_blob(entry.sha)))

    def put_contents(self, call: Call) -> Reply:
        """Create or update one file, compare-and-swap on the file's blob SHA as GitHub does."""
        repo = self._repo(call)
        body = call.request.json()
        try:
            path = normalise_path(call.params["path"])
        except ValueError as error:
            raise ApiError(422, "path contains a malformed path component", DOCS_CONTENTS) from error
        message = _required_string(body, "message", DOCS_CONTENTS)
        data = _decode_base64(_required_string(body, "content", DOCS_CONTENTS))
        expected_sha = body.get("sha")
        committer = _identity(body.get("committer"), "committer", DOCS_CONTENTS) or DEFAULT_BOT
        author = _identity(body.get("author"), "author", DOCS_CONTENTS) or committer
        default_branch = repo.default_branch()
        branch = body.get("branch") or default_branch
        if not isinstance(branch, str) or not is_valid_ref_name(branch):
            raise ApiError(404, "Not Found")
        with repo.write_lock:
            head = repo.branch_head(branch)
            if head is None and not (repo.is_empty() and branch == default_branch):
                raise ApiError(404, "Not Found", DOCS_CONTENTS)
            current = repo.entry(head, path) if head else None
            if current is not None and current.type != "blob":
                raise ApiError(422, f"{path} is a directory", DOCS_CONTENTS)
            if current is not None and not expected_sha:
                raise ApiError(422, 'Invalid request.\n\n"sha" wasn\'t supplied.', DOCS_CONTENTS)
            if expected_sha and (current is None or current.sha != expected_sha):
                raise ApiError(409, f"{path} does not match {expected_sha}", DOCS_CONTENTS)
            new_sha = repo.commit_file_change(
                parent=head, path=path, data=data, message=message, author=author, committer=committer
            )
            if not repo.update_ref(f"refs/heads/{branch}", new_sha, head):
                # Someone outside the API (a git push) moved the branch between our read and our write.
                now = repo.branch_head(branch)
                raise ApiError(409, f"is at {now} but expected {head}", DOCS_CONTENTS)
        links = call.links()
        entry = repo.entry(new_sha, path)
        assert entry is not None
        content = shapes.content_entry(links, entry, branch)
        content["url"] = content["_links"]["self"] = f"{links.repo_api}/contents/{quote(path)}"
        return Reply(
            201 if current is None else 200,
            {"content": content, "commit": shapes.git_commit(links, repo.commit(new_sha))},
        )

    # -- commits ----------------------------------------------------------------------------------

    def get_commit(self, call: Call) -> Reply:
        repo = self._repo(call)
        ref = call.params["ref"]
        try:
            sha = repo.resolve_commit(ref)
        except (AmbiguousShortSha, ObjectNotFound) as error:
            # GitHub answers a short SHA that several commits start with as it answers an unknown one.
            raise ApiError(422, f"No commit found for SHA: {ref}", DOCS_COMMIT) from error
        info = repo.commit(sha)
        return Reply(200, shapes.commit(call.links(), info, repo.changed_files(info)))

    def list_commits(self, call: Call) -> Reply:
        repo = self._repo(call)
        ref = call.request.query.get("sha") or repo.default_branch()
        head = _resolve_unless_empty(repo, ref, 409, "Git Repository is empty.")
        path = call.request.query.get("path") or None
        if path is not None:
            try:
                path = normalise_path(path)
            except ValueError:
                return Reply(200, [])
        per_page = call.int_query("per_page", 30, 100)
        page = call.int_query("page", 1, 1_000_000)
        since, until = call.request.query.get("since"), call.request.query.get("until")
        commits = repo.log([head], path=path, skip=(page - 1) * per_page, max_count=per_page, since=since, until=until)
        total = repo.count([head], path=path) if since is None and until is None else len(commits)
        links = call.links()
        headers = call.page_links(page, max(1, math.ceil(total / per_page)))
        return Reply(200, [shapes.commit(links, info) for info in commits], headers)

    def compare(self, call: Call) -> Reply:
        repo = self._repo(call)
        basehead = call.params["basehead"]
        separator = "..." if "..." in basehead else ".."
        base_name, _, head_name = basehead.partition(separator)
        if not base_name or not head_name:
            raise ApiError(404, "Not Found")
        base = _resolve_or(repo, base_name, 404, "Not Found")
        head = _resolve_or(repo, head_name, 404, "Not Found")
        comparison = repo.compare(base, head)
        merge_base = comparison.merge_base
        if merge_base is None:
            raise ApiError(404, f"No common ancestor between {base_name} and {head_name}.")
        ahead, behind_by = list(comparison.ahead), comparison.behind_by
        status = _compare_status(base == head, len(ahead), behind_by)
        per_page = call.int_query("per_page", COMPARE_PAGE_SIZE, 1000)
        page = call.int_query("page", 1, 1_000_000)
        links = call.links()
        page_commits = repo.commits(ahead[(page - 1) * per_page : page * per_page])
        url = f"{links.repo_api}/compare/{basehead}"
        body = {
            "url": url,
            "html_url": f"{links.repo_web}/compare/{basehead}",
            "permalink_url": f"{links.repo_web}/compare/{call.params['owner']}:{base[:7]}...{call.params['owner']}:{head[:7]}",
            "diff_url": f"{links.repo_web}/compare/{basehead}.diff",
            "patch_url": f"{links.repo_web}/compare/{basehead}.patch",
            "base_commit": shapes.commit(links, repo.commit(base)),
            "merge_base_commit": shapes.commit(links, repo.commit(merge_base)),
            "status": status,
            "ahead_by": len(ahead),
            "behind_by": behind_by,
            "total_commits": len(ahead),
            "commits": [shapes.commit(links, info) for info in page_commits],
            "files": [],
        }
        return Reply(200, body, call.page_links(page, max(1, math.ceil(len(ahead) / per_page))))

    # -- git data: refs ---------------------------------------------------------------------------

    def get_ref(self, call: Call) -> Reply:
        repo = self._repo(call)
        full_ref = _full_ref(call.params["ref"])
        sha = repo.ref_target(full_ref) if full_ref else None
        if sha is None or full_ref is None:
            raise ApiError(404, "Not Found", "https://docs.github.com/rest/git/refs#get-a-reference")
        return Reply(200, shapes.git_ref(call.links(), full_ref, sha))

    def list_refs(self, call: Call) -> Reply:
        repo = self._repo(call)
        prefix = call.params.get("ref", "")
        links = call.links()
        refs = [(name, sha) for name, sha in repo.refs() if name.startswith(f"refs/{prefix}")]
        return Reply(200, [shapes.git_ref(links, name, sha) for name, sha in refs])

    def get_or_list_refs(self, call: Call) -> Reply:
        """``GET /git/refs/{ref}``: the ref if it exists exactly, otherwise the refs it prefixes (as GitHub)."""
        repo = self._repo(call)
        full_ref = _full_ref(call.params["ref"])
        if full_ref is not None and (sha := repo.ref_target(full_ref)) is not None:
            return Reply(200, shapes.git_ref(call.links(), full_ref, sha))
        listing = self.list_refs(call)
        if not listing.body:
            raise ApiError(404, "Not Found", "https://docs.github.com/rest/git/refs#get-a-reference")
        return listing

    def create_ref(self, call: Call) -> Reply:
        repo = self._repo(call)
        body = call.request.json()
        name = _required_string(body, "ref", "https://docs.github.com/rest/git/refs#create-a-reference")
        sha = _required_string(body, "sha", "https://docs.github.com/rest/git/refs#create-a-reference")
        if not name.startswith("refs/") or name.count("/") < 2 or not is_valid_ref_name(name.removeprefix("refs/")):
            raise ApiError(422, "Reference name must start with 'refs/' and have at least two slashes.")
        if repo.object_type(sha) != "commit":
            raise ApiError(422, "Object does not exist")
        with repo.write_lock:
            if not repo.update_ref(name, sha, None):
                raise ApiError(422, "Reference already exists")
        return Reply(201, shapes.git_ref(call.links(), name, sha))

    def update_ref(self, call: Call) -> Reply:
        repo = self._repo(call)
        body = call.request.json()
        full_ref = _full_ref(call.params["ref"])
        new_sha = _required_string(body, "sha", DOCS_REFS)
        force = bool(body.get("force", False))
        if full_ref is None:
            raise ApiError(422, "Reference does not exist", DOCS_REFS)
        if repo.object_type(new_sha) != "commit":
            raise ApiError(422, "Object does not exist", DOCS_REFS)
        with repo.write_lock:
            old_sha = repo.ref_target(full_ref)
            if old_sha is None:
                raise ApiError(422, "Reference does not exist", DOCS_REFS)
            if not force and not repo.is_ancestor(old_sha, new_sha):
                raise ApiError(422, "Update is not a fast forward", DOCS_REFS)
            if not repo.update_ref(full_ref, new_sha, old_sha):
                raise ApiError(422, "Update is not a fast forward", DOCS_REFS)
        return Reply(200, shapes.git_ref(call.links(), full_ref, new_sha))

    def delete_ref(self, call: Call) -> Reply:
        repo = self._repo(call)
        full_ref = _full_ref(call.params["ref"])
        with repo.write_lock:
            old_sha = repo.ref_target(full_ref) if full_ref else None
            if full_ref is None or old_sha is None or not repo.delete_ref(full_ref, old_sha):
                raise ApiError(
                    422, "Reference does not exist", "https://docs.github.com/rest/git/refs#delete-a-reference"
                )
        return Reply(204)

    # -- git data: objects ------------------------------------------------------------------------

    def get_git_commit(self, call: Call) -> Reply:
        repo = self._repo(call)
        try:
            info = repo.commit(call.params["sha"].lower())
        except ObjectNotFound as error:
            raise ApiError(404, "Not Found", "https://docs.github.com/rest/git/commits#get-a-commit-object") from error
        return Reply(200, shapes.git_commit(call.links(), info))

    def create_git_commit(self, call: Call) -> Reply:
        repo = self._repo(call)
        body = call.request.json()
        message = _required_string(body, "message", DOCS_GIT_COMMITS)
        tree = _required_string(body, "tree", DOCS_GIT_COMMITS)
        parents = body.get("parents") or []
        if not isinstance(parents, list) or not all(isinstance(parent, str) for parent in parents):
            raise ApiError(422, "Invalid request.\n\nFor 'properties/parents', must be an array of strings.")
        types = repo.object_types([tree, *parents])
        if types.get(tree) != "tree":
            raise ApiError(422, "Tree SHA does not exist", DOCS_GIT_COMMITS)
        if any(types.get(parent) != "commit" for parent in parents):
            raise ApiError(422, "Parent SHA does not exist or is not a commit object", DOCS_GIT_COMMITS)
        author = _identity(body.get("author"), "author", DOCS_GIT_COMMITS) or DEFAULT_BOT
        committer = _identity(body.get("committer"), "committer", DOCS_GIT_COMMITS) or author
        sha = repo.write_commit(tree, parents, message, author, committer)
        return Reply(201, shapes.git_commit(call.links(), repo.commit(sha)))

    def get_blob(self, call: Call) -> Reply:
        repo = self._repo(call)
        sha = call.params["sha"].lower()
        try:
            data = repo.read_blob(sha)
        except ObjectNotFound as error:
            raise ApiError(404, "Not Found") from error
        return Reply(200, shapes.git_blob(call.links(), sha, data))

    def create_blob(self, call: Call) -> Reply:
        repo = self._repo(call)
        body = call.request.json()
        content = _required_string(body, "content", "https://docs.github.com/rest/git/blobs#create-a-blob")
        encoding = body.get("encoding") or "utf-8"
        if encoding not in ("utf-8", "base64"):
            raise ApiError(422, f"encoding must be one of utf-8 or base64, not {encoding}")
        data = _decode_base64(content) if encoding == "base64" else content.encode()
        return Reply(201, shapes.git_blob(call.links(), repo.write_blob(data)))

    def get_tree(self, call: Call) -> Reply:
        repo = self._repo(call)
        name = call.params["sha"]
        if repo.object_type(name.lower()) == "tree":
            tree_sha = name.lower()
        else:
            tree_sha = repo.commit(_resolve_or(repo, name, 404, "Not Found")).tree
        recursive = call.request.query.get("recursive") not in (None, "", "0", "false")
        return Reply(200, shapes.git_tree(call.links(), tree_sha, repo.list_tree(tree_sha, recursive=recursive)))

    def create_tree(self, call: Call) -> Reply:
        repo = self._repo(call)
        body = call.request.json()
        entries = body.get("tree")
        if not isinstance(entries, list) or not entries:
            raise ApiError(422, 'Invalid request.\n\n"tree" wasn\'t supplied.', DOCS_TREES)
        changes = [_tree_change(repo, entry) for entry in entries]
        base_tree = body.get("base_tree")
        if base_tree is not None and not isinstance(base_tree, str):
            raise ApiError(422, "Invalid request.\n\nFor 'properties/base_tree', must be a string.", DOCS_TREES)
        try:
            tree = repo.write_tree(base_tree, changes)
        except ObjectNotFound as error:
            raise ApiError(422, f"GitRPC::BadObjectState: {error.args[0]} is not a valid object", DOCS_TREES) from error
        return Reply(201, shapes.git_tree(call.links(), tree, repo.list_tree(tree)))

    # -- GitHub App -------------------------------------------------------------------------------

    def get_installation(self, call: Call) -> Reply:
        self._repo(call)
        assert call.app is not None
        return Reply(200, shapes.installation(call.api, call.web, call.app, call.params["owner"]))

    def get_app(self, call: Call) -> Reply:
        assert call.app is not None
        return Reply(200, shapes.app_body(call.api, call.web, call.app))

    def create_access_token(self, call: Call) -> Reply:
        assert call.app is not None
        app = self.credentials.app_for_installation(int(call.params["installation_id"]))
        if app is None or app.app_id != call.app.app_id:
            raise ApiError(
                404,
                "Not Found",
                "https://docs.github.com/rest/apps/apps#create-an-installation-access-token-for-an-app",
            )
        body = call.request.json()
        requested = body.get("permissions") or {}
        if not isinstance(requested, dict) or any(app.permissions.get(name) is None for name in requested):
            raise ApiError(422, "The permissions requested are not granted to this installation.")
        issued = self.credentials.issue_installation_token(app)
        return Reply(
            201,
            {
                "token": issued.token,
                "expires_at": shapes.iso_date(issued.expires_at),
                "permissions": dict(requested or app.permissions),
                "repository_selection": "selected",
            },
        )

    # -- the concurrent-writer fault ---------------------------------------------------------------

    def commit_concurrently(self, request: Request, fault: Fault) -> None:
        """Before a PUT contents or PATCH ref is served, another writer commits to the same branch."""
        target = _concurrent_target(request)
        if target is None:
            return
        owner, name, branch, request_file = target
        try:
            repo = self.repository(owner, name)
        except ApiError:
            return
        branch = branch or repo.default_branch()
        path = fault.file or request_file
        with repo.write_lock:
            head = repo.branch_head(branch)
            if head is None:
                return
            if path is None:
                sha = repo.write_commit(
                    repo.commit(head).tree, [head], "concurrent change", CONCURRENT_WRITER, CONCURRENT_WRITER
                )
            else:
                current = repo.entry(head, path)
                old = repo.read_blob(current.sha) if current is not None and current.type == "blob" else b""
                data = (
                    fault.content.encode()
                    if fault.content is not None
                    else old + f"# concurrent change {time.time_ns()}\n".encode()
                )
                sha = repo.commit_file_change(
                    parent=head,
                    path=path,
                    data=data,
                    message=f"concurrent change to {path}",
                    author=CONCURRENT_WRITER,
                    committer=CONCURRENT_WRITER,
                )
            repo.update_ref(f"refs/heads/{branch}", sha, head)


def _concurrent_target(request: Request) -> tuple[str, str, str | None, str | None] | None:
    contents = re.match(r"^/repos/([^/]+)/([^/]+)/contents/(.+)$", request.path)
    if contents:
        try:
            branch = request.json().get("branch")
            path = normalise_path(unquote(contents[3]))
        except (ApiError, ValueError):
            return None
        return contents[1], contents[2], branch if isinstance(branch, str) else None, path
    ref = re.match(r"^/repos/([^/]+)/([^/]+)/git/refs?/heads/(.+)$", request.path)
    if ref:
        return ref[1], ref[2], unquote(ref[3]), None
    return None


def _compare_status(identical: bool, ahead_by: int, behind_by: int) -> str:
    if identical or (ahead_by == 0 and behind_by == 0):
        return "identical"
    if behind_by == 0:
        return "ahead"
    if ahead_by == 0:
        return "behind"
    return "diverged"


def _resolve_or(repo: BareRepo, ref: str, status: int, message: str) -> str:
    try:
        return repo.resolve_commit(ref)
    except LookupError as error:
        raise ApiError(status, message) from error


def _resolve_unless_empty(repo: BareRepo, ref: str, empty_status: int, empty_message: str) -> str:
    """``ref`` resolved, but first GitHub's answer for a repository without refs (then 404 Not Found).

    Asking whether the repository is empty costs a git process, so it is skipped when ``ref`` resolved
    as a branch or tag: then a ref exists. A SHA can name a commit in a repository without refs.
    """
    try:
        sha: str | None = repo.resolve_commit(ref)
    except LookupError:
        sha = None
    if (sha is None or _HEXISH.match(ref)) and repo.is_empty():
        raise ApiError(empty_status, empty_message)
    if sha is None:
        raise ApiError(404, "Not Found")
    return sha


def _full_ref(ref: str) -> str | None:
    name = ref.strip("/")
    name = name if name.startswith("refs/") else f"refs/{name}"
    return name if name.count("/") >= 2 and is_valid_ref_name(name.removeprefix("refs/")) else None


def _required_string(body: Mapping[str, Any], name: str, docs: str) -> str:
    value = body.get(name)
    if value is None:
        raise ApiError(422, f'Invalid request.\n\n"{name}" wasn\'t supplied.', docs)
    if not isinstance(value, str):
        raise ApiError(422, f"Invalid request.\n\nFor 'properties/{name}', {json.dumps(value)} is not a string.", docs)
    return value


def _decode_base64(text: str) -> bytes:
    try:
        return base64.b64decode(text, validate=False)
    except (binascii.Error, ValueError) as error:
        raise ApiError(422, "content is not valid Base64") from error


def _identity(value: Any, field_name: str, docs: str) -> Identity | None:
    if value is None:
        return None
    if not isinstance(value, dict) or not isinstance(value.get("name"), str) or not isinstance(value.get("email"), str):
        raise ApiError(422, f'Invalid request.\n\n"name" and "email" are required in "{field_name}".', docs)
    date = value.get("date")
    return Identity(value["name"], value["email"], date if isinstance(date, str) else None)


def _tree_change(repo: BareRepo, entry: Any) -> TreeChange:
    if not isinstance(entry, dict) or not isinstance(entry.get("path"), str):
        raise ApiError(422, 'Invalid request.\n\n"path" wasn\'t supplied.', DOCS_TREES)
    mode = entry.get("mode", "100644")
    kind = entry.get("type") or _TREE_TYPES.get(mode, "blob")
    if _TREE_TYPES.get(mode) != kind:
        raise ApiError(422, f"Invalid tree info: mode {mode} does not fit type {kind}", DOCS_TREES)
    try:
        path = normalise_path(entry["path"])
    except ValueError as error:
        raise ApiError(422, f"tree.path {entry['path']!r} contains a malformed path component", DOCS_TREES) from error
    if "content" in entry and entry["content"] is not None:
        if kind != "blob" or not isinstance(entry["content"], str):
            raise ApiError(422, "Invalid tree info: content is only allowed for blobs", DOCS_TREES)
        return TreeChange(path, mode, kind, repo.write_blob(entry["content"].encode()))
    sha = entry.get("sha")
    if sha is not None and not isinstance(sha, str):
        raise ApiError(422, "Invalid tree info: sha must be a string or null", DOCS_TREES)
    return TreeChange(path, mode, kind, sha.lower() if sha else None)


# -- routing ----------------------------------------------------------------------------------------

_REPO = r"^/repos/(?P<owner>[^/]+)/(?P<repo>[^/]+)"


def _route(method: str, pattern: str, handler: Handler, auth: str = "token") -> Route:
    return Route(method, re.compile(pattern), handler, auth)


ROUTES: Sequence[Route] = (
    _route("GET", _REPO + r"$", GitHubApi.get_repo),
    _route("GET", _REPO + r"/branches/(?P<branch>.+)$", GitHubApi.get_branch),
    _route("GET", _REPO + r"/contents/?$", GitHubApi.get_contents),
    _route("GET", _REPO + r"/contents/(?P<path>.+)$", GitHubApi.get_contents),
    _route("PUT", _REPO + r"/contents/(?P<path>.+)$", GitHubApi.put_contents),
    _route("GET", _REPO + r"/commits$", GitHubApi.list_commits),
    _route("GET", _REPO + r"/commits/(?P<ref>[^/]+)/pulls$", collaboration.commit_pulls),
    _route("GET", _REPO + r"/commits/(?P<ref>.+)$", GitHubApi.get_commit),
    _route("GET", _REPO + r"/compare/(?P<basehead>.+)$", GitHubApi.compare),
    _route("GET", _REPO + r"/git/refs$", GitHubApi.list_refs),
    _route("GET", _REPO + r"/git/matching-refs/(?P<ref>.*)$", GitHubApi.list_refs),
    _route("GET", _REPO + r"/git/ref/(?P<ref>.+)$", GitHubApi.get_ref),
    _route("GET", _REPO + r"/git/refs/(?P<ref>.+)$", GitHubApi.get_or_list_refs),
    _route("POST", _REPO + r"/git/refs$", GitHubApi.create_ref),
    _route("PATCH", _REPO + r"/git/refs?/(?P<ref>.+)$", GitHubApi.update_ref),
    _route("DELETE", _REPO + r"/git/refs?/(?P<ref>.+)$", GitHubApi.delete_ref),
    _route("GET", _REPO + r"/git/commits/(?P<sha>[0-9a-fA-F]+)$", GitHubApi.get_git_commit),
    _route("POST", _REPO + r"/git/commits$", GitHubApi.create_git_commit),
    _route("GET", _REPO + r"/git/blobs/(?P<sha>[0-9a-fA-F]+)$", GitHubApi.get_blob),
    _route("POST", _REPO + r"/git/blobs$", GitHubApi.create_blob),
    _route("GET", _REPO + r"/git/trees/(?P<sha>.+)$", GitHubApi.get_tree),
    _route("POST", _REPO + r"/git/trees$", GitHubApi.create_tree),
    _route("GET", _REPO + r"/pulls$", collaboration.list_pulls),
    _route("POST", _REPO + r"/pulls$", collaboration.create_pull),
    _route("GET", _REPO + r"/pulls/(?P<number>\d+)$", collaboration.get_pull),
    _route("PATCH", _REPO + r"/pulls/(?P<number>\d+)$", collaboration.update_pull),
    _route("PUT", _REPO + r"/pulls/(?P<number>\d+)/merge$", collaboration.merge_pull),
    _route("GET", _REPO + r"/deployments$", collaboration.list_deployments),
    _route("POST", _REPO + r"/deployments$", collaboration.create_deployment),
    _route(
        "GET",
        _REPO + r"/deployments/(?P<deployment_id>\d+)$",
        collaboration.get_deployment,
    ),
    _route(
        "GET",
        _REPO + r"/deployments/(?P<deployment_id>\d+)/statuses$",
        collaboration.list_deployment_statuses,
    ),
    _route(
        "POST",
        _REPO + r"/deployments/(?P<deployment_id>\d+)/statuses$",
        collaboration.create_deployment_status,
    ),
    _route("GET", _REPO + r"/installation$", GitHubApi.get_installation, auth="app"),
    _route("GET", r"^/app$", GitHubApi.get_app, auth="app"),
    _route(
        "POST",
        r"^/app/installations/(?P<installation_id>\d+)/access_tokens$",
        GitHubApi.create_access_token,
        auth="app",
    ),
)


def _match(method: str, path: str) -> tuple[Route | None, dict[str, str]]:
    for route in ROUTES:
        if route.method != method:
            continue
        found = route.pattern.match(path)
        if found:
            return route, {name: unquote(value) for name, value in found.groupdict().items() if value is not None}
    return None, {}
