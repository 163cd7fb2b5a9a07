"""The GitHub stand-in, driven by real PyGithub over HTTP and checked against ``git`` in the bare repos."""

from __future__ import annotations

import itertools
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
import pytest
import requests
from github import (
    Auth,
    BadCredentialsException,
    Github,
    GithubException,
    GithubIntegration,
    GithubRetry,
    InputGitAuthor,
    InputGitTreeElement,
    RateLimitExceededException,
    UnknownObjectException,
)
from github.Commit import Commit
from github.Repository import Repository

from devstack.github_standin import GitHubAppSpec, StandinControl, generate_app_keypair, start_github_standin
from devstack.github_standin.gitstore import git_env
from devstack.gitrepo import COLLISIONS_REF, GitWorkspace, make_ambiguous_short_sha
from devstack.process import RunningServer

pytestmark = pytest.mark.stack

TOKEN = "test-token"
APP_ID = 424242
INSTALLATION_ID = 98765
VALUES = "environments/prod/values.yaml"
PROD_VALUES = '# prod\nglobal:\n  imageTag: "abc1234"  # set by tagrelay\n'
_names = itertools.count(1)


@dataclass(frozen=True)
class AppKeys:
    private_pem: str
    public_pem: str


@dataclass(frozen=True)
class Seeded:
    full_name: str
    workspace: GitWorkspace
    repo: Repository


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("github-standin")


@pytest.fixture(scope="module")
def app_keys() -> AppKeys:
    private_pem, public_pem = generate_app_keypair()
    return AppKeys(private_pem, public_pem)


@pytest.fixture(scope="module")
def standin(workdir: Path, app_keys: AppKeys) -> Iterator[RunningServer]:
    app = GitHubAppSpec(app_id=APP_ID, public_key_pem=app_keys.public_pem, installation_id=INSTALLATION_ID)
    server = start_github_standin(workdir, tokens=(TOKEN,), app=app)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def control(standin: RunningServer) -> StandinControl:
    return StandinControl(standin.url)


