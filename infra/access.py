"""IAM resources named by the configuration: ECR repositories, Secrets Manager secrets, KMS signing keys.

Each helper turns a configuration value into the narrowest IAM statement that still works, and says why
when that is not a plain ARN (secrets referenced by name, keys referenced by alias).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from constructs import Construct

from tagrelay.config import Config

# What the promoter needs per repository: manifests (BatchGetImage, which also authorises the referrers
# API), blobs (GetDownloadUrlForLayer), image details (DescribeImages) and the tag mutability settings
# that keep a verified release tag on its digest (DescribeRepositories, adapters/ecr.py).
ECR_READ_ACTIONS = (
    "ecr:BatchGetImage",
    "ecr:DescribeImages",
    "ecr:DescribeRepositories",
    "ecr:GetDownloadUrlForLayer",
)
# Secrets are read through Powertools Parameters (GetSecretValue only; no DescribeSecret, no listing).
SECRET_READ_ACTIONS = ("secretsmanager:GetSecretValue",)
# Secrets Manager appends "-" and six random characters to a secret's name to make its ARN.
SECRET_SUFFIX_WILDCARD = "-??????"  # noqa: S105 (an ARN pattern, not a password)
_COMPLETE_SECRET_ARN = re.compile(r"^arn:[^:]+:secretsmanager:[^:]+:\d{12}:secret:.+-[A-Za-z0-9]{6}$")
_KMS_ARN = re.compile(
    r"^arn:(?P<partition>[^:]+):kms:(?P<region>[^:]+):(?P<account>\d{12}):(?P<kind>key|alias)/(?P<id>.+)$"
)


@dataclass(frozen=True)
class ImageRepository:
    app: str
    name: str
    account: str
    region: str


def image_repositories(config: Config) -> list[ImageRepository]:
    """Every configured image repository; the stack can only subscribe to Amazon ECR push events."""
    repositories: list[ImageRepository] = []
    for app_name, app in config.apps.items():
        ecr = app.ecr_registry
        if ecr is None:
            raise ValueError(
                f"apps.{app_name}.registry: {app.registry!r} is not an Amazon ECR registry "
                "(<account>.dkr.ecr.<region>.amazonaws.com); the AWS stack needs ECR push events"
            )
        account, region = ecr
        repositories.extend(ImageRepository(app_name, image, account, region) for image in app.images)
    return repositories


def repository_arn(scope: Construct, repository: ImageRepository) -> str:
    return cdk.Stack.of(scope).format_arn(
        service="ecr",
        resource="repository",
        resource_name=repository.name,
        account=repository.account,
        region=repository.region,
    )


def secret_resource(scope: Construct, name_or_arn: str) -> str:
    """The IAM resource of a secret given by name, partial ARN or complete ARN.

    A complete ARN (ending in -XXXXXX, as `aws secretsmanager describe-secret` prints it) is used as is;
    a name or a partial ARN gets Secrets Manager's own suffix as `-??????`, which matches that one
    secret and not others whose names merely start the same way (`*` would). A partial ARN whose name
    happens to end in "-" and six letters or digits looks complete: give such a secret by name.
    """
    if name_or_arn.startswith("arn:"):
        return name_or_arn if _COMPLETE_SECRET_ARN.match(name_or_arn) else name_or_arn + SECRET_SUFFIX_WILDCARD
    return cdk.Stack.of(scope).format_arn(
        service="secretsmanager",
        resource="secret",
        resource_name=name_or_arn + SECRET_SUFFIX_WILDCARD,
        arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME,
    )


def secret_read_statement(scope: Construct, sid: str, names_or_arns: list[str]) -> iam.PolicyStatement:
    return iam.PolicyStatement(
        sid=sid,
        actions=list(SECRET_READ_ACTIONS),
        resources=sorted({secret_resource(scope, secret) for secret in names_or_arns}),
    )


def promoter_secrets(config: Config) -> list[str]:
    """The GitHub credential, and the Argo CD token when the promoter asks Argo CD to refresh."""
    auth = config.github.auth
    secrets = [auth.token_secret] if auth.token_secret else []
    if auth.app is not None:
        secrets.append(auth.app.private_key_secret)
    if config.argocd is not None and config.argocd.token_secret and config.argocd.refresh_after_commit:
        secrets.append(config.argocd.token_secret)
    return secrets + notification_secrets(config)


def notification_secrets(config: Config) -> list[str]:
    """The webhooks' URLs (notifications.webhooks[].url_secret): the promoter and the tracker notify."""
    return [webhook.url_secret for webhook in config.notifications.webhooks]


def tracker_secrets(config: Config) -> list[str]:
    """The Argo CD token, and GitHub's credentials: the tracker asks GitHub's compare API whether a
    later revision Argo CD synced contains a deployment's commit."""
    if config.argocd is None or not config.argocd.token_secret:
        return notification_secrets(config)
    auth = config.github.auth
    github = [auth.token_secret] if auth.token_secret else []
    if auth.app is not None:
        github.append(auth.app.private_key_secret)
    return [config.argocd.token_secret, *github, *notification_secrets(config)]


def signing_key_statements(scope: Construct, config: Config) -> list[iam.PolicyStatement]:
    """kms:GetPublicKey on every KMS key that signs images (apps.*.signature.key.kms_key_id).

    A key id or key ARN becomes the key's ARN. An alias cannot be an IAM resource for key operations,
    so it becomes "any key of that account and region" narrowed by the condition kms:ResourceAliases,
    which holds only for the key the alias currently points to.
    """
    stack = cdk.Stack.of(scope)
    key_arns: set[str] = set()
    aliases: dict[tuple[str, str], set[str]] = {}  # (region, account) -> alias names
    for app in config.apps.values():
        if app.signature == "none" or app.signature.key is None or app.signature.key.kms_key_id is None:
            continue
        key_id = app.signature.key.kms_key_id
        arn = _KMS_ARN.match(key_id)
        if arn and arn["kind"] == "key":
            key_arns.add(key_id)
        elif arn:
            aliases.setdefault((arn["region"], arn["account"]), set()).add(f"alias/{arn['id']}")
        elif key_id.startswith("alias/"):
            aliases.setdefault((stack.region, stack.account), set()).add(key_id)
        else:
            key_arns.add(stack.format_arn(service="kms", resource="key", resource_name=key_id))
    statements = []
    if key_arns:
        statements.append(
            iam.PolicyStatement(sid="SigningKeys", actions=["kms:GetPublicKey"], resources=sorted(key_arns))
        )
    for index, ((region, account), names) in enumerate(sorted(aliases.items())):
        statements.append(
            iam.PolicyStatement(
                sid=f"SigningKeysByAlias{index}",
                actions=["kms:GetPublicKey"],
                resources=[
                    stack.format_arn(service="kms", resource="key", resource_name="*", region=region, account=account)
                ],
                conditions={"ForAnyValue:StringEquals": {"kms:ResourceAliases": sorted(names)}},
            )
        )
    return statements
