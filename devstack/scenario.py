"""The seed system on the local stack: its source repository, its GitOps repository, signed images.

`SeedScenario.create(stack)` gives what mosaic-stories/mosaic-life looks like to tagrelay:

* source repo ``mosaic-stories/mosaic-life`` with commits on ``main`` and ``develop``;
* GitOps repo ``mosaic-stories/gitops`` with the seed's values files (mosaic-stories/gitops, environments/*/values.yaml);
* images ``mosaic-life/web`` and ``mosaic-life/core-api`` pushed to the registry with the short-SHA
  tag and the branch tag, each signed with a cosign key, exactly as CI would.

`release(...)` pushes one release and returns the ECR events it would have produced, so a test can
deliver them in any order.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devstack.events import ecr_push_event, ecr_storage_class_event
from devstack.gitrepo import GitWorkspace
from devstack.images import CosignKeySigner, push_image, sign_image, tag_image
from devstack.sigstore_testing import (
    GitHubIdentity,
    KeylessSigner,
    TestSigstore,
    keyless_signature_config,
    sign_image_bundle,
    sign_image_keyless,
)
from devstack.stack import LocalStack
from tagrelay.domain.tags import signature_tag

SOURCE_REPO = "mosaic-stories/mosaic-life"
GITOPS_REPO = "mosaic-stories/gitops"
IMAGES = ("mosaic-life/web", "mosaic-life/core-api")
BRANCH_OF_ENV = {"prod": "main", "staging": "develop"}
# How the seed's ECR repositories should be set up (docs/integrity.md): release tags immutable, and only
# the tags that must move exempt: cosign's signature tags (sha256-<hex>.sig, re-pushed per signature) and
# the branch tags CI moves on every push.
RELEASE_EXCLUSIONS = ("sha256-*", *BRANCH_OF_ENV.values())
# The seed's real values files, kept byte for byte in the values-edit corpus (mosaic-stories/gitops, environments/*/values.yaml).
_CORPUS = Path(__file__).resolve().parent.parent / "tests" / "testdata" / "values"
SEED_VALUES = {
    "base/values.yaml": _CORPUS / "refused" / "base-values-without-image-tag.yaml",
    "environments/prod/values.yaml": _CORPUS / "seed-290cffc-prod-unquoted-tag.yaml",
    "environments/staging/values.yaml": _CORPUS / "seed-4f831a8-staging-quoted-tag-header-comment.yaml",
}


@dataclass
class Release:
    """One pushed release: its commit, its tag, each image's digest, and the events ECR would send."""

    sha: str
    tag: str
    digests: dict[str, str]
    events: list[dict[str, Any]] = field(default_factory=list)

    def events_of(self, kind: str) -> list[dict[str, Any]]:
        """kind: 'release' (the short-SHA tag), 'branch' or 'signature'."""
        return [e for e in self.events if _kind(e, self.tag) == kind]