@pytest.fixture(autouse=True)
def _no_leftover_faults(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if "control" in request.fixturenames:
        request.getfixturevalue("control").clear_faults()


def client(url: str, token: str = TOKEN, **options: Any) -> Github:
    settings: dict[str, Any] = {
        "lazy": True,
        "retry": None,
        "seconds_between_requests": None,
        "seconds_between_writes": None,
    }
    return Github(auth=Auth.Token(token), base_url=url, **{**settings, **options})


@pytest.fixture(scope="module")
def gh(standin: RunningServer) -> Github:
    return client(standin.url)


@pytest.fixture
def seeded(standin: RunningServer, control: StandinControl, gh: Github, workdir: Path) -> Seeded:
    """A fresh GitOps-like repository per test: values files on main, develop branched from main."""
    full_name = f"org/gitops-{next(_names)}"
    bare = control.create_repo(full_name)
    workspace = GitWorkspace.create(bare, workdir / "clones" / full_name)
    workspace.commit_files(
        {
            VALUES: PROD_VALUES,
            "environments/staging/values.yaml": 'global:\n  imageTag: "abc1234"\n',
            "README.md": "gitops\n",
        },
        "seed: values files",
    )
    workspace.create_branch("develop", "main")
    return Seeded(full_name, workspace, gh.get_repo(full_name))


def git(bare: Path, *args: str) -> str:
    result = subprocess.run(["git", f"--git-dir={bare}", *args], capture_output=True, env=git_env(), check=True)
    return result.stdout.decode()


# -- contents -------------------------------------------------------------------------------------


def test_get_contents_returns_the_file_base64_in_60_char_lines_and_its_git_blob_sha(seeded: Seeded) -> None:
    long_text = "".join(f"line {number}: {'x' * 40}\n" for number in range(20))
    seeded.workspace.commit_files({"big.txt": long_text}, "a longer file")

    small = seeded.repo.get_contents(VALUES, ref="main")
    big = seeded.repo.get_contents("big.txt", ref="main")

    assert not isinstance(small, list) and not isinstance(big, list)
    assert small.decoded_content == PROD_VALUES.encode()
    hashed = subprocess.run(
        ["git", "hash-object", "--stdin"], input=PROD_VALUES.encode(), capture_output=True, check=True
    )
    assert small.sha == hashed.stdout.decode().strip() == seeded.workspace.blob_sha(VALUES)
    lines = big.raw_data["content"].split("\n")
    assert lines[-1] == "" and all(len(line) == 60 for line in lines[:-2]) and 0 < len(lines[-2]) <= 60
    assert big.decoded_content == long_text.encode()


def test_get_contents_of_a_missing_path_or_ref_is_unknown(seeded: Seeded) -> None:
    with pytest.raises(UnknownObjectException):
        seeded.repo.get_contents("environments/nope/values.yaml", ref="main")
    with pytest.raises(UnknownObjectException):
        seeded.repo.get_contents(VALUES, ref="no-such-branch")


def test_get_contents_of_a_directory_lists_it(seeded: Seeded) -> None:
    listing = seeded.repo.get_contents("environments", ref="develop")

    assert isinstance(listing, list)
    assert sorted((item.name, item.type) for item in listing) == [("prod", "dir"), ("staging", "dir")]


def test_update_file_commits_into_the_bare_repository(seeded: Seeded) -> None:
    before = seeded.workspace.head("main")
    current = seeded.repo.get_contents(VALUES, ref="main")
    assert not isinstance(current, list)
    new_text = PROD_VALUES.replace("abc1234", "def5678")

    result = seeded.repo.update_file(
        VALUES,
        "deploy(prod): update image tag to def5678",
        new_text,
        current.sha,
        branch="main",
        committer=InputGitAuthor("tagrelay[bot]", "tagrelay[bot]@users.noreply.github.com"),
    )

    commit = result["commit"]
    assert isinstance(commit, Commit)
    assert commit.sha == seeded.workspace.head("main") != before
    assert [parent.sha for parent in commit.parents] == [before]
    assert seeded.workspace.read_file(VALUES) == new_text.encode()
    log = git(seeded.workspace.bare_path, "log", "-1", "--format=%an <%ae>|%cn|%s", "main")
    assert (
        log.strip()
        == "tagrelay[bot] <tagrelay[bot]@users.noreply.github.com>|tagrelay[bot]|deploy(prod): update image tag to def5678"
    )
    assert '+  imageTag: "def5678"' in seeded.workspace.log("main", VALUES)


def test_create_file_answers_201_and_an_existing_file_without_sha_422(seeded: Seeded, control: StandinControl) -> None:
    control.clear_requests()
    seeded.repo.create_file(
        "environments/dev/values.yaml", "add dev", 'global:\n  imageTag: "abc1234"\n', branch="develop"
    )

    assert control.requests()[-1]["status"] == 201
    assert seeded.workspace.read_file("environments/dev/values.yaml", "develop").startswith(b"global:")
    with pytest.raises(GithubException) as missing_sha:
        seeded.repo.create_file(VALUES, "no sha", "x", branch="main")
    assert missing_sha.value.status == 422
    assert missing_sha.value.data["message"] == 'Invalid request.\n\n"sha" wasn\'t supplied.'


def test_a_stale_blob_sha_is_a_409_conflict(seeded: Seeded) -> None:
    stale = seeded.workspace.blob_sha(VALUES)
    seeded.workspace.commit_files({VALUES: PROD_VALUES + "# someone else\n"}, "someone else")
    head = seeded.workspace.head("main")

    with pytest.raises(GithubException) as conflict:
        seeded.repo.update_file(VALUES, "deploy", "x", stale, branch="main")

    assert conflict.value.status == 409
    assert conflict.value.data["message"] == f"{VALUES} does not match {stale}"
    assert seeded.workspace.head("main") == head


def test_a_concurrent_commit_fault_makes_the_clients_sha_stale(seeded: Seeded, control: StandinControl) -> None:
    current = seeded.repo.get_contents(VALUES, ref="main")
    assert not isinstance(current, list)
    control.inject(method="PUT", path_regex=r"/contents/environments/prod/values\.yaml$", kind="concurrent_commit")

    with pytest.raises(GithubException) as conflict:
        seeded.repo.update_file(VALUES, "deploy", "new", current.sha, branch="main")

    assert conflict.value.status == 409
    assert git(seeded.workspace.bare_path, "log", "-1", "--format=%an", "main").strip() == "concurrent-writer"
    fresh = seeded.repo.get_contents(VALUES, ref="main")
    assert not isinstance(fresh, list) and fresh.sha != current.sha
    seeded.repo.update_file(VALUES, "deploy again", "new", fresh.sha, branch="main")
    assert seeded.workspace.read_file(VALUES) == b"new"


def test_ten_writers_racing_on_one_file_give_a_linear_history_without_lost_commits(
    seeded: Seeded, standin: RunningServer
) -> None:
    writers = 10
    start = seeded.workspace.head("main")
    first_round = threading.Barrier(writers)
    attempts: list[tuple[str, int]] = []  # (blob sha the write was based on, HTTP status)
    lock = threading.Lock()
    errors: list[BaseException] = []

    def write(number: int) -> None:
        repo = client(standin.url).get_repo(seeded.full_name)
        try:
            for attempt in itertools.count():
                current = repo.get_contents(VALUES, ref="main")
                assert not isinstance(current, list)
                if attempt == 0:
                    first_round.wait()  # all ten PUT against the same base
                text = current.decoded_content.decode() + f"writer {number}\n"
                try:
                    repo.update_file(VALUES, f"writer {number}", text, current.sha, branch="main")
                except GithubException as conflict:
                    with lock:
                        attempts.append((current.sha, conflict.status))
                    assert conflict.status == 409
                    continue
                with lock:
                    attempts.append((current.sha, 200))
                return
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=write, args=(number,)) for number in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert not errors
    successes = Counter(base for base, status in attempts if status == 200)
    assert set(successes.values()) == {1} and len(successes) == writers  # one winner per base version
    first_base = git(seeded.workspace.bare_path, "rev-parse", f"{start}:{VALUES}").strip()
    assert sorted(status for base, status in attempts if base == first_base) == [200] + [409] * (writers - 1)
    bare = seeded.workspace.bare_path
    assert git(bare, "rev-list", "--count", f"{start}..main").strip() == str(writers)
    assert git(bare, "rev-list", "--merges", f"{start}..main").strip() == ""
    final = seeded.workspace.read_file(VALUES).decode()
    assert sorted(line for line in final.splitlines() if line.startswith("writer")) == sorted(
        f"writer {number}" for number in range(writers)
    )


