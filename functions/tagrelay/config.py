"""Typed configuration: apps, images, environments and policies, loaded and validated once.

One YAML file configures the functions, the CLI and the CDK stack. Every validation error names the
field (as a dotted path such as ``apps.mosaic-life.tag_pattern``) and what is wrong with it, so that a
platform engineer can fix the file without reading this module. See docs/configuration.md.
"""

from __future__ import annotations

import os
import re
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from tagrelay.domain.gitops_format import GitOpsFormat, HelmValues, Kustomize
from tagrelay.domain.tags import is_repository_name

DEFAULT_TAG_PATTERN = r"^(?P<sha>[0-9a-f]{7})$"
CONFIG_ENV_VAR = "TAGRELAY_CONFIG"

_REPO_NAME = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")
_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
_KEY_PATH = re.compile(r"^[^.\s]+(?:\.[^.\s]+)*$")
_DEFAULT_VALUES_FILE = "environments/{env}/values.yaml"
_ECR_HOST = re.compile(r"^(?P<account>\d{12})\.dkr\.ecr\.(?P<region>[a-z0-9-]+)\.amazonaws\.com(?:\.cn)?$")

# Settings an earlier version accepted and this one no longer reads. The schema forbids unknown fields
# (a misspelling must not pass silently), so a file written for that version fails; it gets told what
# to do instead of "unknown field". Dotted location -> what to do.
REMOVED_SETTINGS = {
    f"deploy.{placement}.vpc_id": "no longer read: the subnets (subnet_ids) determine the VPC; remove it"
    for placement in ("tracker_vpc", "promoter_vpc")
}