@dataclass
class SeedScenario:
    stack: LocalStack
    source: GitWorkspace
    gitops: GitWorkspace
    signer: CosignKeySigner
    source_repo: str = SOURCE_REPO
    gitops_repo: str = GITOPS_REPO
    images: tuple[str, ...] = IMAGES
    # Keyless signing (the seed's way): a private Sigstore and its trusted_root.json. None: a cosign key.
    sigstore: tuple[TestSigstore, Path] | None = None
    _counter: itertools.count[int] = field(default_factory=itertools.count)

    @classmethod
    def create(
        cls, stack: LocalStack, *, isolate_as: str | None = None, sigstore: tuple[TestSigstore, Path] | None = None
    ) -> SeedScenario:
        """The seed's repositories and images. ``isolate_as`` renames them (``<name>/mosaic-life``,
        ``<name>/gitops``, ``<name>/web``...) so that tests sharing one stack do not meet. With
        ``sigstore``, releases are signed keyless, as the seed's GitHub Actions workflow signs them."""
        source_repo, gitops_repo, images = SOURCE_REPO, GITOPS_REPO, IMAGES
        if isolate_as:
            source_repo, gitops_repo = f"{isolate_as}/mosaic-life", f"{isolate_as}/gitops"
            images = (f"{isolate_as}/web", f"{isolate_as}/core-api")
        control = stack.github_control
        work = stack.workdir / f"work-{isolate_as or 'seed'}"
        source = GitWorkspace.create(control.repo_path(source_repo), work / "source")
        source.commit_files({"README.md": "# mosaic-life\n"}, "chore: initial commit", branch="main")
        source.create_branch("develop", "main")
        gitops = GitWorkspace.create(control.repo_path(gitops_repo), work / "gitops")
        gitops.commit_files(
            {path: source.read_bytes() for path, source in SEED_VALUES.items()},
            "chore: seed values files",
            branch="main",
        )
        for image in images:
            set_tag_mutability(stack, image, "IMMUTABLE_WITH_EXCLUSION", RELEASE_EXCLUSIONS)
        return cls(
            stack=stack,
            source=source,
            gitops=gitops,
            signer=CosignKeySigner.generate(),
            source_repo=source_repo,
            gitops_repo=gitops_repo,
            images=images,
            sigstore=sigstore,
        )

    @property
    def signature_config(self) -> dict[str, Any]:
        if self.sigstore is not None:
            return keyless_signature_config(self.sigstore[1])
        return {"key": {"public_key_pem": self.signer.public_key_pem}}

    def write_config(
        self, path: Path | None = None, *, extra: Mapping[str, Any] | None = None, **app_overrides: Any
    ) -> Path:
        """The example configuration pointed at this stack and this scenario's repositories and images."""
        settings: dict[str, Any] = {
            "source_repo": self.source_repo,
            "images": list(self.images),
            "signature": self.signature_config,
        }
        settings.update(app_overrides)
        gitops = {
            "repo": self.gitops_repo,
            "branch": "main",
            "values_file": "environments/{env}/values.yaml",
            "key": "global.imageTag",
        }
        gitops.update(settings.pop("gitops", {}))
        if gitops.get("format") == "kustomize" or "keys" in gitops:
            gitops.pop("key")  # key is the one Helm key of an app: not for kustomize, nor beside per-image keys
        settings["gitops"] = gitops
        target = path or self.stack.workdir / f"{self.gitops_repo.split('/')[0]}.yaml"
        return self.stack.write_config(target, extra=extra, **settings)

    def commit(self, branch: str, message: str | None = None) -> str:
        """A new commit on the source repository's ``branch``; returns its full SHA."""
        number = next(self._counter)
        return self.source.commit_files(
            {f"src/change-{number}.txt": f"change {number} on {branch}\n"},
            message or f"feat: change {number}",
            branch=branch,
        )

    def release(
        self,
        sha: str,
        *,
        branch: str | None = "main",
        tag: str | None = None,
        images: Sequence[str] | None = None,
        sign: bool = True,
        signer: CosignKeySigner | None = None,
    ) -> Release:
        """Push (and sign) every image of a release like CI does, recording the ECR events it causes."""
        registry = self.stack.registry.url
        release_tag = tag or sha[:7]
        release = Release(sha=sha, tag=release_tag, digests={})
        for image in images if images is not None else self.images:
            # Distinct content per image and commit, so every release has its own digests.
            digest = push_image(registry, image, [release_tag], content=f"{image}@{sha}".encode())
            release.digests[image] = digest
            release.events.append(ecr_push_event(image, release_tag, digest))
            if branch:
                tag_image(registry, image, digest, branch)
                release.events.append(ecr_push_event(image, branch, digest))
            if sign:
                release.events.append(self._sign(image, digest, sha, branch, signer))
        return release

    def _sign(
        self, image: str, digest: str, sha: str, branch: str | None, signer: CosignKeySigner | None
    ) -> dict[str, Any]:
        """Sign like CI and return the ECR event of the signature push."""
        registry = self.stack.registry.url
        if self.sigstore is None or signer is not None:
            # As CI signs with a key: `cosign sign --key ... -a git-sha=<full SHA>` (docs/signatures.md).
            signature_digest = sign_image(registry, image, digest, signer or self.signer, annotations={"git-sha": sha})
            return ecr_push_event(image, signature_tag(digest), signature_digest)
        keyless = KeylessSigner(self.sigstore[0], GitHubIdentity().for_commit(sha, branch=branch or "main"))
        if image == self.images[-1]:
            # cosign v3: a Sigstore bundle referrer; this registry has no referrers API, so cosign also
            # updates the sha256-<hex> index tag, and that push is the event.
            referrer = sign_image_bundle(registry, image, digest, keyless, tag_fallback=True)
            return ecr_push_event(image, digest.replace(":", "-"), referrer)
        signature_digest = sign_image_keyless(registry, image, digest, keyless)  # cosign v2: the .sig tag
        return ecr_push_event(image, signature_tag(digest), signature_digest)

    def set_storage_class(self, image: str, digest: str, target: str) -> dict[str, Any]:
        """ECR moves an image to its archive (``ARCHIVE``, as a lifecycle rule does) or restores it
        (``STANDARD``), in the ECR stand-in; returns the event ECR sends for it."""
        self.stack.ecr_client().update_image_storage_class(
            repositoryName=image, imageId={"imageDigest": digest}, targetStorageClass=target
        )
        ecr = self.stack.ecr_registry
        return ecr_storage_class_event(image, digest, target, account=ecr["account"], region=ecr["region"])

    def values_file(self, env: str) -> bytes:
        return self.gitops.read_file(f"environments/{env}/values.yaml", branch="main")


def set_tag_mutability(stack: LocalStack, image: str, mutability: str, exclusions: Sequence[str] = ()) -> None:
    """Create the image's ECR repository on the stack's ECR stand-in, or change its tag mutability."""
    ecr = stack.ecr_client()
    settings: dict[str, Any] = {"imageTagMutability": mutability}
    if exclusions:
        settings["imageTagMutabilityExclusionFilters"] = [{"filterType": "WILDCARD", "filter": f} for f in exclusions]
    try:
        ecr.create_repository(repositoryName=image, **settings)
    except ecr.exceptions.RepositoryAlreadyExistsException:
        ecr.put_image_tag_mutability(repositoryName=image, **settings)


def _kind(event: dict[str, Any], release_tag: str) -> str:
    tag = event["detail"].get("image-tag", "")
    if tag == release_tag:
        return "release"
    if tag.startswith("sha256-"):
        return "signature"
    return "branch"