# -- commits --------------------------------------------------------------------------------------


def test_get_commit_by_full_sha_short_sha_and_branch(seeded: Seeded) -> None:
    develop_head = seeded.workspace.commit_empty("feat: on develop", branch="develop")
    main_head = seeded.workspace.head("main")

    by_full = seeded.repo.get_commit(main_head)
    by_short = seeded.repo.get_commit(main_head[:7])
    by_branch = seeded.repo.get_commit("develop")

    assert by_full.commit.message == "seed: values files"
    assert by_short.raw_data["sha"] == main_head
    assert by_branch.raw_data["sha"] == develop_head
    assert by_branch.commit.message == "feat: on develop"
    assert [parent.sha for parent in by_branch.parents] == [main_head]
    assert by_full.author.login == "seed"
    assert sorted(changed.filename for changed in by_full.files) == [
        "README.md",
        VALUES,
        "environments/staging/values.yaml",
    ]
    numstat = git(seeded.workspace.bare_path, "show", "--numstat", "--format=", main_head).split()
    assert by_full.stats.additions == sum(int(added) for added in numstat[0::3])


def test_get_commit_of_an_unknown_sha_is_422(seeded: Seeded) -> None:
    with pytest.raises(GithubException) as unknown:
        seeded.repo.get_commit("0123456").commit  # noqa: B018 - the attribute access sends the request

    assert unknown.value.status == 422
    assert unknown.value.data["message"] == "No commit found for SHA: 0123456"


def test_get_commit_of_an_ambiguous_short_sha_is_answered_as_an_unknown_one(
    control: StandinControl, gh: Github, workdir: Path
) -> None:
    bare = control.create_repo("org/collisions")
    workspace = GitWorkspace.create(bare, workdir / "clones" / "collisions")
    unique = workspace.commit_files({"a.txt": "a\n"}, "one commit")
    prefix = make_ambiguous_short_sha(bare)
    repo = gh.get_repo("org/collisions")

    git_says = subprocess.run(
        ["git", f"--git-dir={bare}", "rev-parse", prefix], capture_output=True, env=git_env(), check=False
    )
    assert b"ambiguous" in git_says.stderr
    with pytest.raises(GithubException) as ambiguous:
        repo.get_commit(prefix).commit  # noqa: B018 - the attribute access sends the request
    assert ambiguous.value.status == 422
    assert ambiguous.value.data["message"] == f"No commit found for SHA: {prefix}"
    assert repo.get_commit(unique[:7]).raw_data["sha"] == unique