class ConfigError(ValueError):
    """The configuration file is missing, unreadable or invalid. The message lists every problem."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class GitOpsTarget(_Model):
    """Where and how the release is written: one file per environment in one GitOps repository."""

    repo: str = Field(description="GitHub repository holding the GitOps files, as owner/name")
    branch: str = Field(default="main", description="Branch Argo CD watches")
    format: Literal["helm", "kustomize"] = Field(
        default="helm", description="helm: a values file; kustomize: a kustomization's images: list"
    )
    values_file: str | None = Field(
        default=None,
        description="Path of each environment's file; {env} is replaced. Default: environments/{env}/values.yaml "
        "(helm) or environments/{env}/kustomization.yaml (kustomize)",
    )
    key: str = Field(default="global.imageTag", description="helm: dotted key path of the app's one tag")
    keys: dict[str, str] | None = Field(
        default=None, description="helm: one key path per image instead of key, e.g. {mosaic-life/web: web.image.tag}"
    )
    digest_keys: dict[str, str] = Field(
        default_factory=dict,
        description="helm: digest pinning, the key path of each pinned image's digest, e.g. "
        "{mosaic-life/web: web.image.digest}",
    )
    images: dict[str, str] = Field(
        default_factory=dict,
        description="kustomize: the images: entry name of an image when it is not <registry host>/<image>",
    )
    pin_digests: bool = Field(default=False, description="kustomize: write each image's digest beside newTag")
    write: Literal["commit", "pull_request"] = Field(
        default="commit",
        description="commit: straight to branch; pull_request: through a pull request from a tagrelay branch",
    )

    @field_validator("repo")
    @classmethod
    def _repo_is_owner_slash_name(cls, value: str) -> str:
        if not _REPO_NAME.match(value):
            raise ValueError(f"must be a GitHub repository as owner/name, got {value!r}")
        return value

    @field_validator("key")
    @classmethod
    def _key_is_dotted_path(cls, value: str) -> str:
        if not _KEY_PATH.match(value):
            raise ValueError(f"must be a dotted key path such as global.imageTag, got {value!r}")
        return value

    @field_validator("keys", "digest_keys")
    @classmethod
    def _keys_are_dotted_paths(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        for image, path in (value or {}).items():
            if not _KEY_PATH.match(path):
                raise ValueError(f"{image}: must be a dotted key path such as web.image.tag, got {path!r}")
        if value and len(set(value.values())) != len(value):
            raise ValueError("gives the same key path to two images")
        return value

    @field_validator("values_file")
    @classmethod
    def _values_file_is_relative(cls, value: str | None) -> str | None:
        if value is not None and (value.startswith("/") or ".." in value.split("/")):
            raise ValueError(f"must be a path inside the repository, got {value!r}")
        return value

    @model_validator(mode="after")
    def _options_fit_the_format(self) -> GitOpsTarget:
        helm_only = [name for name in ("keys", "digest_keys") if getattr(self, name)]
        if "key" in self.model_fields_set:
            helm_only.append("key")
        kustomize_only = [name for name in ("images", "pin_digests") if getattr(self, name)]
        if self.format == "kustomize" and helm_only:
            raise ValueError(f"{', '.join(helm_only)}: only for format helm (kustomize uses images and pin_digests)")
        if self.format == "helm" and kustomize_only:
            raise ValueError(f"{', '.join(kustomize_only)}: only for format kustomize (helm uses digest_keys)")
        if self.keys is not None and "key" in self.model_fields_set:
            raise ValueError("give key (one tag for the app) or keys (one per image), not both")
        if self.digest_keys and set(self.digest_keys.values()) & set((self.keys or {self.key: self.key}).values()):
            raise ValueError("a digest key is also a tag key")
        return self

    def values_path(self, env: str) -> str:
        default = "environments/{env}/kustomization.yaml" if self.format == "kustomize" else _DEFAULT_VALUES_FILE
        return (self.values_file or default).replace("{env}", env)


class Environment(_Model):
    """One deployment environment of an app."""

    branch: str = Field(description="Source-repository branch whose commits may deploy here")
    argocd_app: str | None = Field(default=None, description="Argo CD application that deploys it")
    argocd_project: str | None = Field(
        default=None, description="Argo CD project, so that a missing app answers 404 instead of 403"
    )
    timeout_minutes: int | None = Field(
        default=None, ge=1, le=24 * 60, description="Tracking timeout; defaults to tracking.timeout_minutes"
    )


class KeySignature(_Model):
    """Cosign key-pair signatures (ECDSA P-256): a PEM public key, or an AWS KMS key."""

    public_key_pem: str | None = Field(default=None, description="PEM-encoded public key")
    public_key_file: str | None = Field(default=None, description="Path to a PEM public key file")
    kms_key_id: str | None = Field(default=None, description="KMS key id, ARN or alias (kms:GetPublicKey)")
    commit_annotation: str = Field(
        default="git-sha",
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,127}$",
        description="Signed annotation naming the release commit: cosign sign -a <name>=<full commit SHA>",
    )

    @model_validator(mode="after")
    def _exactly_one_source(self) -> KeySignature:
        given = [n for n in ("public_key_pem", "public_key_file", "kms_key_id") if getattr(self, n)]
        if len(given) != 1:
            raise ValueError(
                "give exactly one of public_key_pem, public_key_file or kms_key_id"
                + (f" (got {', '.join(given)})" if given else "")
            )
        if self.public_key_pem and "-----BEGIN PUBLIC KEY-----" not in self.public_key_pem:
            raise ValueError("public_key_pem must be a PEM public key ('-----BEGIN PUBLIC KEY-----')")
        return self


class KeylessSignature(_Model):
    """Sigstore keyless (Fulcio certificate) identity policy. Placeholders: {branch}, {env}.

    Independent of these fields, the certificate's commit must start with the release tag's SHA.
    """

    issuer: str = Field(description="OIDC issuer, matched exactly")
    identity: str | None = Field(default=None, description="Certificate SAN, matched exactly")
    identity_regexp: str | None = Field(
        default=None, description="Certificate SAN as a regular expression that must match all of it"
    )
    repository: str | None = Field(default=None, description="GitHub repository claim (owner/name)")
    ref: str | None = Field(default=None, description="GitHub ref claim, e.g. refs/heads/{branch}")
    trigger: str | None = Field(default=None, description="GitHub workflow trigger claim, e.g. push")
    workflow: str | None = Field(default=None, description="GitHub workflow name claim")
    trusted_root: str | None = Field(
        default=None, description="Path to a Sigstore trusted_root.json; default: the pinned public-good root"
    )
    verify_sct: bool = Field(
        default=True, description="Require the certificate's embedded SCT (legacy layout; bundles always do)"
    )

    @model_validator(mode="after")
    def _one_identity(self) -> KeylessSignature:
        if (self.identity is None) == (self.identity_regexp is None):
            raise ValueError("give exactly one of identity or identity_regexp")
        for name in ("issuer", "identity", "identity_regexp", "repository", "ref", "trigger", "workflow"):
            value = getattr(self, name)
            unknown = set(re.findall(r"\{([^{}]*)\}", value or "")) - {"branch", "env"}
            # identity_regexp may use {m,n} repetitions; only names are placeholders.
            unknown = {u for u in unknown if not re.fullmatch(r"\d*(,\d*)?", u)}
            if unknown:
                raise ValueError(f"{name} uses unknown placeholder(s) {sorted(unknown)}; only {{branch}} and {{env}}")
        if self.identity_regexp is not None:
            try:
                re.compile(self.identity_regexp.replace("{branch}", "b").replace("{env}", "e"))
            except re.error as exc:
                raise ValueError(f"identity_regexp is not a valid regular expression: {exc}") from exc
        return self


class EcrRegistryId(_Model):
    """The ECR registry (account and region) behind a registry host that is not ECR's own name."""

    account: str = Field(pattern=r"^\d{12}$", description="AWS account id of the registry")
    region: str = Field(pattern=r"^[a-z]{2}(-[a-z]+)+-\d$", description="AWS region, e.g. us-east-1")


