"""What a configuration must satisfy to be deployed, beyond its schema: one list, for `cdk synth` and for
`tagrelay config check` (which must not need the CDK).

Pure checks of the configuration and of the files it names; nothing here contacts AWS. The schema
(config.py) checks each field; these check what only deploying reveals: the log retention CloudWatch
accepts, registries the stack can subscribe to, files that can be packaged with the functions, and
repositories whose push events would not reach the stack.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tagrelay.config import Config

# CloudWatch Logs accepts only these retention periods, in days (PutRetentionPolicy's retentionInDays).
LOG_RETENTION_DAYS = (
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653,
)  # fmt: skip


@dataclass
class DeploymentReport:
    """Errors stop a deploy (and `make synth`); warnings are deployable but probably not what you want."""

    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


def check_log_retention(days: int) -> str | None:
    if days in LOG_RETENTION_DAYS:
        return None
    return (
        f"deploy.log_retention_days: {days} is not a CloudWatch Logs retention period; "
        f"use one of {list(LOG_RETENTION_DAYS)}"
    )


def referenced_files(config: Config) -> Iterator[tuple[str, str]]:
    """(field, path) of every local file the configuration names; the functions need each of them in
    their package, at the same path relative to the working directory."""
    for name, app in config.apps.items():
        if app.signature == "none":
            continue
        if app.signature.key is not None and app.signature.key.public_key_file:
            yield f"apps.{name}.signature.key.public_key_file", app.signature.key.public_key_file
        if app.signature.keyless is not None and app.signature.keyless.trusted_root:
            yield f"apps.{name}.signature.keyless.trusted_root", app.signature.keyless.trusted_root
    if config.argocd is not None and config.argocd.ca_bundle:
        yield "argocd.ca_bundle", config.argocd.ca_bundle


def check_packageable(field_name: str, value: str, files_root: Path) -> str | None:
    """Why a file named by the configuration cannot be packaged with the functions, or None."""
    if Path(value).is_absolute() or ".." in Path(value).parts:
        return f"{field_name}: {value!r} cannot be packaged for Lambda; give a path relative to the working directory"
    if not (files_root / value).is_file():
        return f"{field_name}: {files_root / value} does not exist, so it cannot be packaged for Lambda"
    return None


def check_deployment(config: Config, files_root: Path | None = None) -> DeploymentReport:
    """Every deploy-time check of ``config``; ``files_root`` is where relative file paths start (the
    directory `cdk` runs in; the current directory by default)."""
    root = files_root if files_root is not None else Path.cwd()
    report = DeploymentReport()
    if problem := check_log_retention(config.deploy.log_retention_days):
        report.errors.append(problem)
    for name, app in config.apps.items():
        location = app.ecr_registry
        if location is None:
            report.errors.append(
                f"apps.{name}.registry: {app.registry!r} is not an Amazon ECR registry "
                "(<account>.dkr.ecr.<region>.amazonaws.com); the AWS stack needs ECR push events"
            )
            continue
        for what, theirs, ours in zip(
            ("account", "region"), location, (config.deploy.account, config.deploy.region), strict=True
        ):
            if ours is not None and theirs != ours:
                report.warnings.append(
                    f"apps.{name}.registry is in {what} {theirs} but deploy.{what} is {ours}: ECR sends push "
                    "events to its own account and region only, so they will not reach this stack"
                )
    argocd = config.argocd
    nudging = argocd is not None and argocd.refresh_after_commit
    if nudging and config.deploy.tracker_vpc is not None and config.deploy.promoter_vpc is None:
        report.warnings.append(
            "deploy.tracker_vpc is set (Argo CD is reached from a VPC) but deploy.promoter_vpc is not: the "
            "promoter's refresh nudge (argocd.refresh_after_commit) runs outside the VPC and will fail (each "
            "failure is logged and counted as RefreshNudgeFailures). Set deploy.promoter_vpc, or "
            "argocd.refresh_after_commit: false to rely on Argo CD's own polling"
        )
    for field_name, value in referenced_files(config):
        if problem := check_packageable(field_name, value, root):
            report.errors.append(problem)
    return report