def test_a_short_sha_that_becomes_ambiguous_later_is_refused_then(
    control: StandinControl, gh: Github, workdir: Path
) -> None:
    # The colliding pair is learnt in a scratch repository, then written here one commit at a time.
    scratch = workdir / "scratch-collisions.git"
    subprocess.run(["git", "init", "--quiet", "--bare", str(scratch)], env=git_env(), check=True)
    prefix = make_ambiguous_short_sha(scratch)
    first, second = git(scratch, "rev-parse", f"{COLLISIONS_REF}^1", f"{COLLISIONS_REF}^2").split()
    bare = control.create_repo("org/late-collision")
    GitWorkspace.create(bare, workdir / "clones" / "late-collision").commit_files({"a.txt": "a\n"}, "one commit")
    repo = gh.get_repo("org/late-collision")

    def write(sha: str) -> None:
        body = git(scratch, "cat-file", "commit", sha).encode()
        written = subprocess.run(
            ["git", f"--git-dir={bare}", "hash-object", "-t", "commit", "-w", "--stdin"],
            input=body,
            capture_output=True,
            env=git_env(),
            check=True,
        )
        assert written.stdout.decode().strip() == sha

    write(first)
    assert repo.get_commit(prefix).raw_data["sha"] == first
    write(second)
    with pytest.raises(GithubException) as ambiguous:
        repo.get_commit(prefix).commit  # noqa: B018 - the attribute access sends the request
    assert ambiguous.value.status == 422


def test_commit_files_carry_the_patch_git_diff_shows_for_each_path(seeded: Seeded) -> None:
    seeded.workspace.commit_files({"bin.dat": b"\x00\x01\x02", "README.md": "gitops\nmore\n"}, "binary and text")
    workdir = seeded.workspace.workdir
    (workdir / "README.md").unlink()
    (workdir / "README.md").symlink_to("environments")  # a typechange: shown as removal and addition
    (workdir / "bin.dat").unlink()
    (workdir / "bin.dat").mkdir()
    (workdir / "bin.dat" / "inside.txt").write_text("a file where a file was\n")  # a file becomes a directory
    (workdir / VALUES).write_text(PROD_VALUES.replace("abc1234", "fff0000"))
    identity = {
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@x",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@x",
    }
    for args in (["add", "-A"], ["commit", "-q", "-m", "many kinds of change"], ["push", "-q", "origin", "HEAD:main"]):
        subprocess.run(["git", *args], cwd=workdir, env=git_env(identity), check=True, capture_output=True)
    sha = seeded.workspace.head("main")

    files = seeded.repo.get_commit(sha).files

    bare = seeded.workspace.bare_path
    assert sorted(changed.filename for changed in files) == sorted(
        git(bare, "diff-tree", "-r", "--no-renames", "--name-only", f"{sha}^", sha).split()
    )
    for changed in files:
        diff = git(bare, "diff", "--no-color", f"{sha}^", sha, "--", changed.filename)
        hunk = diff.find("\n@@")
        assert changed.patch == (diff[hunk + 1 :].rstrip("\n") if hunk >= 0 else None), changed.filename


def test_writes_from_outside_are_seen_packed_or_loose(seeded: Seeded) -> None:
    assert seeded.repo.get_commit("main").raw_data["sha"] == seeded.workspace.head("main")  # opened and read
    bare = seeded.workspace.bare_path
    many = {f"generated/file-{number}.txt": f"{number}\n" for number in range(150)}  # pushed as a pack
    pushed = seeded.workspace.commit_files(many, "many files at once")
    assert list((bare / "objects" / "pack").glob("*.pack"))

    fresh = seeded.repo.get_contents("generated/file-149.txt", ref="main")

    assert not isinstance(fresh, list) and fresh.decoded_content == b"149\n"
    assert seeded.repo.get_branch("main").commit.sha == pushed
    git(bare, "pack-refs", "--all")
    moved = seeded.workspace.commit_files({"generated/file-0.txt": "changed\n"}, "after pack-refs")
    assert seeded.repo.get_branch("main").commit.sha == moved
    git(bare, "update-ref", "-d", "refs/heads/develop")
    with pytest.raises(UnknownObjectException):
        seeded.repo.get_contents(VALUES, ref="develop")