class SignaturePolicy(_Model):
    """Which signatures make an image digest acceptable. ``signature: none`` turns the check off."""

    key: KeySignature | None = None
    keyless: KeylessSignature | None = None

    @model_validator(mode="after")
    def _exactly_one_kind(self) -> SignaturePolicy:
        if (self.key is None) == (self.keyless is None):
            raise ValueError("give exactly one of key or keyless (or write 'signature: none')")
        return self


class App(_Model):
    """An application: images built from one source repository and deployed together under one tag."""

    source_repo: str = Field(description="GitHub repository where the SHAs live, as owner/name")
    registry: str = Field(description="Registry host (ECR) or URL (http://127.0.0.1:5000 for the local stack)")
    images: list[str] = Field(min_length=1, description="Image repositories; all must carry the tag")
    tag_pattern: str = Field(
        default=DEFAULT_TAG_PATTERN, description="Regular expression with a named group 'sha', optionally 'env'"
    )
    gitops: GitOpsTarget
    environments: dict[str, Environment] = Field(min_length=1)
    signature: SignaturePolicy | Literal["none"] = Field(
        description="Signature policy; required, and 'none' only as an explicit choice"
    )
    allow_mutable_tags: bool = Field(
        default=False,
        description="Promote even when ECR lets release tags be overwritten (recorded on every deployment)",
    )
    ecr: EcrRegistryId | None = Field(
        default=None,
        description="The ECR registry behind `registry` when its host is not <account>.dkr.ecr.<region>.amazonaws.com",
    )

    @field_validator("source_repo")
    @classmethod
    def _source_repo_is_owner_slash_name(cls, value: str) -> str:
        if not _REPO_NAME.match(value):
            raise ValueError(f"must be a GitHub repository as owner/name, got {value!r}")
        return value

    @field_validator("registry")
    @classmethod
    def _registry_is_host_or_url(cls, value: str) -> str:
        host = value.split("://", 1)[1] if "://" in value else value
        if not host or "/" in host.rstrip("/"):
            raise ValueError(f"must be a registry host (or http(s)://host:port), got {value!r}")
        if "://" in value and not value.startswith(("http://", "https://")):
            raise ValueError(f"scheme must be http or https, got {value!r}")
        return value.rstrip("/")

    @field_validator("images")
    @classmethod
    def _images_are_repository_names(cls, value: list[str]) -> list[str]:
        for image in value:
            if not is_repository_name(image):
                raise ValueError(f"{image!r} is not a registry repository name (lower case, '/'-separated)")
        if len(set(value)) != len(value):
            raise ValueError("lists the same image twice")
        return value

    @field_validator("tag_pattern")
    @classmethod
    def _tag_pattern_has_sha_group(cls, value: str) -> str:
        try:
            compiled = re.compile(value)
        except re.error as exc:
            raise ValueError(f"is not a valid regular expression: {exc}") from exc
        groups = set(compiled.groupindex)
        if "sha" not in groups:
            raise ValueError("must contain a named group 'sha', e.g. '^(?P<sha>[0-9a-f]{7})$'")
        if extra := groups - {"sha", "env"}:
            raise ValueError(f"may only name the groups 'sha' and 'env', found {sorted(extra)}")
        if not (value.startswith("^") and value.endswith("$")):
            raise ValueError("must be anchored with ^ and $ so that it matches the whole tag")
        return value

    @field_validator("environments")
    @classmethod
    def _environment_names(cls, value: dict[str, Environment]) -> dict[str, Environment]:
        for name in value:
            if not _NAME.match(name):
                raise ValueError(f"environment name {name!r} must be lower-case letters, digits and '-'")
        return value

    @model_validator(mode="after")
    def _ecr_agrees_with_the_host(self) -> App:
        match = _ECR_HOST.match(self.registry_host)
        if (
            match
            and self.ecr is not None
            and (self.ecr.account, self.ecr.region) != (match["account"], match["region"])
        ):
            raise ValueError(
                f"ecr names account {self.ecr.account} in {self.ecr.region}, but the registry host is account "
                f"{match['account']} in {match['region']}; remove ecr (it is read from the host)"
            )
        return self

    @model_validator(mode="after")
    def _gitops_images_are_the_apps(self) -> App:
        named = {
            "gitops.keys": set(self.gitops.keys or {}),
            "gitops.digest_keys": set(self.gitops.digest_keys),
            "gitops.images": set(self.gitops.images),
        }
        for option, images in named.items():
            if unknown := images - set(self.images):
                raise ValueError(f"{option} names {sorted(unknown)}, which are not among images {self.images}")
        if self.gitops.keys is not None and (missing := set(self.images) - set(self.gitops.keys)):
            raise ValueError(f"gitops.keys has no key for {sorted(missing)}: give every image its tag's key path")
        return self

    @cached_property
    def gitops_format(self) -> GitOpsFormat:
        """How the environment's GitOps file is read and edited (domain/gitops_format.py)."""
        gitops = self.gitops
        if gitops.format == "kustomize":
            names = {image: gitops.images.get(image, f"{self.registry_host}/{image}") for image in self.images}
            return Kustomize(names=names, pin=gitops.pin_digests)
        tag_keys = gitops.keys or {image: gitops.key for image in self.images}
        return HelmValues(tag_keys={image: tag_keys[image] for image in self.images}, digest_keys=gitops.digest_keys)

    @cached_property
    def tag_regex(self) -> re.Pattern[str]:
        return re.compile(self.tag_pattern)

    @property
    def registry_url(self) -> str:
        return self.registry if "://" in self.registry else f"https://{self.registry}"

    @property
    def registry_host(self) -> str:
        return self.registry.split("://", 1)[-1]

    @property
    def ecr_registry(self) -> tuple[str, str] | None:
        """(account, region) of the app's Amazon ECR registry: from the host, or from ``ecr``; else None."""
        match = _ECR_HOST.match(self.registry_host)
        if match:
            return match["account"], match["region"]
        return (self.ecr.account, self.ecr.region) if self.ecr is not None else None

    @property
    def signature_required(self) -> bool:
        return self.signature != "none"

    def env_for_branch(self, branch: str) -> str | None:
        return next((name for name, env in self.environments.items() if env.branch == branch), None)