def test_compare_reports_identical_ahead_behind_and_diverged_as_git_counts_them(seeded: Seeded) -> None:
    bare = seeded.workspace.bare_path
    for number in range(3):
        seeded.workspace.commit_empty(f"develop {number}", branch="develop")
    develop = seeded.workspace.head("develop")

    def check(base: str, head: str, status: str) -> None:
        comparison = seeded.repo.compare(base, head)
        assert comparison.status == status
        assert comparison.ahead_by == int(git(bare, "rev-list", "--count", f"{base}..{head}"))
        assert comparison.behind_by == int(git(bare, "rev-list", "--count", f"{head}..{base}"))
        assert [commit.sha for commit in comparison.commits] == git(
            bare, "rev-list", "--reverse", f"{base}..{head}"
        ).split()

    check("main", "main", "identical")
    check("main", "develop", "ahead")
    check("develop", "main", "behind")
    check(seeded.workspace.head("main")[:7], develop[:8], "ahead")
    seeded.workspace.commit_empty("hotfix on main", branch="main")
    check("main", "develop", "diverged")
    merge_base = seeded.repo.compare("main", "develop").merge_base_commit.sha
    assert merge_base == git(bare, "merge-base", "main", "develop").strip()
    with pytest.raises(UnknownObjectException):
        seeded.repo.compare("main", "no-such-branch").status  # noqa: B018 - the attribute access sends the request


def test_get_commits_for_a_path_lists_newest_first_across_pages(seeded: Seeded, standin: RunningServer) -> None:
    for number in range(4):
        seeded.workspace.commit_files({VALUES: PROD_VALUES + f"# {number}\n"}, f"values {number}")
        seeded.workspace.commit_files({"README.md": f"readme {number}\n"}, f"readme {number}")
    paged = client(standin.url, per_page=2).get_repo(seeded.full_name)

    listed = [commit.sha for commit in paged.get_commits(sha="main", path=VALUES)]

    assert listed == git(seeded.workspace.bare_path, "log", "--format=%H", "main", "--", VALUES).split()
    assert len(listed) == 5
    assert [commit.commit.message for commit in seeded.repo.get_commits(sha="main")][:2] == ["readme 3", "values 3"]


# -- git data -------------------------------------------------------------------------------------


def test_git_data_api_commits_several_files_atomically_and_refuses_non_fast_forward(seeded: Seeded) -> None:
    ref = seeded.repo.get_git_ref("heads/main")
    base = seeded.repo.get_git_commit(ref.object.sha)
    blob = seeded.repo.create_git_blob("prod: def5678\n", "utf-8")
    tree = seeded.repo.create_git_tree(
        [
            InputGitTreeElement(VALUES, "100644", "blob", sha=blob.sha),
            InputGitTreeElement("environments/new/deep/values.yaml", "100644", "blob", content="new: 1\n"),
            InputGitTreeElement("README.md", "100644", "blob", sha=None),
        ],
        base_tree=base.tree,
    )
    commit = seeded.repo.create_git_commit("deploy: two files at once", tree, [base])

    ref.edit(commit.sha)

    bare = seeded.workspace.bare_path
    assert seeded.workspace.head("main") == commit.sha
    assert git(bare, "rev-parse", f"{commit.sha}^").strip() == base.sha
    assert git(bare, "ls-tree", "-r", "--name-only", "main").split() == [
        "environments/new/deep/values.yaml",
        VALUES,
        "environments/staging/values.yaml",
    ]
    assert seeded.workspace.read_file(VALUES) == b"prod: def5678\n"

    stale = seeded.repo.create_git_commit("built on the old head", base.tree, [base])
    with pytest.raises(GithubException) as refused:
        seeded.repo.get_git_ref("heads/main").edit(stale.sha)
    assert refused.value.status == 422
    assert refused.value.data["message"] == "Update is not a fast forward"
    assert seeded.workspace.head("main") == commit.sha


def test_create_git_ref_makes_a_branch_once(seeded: Seeded) -> None:
    main = seeded.workspace.head("main")

    created = seeded.repo.create_git_ref("refs/heads/release", main)

    assert created.ref == "refs/heads/release" and seeded.workspace.head("release") == main
    with pytest.raises(GithubException) as duplicate:
        seeded.repo.create_git_ref("refs/heads/release", main)
    assert duplicate.value.status == 422
    assert duplicate.value.data["message"] == "Reference already exists"


# -- authentication -------------------------------------------------------------------------------


def test_github_app_installation_token_flow(
    seeded: Seeded, standin: RunningServer, control: StandinControl, app_keys: AppKeys
) -> None:
    app_auth = Auth.AppAuth(APP_ID, app_keys.private_pem)
    integration = GithubIntegration(
        auth=app_auth,
        base_url=standin.url,
        lazy=True,
        retry=None,
        seconds_between_requests=None,
        seconds_between_writes=None,
    )
    control.clear_requests()

    installation = integration.get_repo_installation("org", seeded.full_name.split("/")[1])
    as_installation = integration.get_github_for_installation(installation.id)
    content = as_installation.get_repo(seeded.full_name).get_contents(VALUES, ref="main")
    direct = Github(
        auth=app_auth.get_installation_auth(INSTALLATION_ID),
        base_url=standin.url,
        lazy=True,
        retry=None,
        seconds_between_requests=None,
    )
    direct_content = direct.get_repo(seeded.full_name).get_contents(VALUES, ref="main")

    assert installation.id == INSTALLATION_ID
    assert not isinstance(content, list) and content.decoded_content == PROD_VALUES.encode()
    assert not isinstance(direct_content, list) and direct_content.sha == content.sha
    served = [
        (entry["method"], entry["path"].split("/")[1], entry["status"], entry["auth"]) for entry in control.requests()
    ]
    assert served == [
        ("GET", "repos", 200, "app-jwt"),
        ("POST", "app", 201, "app-jwt"),
        ("GET", "repos", 200, "installation"),
        ("POST", "app", 201, "app-jwt"),
        ("GET", "repos", 200, "installation"),
    ]


def test_a_jwt_signed_by_another_key_is_refused_with_401(seeded: Seeded, standin: RunningServer) -> None:
    other_private, _ = generate_app_keypair()
    integration = GithubIntegration(auth=Auth.AppAuth(APP_ID, other_private), base_url=standin.url, retry=None)

    with pytest.raises(GithubException) as refused:
        integration.get_repo_installation("org", seeded.full_name.split("/")[1])

    assert refused.value.status == 401
    assert refused.value.data["message"] == "A JSON web token could not be decoded"


def test_an_expired_jwt_is_refused_with_githubs_expiry_message(
    seeded: Seeded, standin: RunningServer, app_keys: AppKeys
) -> None:
    def sign_twenty_minutes_ago(claims: dict[str, Any]) -> str:
        issued = int(time.time()) - 1200
        return jwt.encode({**claims, "iat": issued, "exp": issued + 600}, app_keys.private_pem, "RS256")

    expired_auth = Auth.AppAuth(APP_ID, sign_func=sign_twenty_minutes_ago)
    integration = GithubIntegration(auth=expired_auth, base_url=standin.url, retry=None)

    with pytest.raises(GithubException) as refused:
        integration.get_repo_installation("org", seeded.full_name.split("/")[1])

    assert refused.value.status == 401
    assert refused.value.data["message"].startswith("'Expiration time' claim ('exp') must be a numeric value")


def test_a_wrong_token_is_bad_credentials(seeded: Seeded, standin: RunningServer) -> None:
    with pytest.raises(BadCredentialsException):
        client(standin.url, token="not-a-token").get_repo(seeded.full_name).get_contents(VALUES)


# -- faults, retries, request log, rate-limit headers ---------------------------------------------


def test_injected_status_is_answered_once_then_the_request_is_served(seeded: Seeded, control: StandinControl) -> None:
    control.inject(method="GET", path_regex=r"/contents/", status=503, count=1)

    with pytest.raises(GithubException) as unavailable:
        seeded.repo.get_contents(VALUES, ref="main")

    assert unavailable.value.status == 503
    assert not isinstance(seeded.repo.get_contents(VALUES, ref="main"), list)


def test_a_primary_rate_limit_fault_raises_rate_limit_exceeded(seeded: Seeded, control: StandinControl) -> None:
    control.inject(method="GET", path_regex=r"/contents/", kind="primary_rate_limit")

    with pytest.raises(RateLimitExceededException) as limited:
        seeded.repo.get_contents(VALUES, ref="main")

    assert limited.value.headers is not None and limited.value.headers["x-ratelimit-remaining"] == "0"