class GitHubAppAuth(_Model):
    app_id: int = Field(gt=0)
    private_key_secret: str = Field(description="Secrets Manager name or ARN of the App's PEM private key")
    installation_id: int | None = Field(
        default=None, gt=0, description="Installation id; looked up from the GitOps repository when omitted"
    )


class GitHubAuth(_Model):
    token_secret: str | None = Field(default=None, description="Secrets Manager name or ARN of a token")
    app: GitHubAppAuth | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> GitHubAuth:
        if (self.token_secret is None) == (self.app is None):
            raise ValueError("give exactly one of token_secret or app")
        return self


class GitHubConfig(_Model):
    base_url: str = Field(default="https://api.github.com", description="API base URL (GitHub Enterprise: /api/v3)")
    auth: GitHubAuth
    read_token_secret: str | None = Field(
        default=None,
        description="Secrets Manager name or ARN of a read-only token for the read commands (status, explain); "
        "GITHUB_TOKEN or `gh auth token` come first. The functions never read it",
    )
    commit_attempts: int = Field(default=5, ge=1, le=20, description="Compare-and-swap attempts per commit")
    committer_name: str = "tagrelay[bot]"
    committer_email: str = "tagrelay@users.noreply.github.com"
    timeout_seconds: float = Field(default=10.0, gt=0, le=60)

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"must be an http(s) URL, got {value!r}")
        return value.rstrip("/")


class ArgoCDConfig(_Model):
    url: str = Field(description="Argo CD server URL")
    token_secret: str | None = Field(default=None, description="Secrets Manager name or ARN of the API token")
    ca_bundle: str | None = Field(default=None, description="Path to a PEM CA bundle for a private CA")
    insecure: bool = Field(default=False, description="Skip TLS verification (explicit opt-in only)")
    refresh_after_commit: bool = Field(default=True, description="Ask Argo CD to refresh right after a commit")
    timeout_seconds: float = Field(default=10.0, gt=0, le=60)

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"must be an http(s) URL, got {value!r}")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _tls_choice(self) -> ArgoCDConfig:
        if self.insecure and self.ca_bundle:
            raise ValueError("give either ca_bundle or insecure: true, not both")
        return self


class LedgerConfig(_Model):
    table: str = Field(default="tagrelay-ledger", min_length=3, max_length=255)
    decision_ttl_days: int = Field(default=30, ge=1, description="How long transient items (waits, sightings) are kept")


class PromotionConfig(_Model):
    signature_grace_minutes: int = Field(
        default=15,
        ge=0,
        le=24 * 60,
        description="How long after a release tag is first seen a missing signature means 'wait' "
        "rather than 'reject' (cosign signs minutes after the push)",
    )