def test_github_retry_rides_out_5xx_and_a_secondary_rate_limit(
    seeded: Seeded, standin: RunningServer, control: StandinControl
) -> None:
    retrying = client(standin.url, retry=GithubRetry(total=5)).get_repo(seeded.full_name)
    control.inject(method="GET", path_regex=r"/contents/", status=502, count=2)
    control.inject(method="GET", path_regex=r"/contents/", kind="secondary_rate_limit", count=1)
    control.clear_requests()

    content = retrying.get_contents(VALUES, ref="main")

    assert not isinstance(content, list) and content.decoded_content == PROD_VALUES.encode()
    served = [(entry["status"], entry["fault"]) for entry in control.requests()]
    assert served == [(502, "status 502"), (502, "status 502"), (403, "secondary_rate_limit"), (200, None)]


def test_the_request_log_counts_each_api_call_and_rate_limit_headers_count_down(
    seeded: Seeded, gh: Github, control: StandinControl
) -> None:
    control.clear_requests()
    current = seeded.repo.get_contents(VALUES, ref="main")
    assert not isinstance(current, list)
    remaining_before = gh.rate_limiting[0]
    seeded.repo.update_file(VALUES, "deploy", "x", current.sha, branch="main")

    log = control.requests()
    assert [(entry["method"], entry["path"], entry["status"]) for entry in log] == [
        ("GET", f"/repos/{seeded.full_name}/contents/{VALUES}", 200),
        ("PUT", f"/repos/{seeded.full_name}/contents/{VALUES}", 200),
    ]
    assert log[0]["query"] == "ref=main"
    assert gh.rate_limiting[0] == remaining_before - 1
    assert gh.rate_limiting[1] == 5000


def test_github_enterprise_prefix(tmp_path: Path) -> None:
    server = start_github_standin(tmp_path, prefix="/api/v3")
    try:
        assert server.url.endswith("/api/v3")
        control = StandinControl(server.url)
        workspace = GitWorkspace.create(control.create_repo("corp/gitops"), tmp_path / "clone")
        workspace.commit_files({VALUES: PROD_VALUES}, "seed")
        eager = client(server.url, lazy=False)  # follows the url fields of every response

        repo = eager.get_repo("corp/gitops")
        current = repo.get_contents(VALUES)
        assert not isinstance(current, list)
        repo.update_file(VALUES, "deploy", "enterprise\n", current.sha, branch=repo.default_branch)
        ref = repo.get_git_ref("heads/main")
        ref.edit(
            repo.create_git_commit(
                "empty", repo.get_git_commit(ref.object.sha).tree, [repo.get_git_commit(ref.object.sha)]
            ).sha
        )

        assert repo.url == f"{server.url}/repos/corp/gitops"
        assert workspace.read_file(VALUES) == b"enterprise\n"
        assert workspace.head("main") == ref.object.sha
        assert {entry["path"].split("/")[1:3] == ["api", "v3"] for entry in control.requests()} == {True}
        unprefixed = requests.get(
            server.extra["root_url"] + "/repos/corp/gitops", headers={"Authorization": f"token {TOKEN}"}, timeout=10
        )
        assert unprefixed.status_code == 404
    finally:
        server.stop()


def test_stopping_the_server_ends_its_git_processes_promptly(tmp_path: Path) -> None:
    server = start_github_standin(tmp_path)
    github = client(server.url)  # its keep-alive connection stays open while the server stops
    try:
        workspace = GitWorkspace.create(StandinControl(server.url).create_repo("corp/app"), tmp_path / "clone")
        workspace.commit_files({VALUES: PROD_VALUES}, "seed")
        github.get_repo("corp/app").get_contents(VALUES)
    finally:
        server.stop(timeout=30)
    assert server.process.returncode == 0  # left serve_forever on SIGTERM and closed down, not killed
    assert git_processes_under(tmp_path) == []
    github.close()


def git_processes_under(directory: Path) -> list[str]:
    """Command lines of running git processes that name a path below ``directory``."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            argv = cmdline.read_bytes().split(b"\0")
        except OSError:
            continue  # ended meanwhile
        text = " ".join(arg.decode(errors="replace") for arg in argv)
        if argv[0].endswith(b"git") and str(directory) in text:
            found.append(text)
    return found