class LimitsConfig(_Model):
    """Bounds on everything tagrelay reads from outside, so a hostile or broken peer cannot exhaust it.

    Past a size cap a read fails closed (the release is refused, or the event retried, with the cap named).
    """

    http_connect_timeout_seconds: float = Field(default=3.0, gt=0, le=30, description="TCP/TLS connect timeout")
    http_deadline_seconds: float = Field(
        default=10.0, gt=0, le=120, description="Whole-request deadline: connect, headers and body together"
    )
    manifest_max_bytes: int = Field(default=4 * 1024 * 1024, ge=1024, description="A registry manifest or index")
    error_body_max_bytes: int = Field(default=64 * 1024, ge=256, description="The body of an error answer")
    signature_payload_max_bytes: int = Field(default=64 * 1024, ge=1024, description="A cosign simple-signing payload")
    bundle_max_bytes: int = Field(default=256 * 1024, ge=1024, description="A cosign v3 Sigstore bundle")
    signature_layers_max: int = Field(
        default=16, ge=1, le=1000, description="Signature layers examined per image (a .sig manifest's layers)"
    )
    referrers_max: int = Field(default=16, ge=1, le=1000, description="Signature referrers examined per image")
    values_file_max_bytes: int = Field(
        default=1024 * 1024, ge=1024, le=100 * 1024 * 1024, description="A GitOps values file"
    )
    argocd_response_max_bytes: int = Field(default=8 * 1024 * 1024, ge=1024, description="One Argo CD answer")
    commit_reserve_seconds: float = Field(
        default=15.0,
        gt=0,
        le=600,
        description="Lambda time that must remain before a GitOps commit starts; less raises a retry first",
    )
    tag_mutability_cache_seconds: float = Field(
        default=300.0, ge=0, le=3600, description="How long a repository's tag mutability is cached per container"
    )


class TrackingConfig(_Model):
    timeout_minutes: int = Field(default=15, ge=1, le=24 * 60)
    schedule_minutes: int = Field(default=1, ge=1, le=60)
    flap_window_minutes: int = Field(
        default=5,
        ge=0,
        le=24 * 60,
        description="After SUCCEEDED, watch this long: health turning Degraded meanwhile makes it DEGRADED (0: off)",
    )


class ReconcileConfig(_Model):
    """The reconcile sweep (services/reconcile.py): the backstop for lost events and changes made by hand."""

    schedule_minutes: int = Field(default=10, ge=1, le=24 * 60, description="How often the sweep runs")
    lookback_hours: int = Field(
        default=24, ge=1, le=24 * 30, description="Re-evaluate undecided releases first seen this recently"
    )
    stuck_after_minutes: int = Field(
        default=30,
        ge=1,
        le=7 * 24 * 60,
        description="A release still waiting this long after it was first seen is reported (ReleasesStuckWaiting)",
    )
    max_releases_per_run: int = Field(
        default=25, ge=1, le=500, description="At most this many releases re-evaluated per run (oldest first)"
    )


class VpcPlacement(_Model):
    """Where the tracker Lambda runs when Argo CD is only reachable inside a VPC."""

    subnet_ids: list[str] = Field(min_length=1)
    security_group_ids: list[str] = Field(min_length=1)

    @field_validator("subnet_ids")
    @classmethod
    def _subnets(cls, value: list[str]) -> list[str]:
        for subnet in value:
            if not re.match(r"^subnet-[0-9a-f]+$", subnet):
                raise ValueError(f"{subnet!r} is not a subnet id (subnet-...)")
        return value

    @field_validator("security_group_ids")
    @classmethod
    def _security_groups(cls, value: list[str]) -> list[str]:
        for group in value:
            if not re.match(r"^sg-[0-9a-f]+$", group):
                raise ValueError(f"{group!r} is not a security group id (sg-...)")
        return value


class DeployConfig(_Model):
    """How the CDK app deploys tagrelay (ignored by the functions themselves)."""

    stack_name: str = Field(default="tagrelay", pattern=r"^[A-Za-z][A-Za-z0-9-]{0,127}$")
    account: str | None = Field(default=None, pattern=r"^\d{12}$")
    region: str | None = Field(default=None, description="AWS region; defaults to the CDK environment's")
    architecture: Literal["arm64", "x86_64"] = "arm64"
    log_retention_days: int = Field(default=90, ge=1)
    alarm_email: str | None = Field(default=None, description="Subscribed to the alarm topic when given")
    tracker_vpc: VpcPlacement | None = None
    promoter_vpc: VpcPlacement | None = Field(
        default=None,
        description="Subnets for the promoter when its Argo CD refresh nudge must reach an in-VPC Argo CD "
        "(the subnets then need egress to GitHub, ECR, Secrets Manager, DynamoDB and STS)",
    )
    operators_role_arns: list[str] = Field(
        default_factory=list, description="IAM roles allowed to invoke the promoter for manual deploys"
    )
    runbook_url: str | None = Field(
        default=None,
        description="URL of the alarm runbook (your copy of docs/alarms.md); alarm descriptions link its sections",
    )

    @field_validator("runbook_url")
    @classmethod
    def _runbook_is_a_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("https://", "http://")):
            raise ValueError(f"must be an http(s) URL, got {value!r}")
        return value


class OperatorsConfig(_Model):
    """Operator commands (`tagrelay deploy`, `rollback`, `pin`, `unpin`): how the promoter verifies who
    calls, and who may act on which environment. IAM (lambda:InvokeFunction) is the first gate."""

    sts_endpoint: str | None = Field(
        default=None, description="STS endpoint that verifies callers; default: the function's regional endpoint"
    )
    principals: dict[str, list[str]] = Field(
        default_factory=dict,
        description="Environment (or '*' for all) -> IAM ARNs allowed to act on it; empty: anyone IAM lets invoke",
    )

    @field_validator("sts_endpoint")
    @classmethod
    def _https_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("https://", "http://127.0.0.1", "http://localhost")):
            raise ValueError(f"must be an https URL, got {value!r}")
        return value.rstrip("/") if value else value

    @field_validator("principals")
    @classmethod
    def _principals(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        for env, arns in value.items():
            if env != "*" and not _NAME.match(env):
                raise ValueError(f"{env!r} is neither an environment name nor '*'")
            for arn in arns:
                if not (arn.startswith("arn:") or arn == "*"):
                    raise ValueError(f"{env}: {arn!r} is not an IAM ARN (arn:aws:iam::<account>:role/<name>, ...)")
        return value

    def allowed(self, env: str) -> list[str] | None:
        """The principals allowed on ``env``; None when no list is configured (IAM alone decides)."""
        if not self.principals:
            return None
        return [*self.principals.get(env, []), *self.principals.get("*", [])]


class WebhookConfig(_Model):
    """A webhook told of every deployment state: a generic JSON one, or a Slack-compatible incoming webhook."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$", description="Label in logs and metrics, e.g. slack")
    url_secret: str = Field(description="Secrets Manager name or ARN whose value is the webhook URL")
    format: Literal["json", "slack"] = Field(
        default="json", description="json: the event as a JSON document; slack: {text: ...} for an incoming webhook"
    )


class NotificationsConfig(_Model):
    """Deployment notifications, sent after the commit and on every state the tracker records."""

    github_deployments: bool = Field(
        default=False,
        description="A GitHub deployment per promoted release and environment on the source repository, with a "
        "status on every state (the GitHub credential needs deployments: write on the source repositories)",
    )
    webhooks: list[WebhookConfig] = Field(default_factory=list)
    attempts: int = Field(default=3, ge=1, le=5, description="Delivery attempts per notification and channel")

    @field_validator("webhooks")
    @classmethod
    def _distinct_names(cls, value: list[WebhookConfig]) -> list[WebhookConfig]:
        names = [webhook.name for webhook in value]
        if len(set(names)) != len(names):
            raise ValueError("two webhooks share a name")
        return value

    @property
    def enabled(self) -> bool:
        return self.github_deployments or bool(self.webhooks)


class Config(_Model):
    """The whole configuration file."""

    apps: dict[str, App] = Field(min_length=1)
    github: GitHubConfig
    argocd: ArgoCDConfig | None = None
    ledger: LedgerConfig = LedgerConfig()
    promotion: PromotionConfig = PromotionConfig()
    limits: LimitsConfig = LimitsConfig()
    tracking: TrackingConfig = TrackingConfig()
    reconcile: ReconcileConfig = ReconcileConfig()
    deploy: DeployConfig = DeployConfig()
    operators: OperatorsConfig = OperatorsConfig()
    notifications: NotificationsConfig = NotificationsConfig()

    @field_validator("apps")
    @classmethod
    def _app_names(cls, value: dict[str, App]) -> dict[str, App]:
        for name in value:
            if not _NAME.match(name):
                raise ValueError(f"app name {name!r} must be lower-case letters, digits and '-'")
        return value

    @model_validator(mode="after")
    def _images_belong_to_one_app(self) -> Config:
        owner: dict[tuple[str, str], str] = {}
        for app_name, app in self.apps.items():
            for image in app.images:
                key = (app.registry_host, image)
                if key in owner:
                    raise ValueError(f"image {image} is listed by both apps {owner[key]} and {app_name}")
                owner[key] = app_name
        return self

    def app_for_repository(self, repository: str) -> tuple[str, App] | None:
        """The app that owns an image repository (events carry the repository name, not the host)."""
        return self._by_repository.get(repository)

    @cached_property
    def _by_repository(self) -> dict[str, tuple[str, App]]:
        return {image: (name, app) for name, app in self.apps.items() for image in app.images}


def parse_config(data: Any, *, source: str = "configuration") -> Config:
    """Validate already-parsed YAML/JSON data. Raises ConfigError naming every bad field."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the top level must be a mapping with 'apps' and 'github'")
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, source)) from None


def load_config(path: str | os.PathLike[str] | None = None) -> Config:
    """Load and validate the configuration file (default: $TAGRELAY_CONFIG)."""
    location = path or os.environ.get(CONFIG_ENV_VAR)
    if not location:
        raise ConfigError(f"no configuration file: pass --config FILE or set {CONFIG_ENV_VAR}")
    file = Path(location)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{file}: cannot read the configuration file ({exc.strerror})") from None
    return parse_config(_load_yaml(text, str(file)), source=str(file))


def _load_yaml(text: str, source: str) -> Any:
    from ruamel.yaml import YAML
    from ruamel.yaml.error import MarkedYAMLError, YAMLError

    yaml = YAML(typ="safe", pure=True)
    yaml.allow_duplicate_keys = False
    try:
        return yaml.load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"{source}:{where}: not valid YAML: {exc.problem}") from None
    except YAMLError as exc:
        raise ConfigError(f"{source}: not valid YAML: {exc}") from None


def _describe(exc: ValidationError, source: str) -> str:
    errors = [(_location(error["loc"]), error) for error in exc.errors(include_url=False)]
    problems = []
    for location, error in errors:
        # A union such as `signature: none | {key: ...}` reports one error per branch; when the input
        # chose the mapping branch, "Input should be 'none'" is noise.
        if error["type"] == "literal_error" and any(
            other is not error and loc.startswith(location) for loc, other in errors
        ):
            continue
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "model_type" and any(
            other["type"] == "literal_error" and loc == location for loc, other in errors
        ):
            message = f"got {error['input']!r}; expected 'none' or a mapping (see docs/configuration.md)"
        elif error["type"] == "extra_forbidden" and location in REMOVED_SETTINGS:
            message = REMOVED_SETTINGS[location]
        elif error["type"] == "extra_forbidden":
            message = "unknown field (check the spelling against docs/configuration.md)"
        elif error["type"] == "missing":
            message = "required field is missing"
        problems.append(f"  {location or '(top level)'}: {message}")
    return f"{source}: invalid configuration:\n" + "\n".join(dict.fromkeys(problems))


def _location(loc: tuple[int | str, ...]) -> str:
    # Pydantic names union branches and validators in error locations ("SignaturePolicy",
    # "function-after[...]", "literal['none']"); they mean nothing to someone editing YAML.
    return ".".join(str(part) for part in loc if not (isinstance(part, str) and ("[" in part or part[:1].isupper())))
