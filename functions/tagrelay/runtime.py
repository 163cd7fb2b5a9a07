"""The composition root: the only place that chooses what implements each port (tagrelay/ports.py).

Handlers and CLI commands get their services and clients here, built from the configuration. What
implements each port is one ``Adapters`` value: ``REAL_ADAPTERS`` (the adapters: boto3, PyGithub,
requests) unless another is installed with ``use_adapters`` (the tests' in-memory fakes,
tests/fakes/world.py). Nothing is created at import time, so importing a handler stays cheap (cold
start) and an ignored event never opens a client.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import TYPE_CHECKING, Any

from tagrelay.config import App, Config, load_config

if TYPE_CHECKING:
    from pathlib import Path

    from github.Auth import Auth

    from tagrelay.adapters.github import GitHub
    from tagrelay.adapters.signatures.trust import TrustedRoot
    from tagrelay.adapters.signatures.trust_refresh import RefreshResult
    from tagrelay.config import ArgoCDConfig
    from tagrelay.domain.deployment_events import DeploymentEvent
    from tagrelay.ports import (
        ArgoCD,
        DeploymentLedger,
        DeploymentRecords,
        GitHost,
        IdentityVerifier,
        ImageRegistry,
        PromoterFunction,
        PullRequestHost,
        RegistryControlPlane,
        SignatureVerifier,
    )
    from tagrelay.services.operate import Operator
    from tagrelay.services.promote import Promoter
    from tagrelay.services.reconcile import Reconciler
    from tagrelay.services.track import Tracker


# --------------------------------------------------------------------------------------------------
# What implements each port.


def _now() -> datetime:
    return datetime.now(UTC)


def _none(_github: GitHost) -> None:
    return None


@dataclass(frozen=True)
class Adapters:
    """Factories of each port's implementation, for one configuration (and one app where it matters)."""

    ledger: Callable[[Config], DeploymentLedger]
    # ``credentials`` None: the configured (write) credential of github.auth; the read commands pass theirs.
    github: Callable[[Config, Callable[[], Auth] | None], GitHost]
    registry: Callable[[Config, App], ImageRegistry]
    verifier: Callable[[Config, App], SignatureVerifier]
    # None when the app's registry is not ECR (nothing to ask about tag mutability).
    ecr: Callable[[Config, App], RegistryControlPlane | None]
    # ``token``: the API token (None: the secret argocd.token_secret); ``overrides``: the client's timeouts
    # and caps (the refresh nudge's are short).
    argocd: Callable[[Config, str | None, Mapping[str, float]], ArgoCD]
    identity: Callable[[Config, DeploymentLedger], IdentityVerifier]
    # (config, function name, endpoint, advice when not found)
    promoter_function: Callable[[Config, str | None, str | None, str], PromoterFunction]
    # A Secrets Manager secret's value, by name or ARN (the read commands' GitHub token).
    secret: Callable[[str], str]
    clock: Callable[[], datetime] = _now
    sleep: Callable[[float], None] = time.sleep
    # GitHub's pull requests (gitops.write: pull_request) and Deployments (notifications), served by the
    # client ``github`` made (the same one: one credential, one request count); None where it has none.
    pull_requests: Callable[[GitHost], PullRequestHost | None] = _none
    deployments: Callable[[GitHost], DeploymentRecords | None] = _none
    # One webhook POST (url, JSON document): raises unless it is accepted. None: no webhook can be sent.
    post_webhook: Callable[[str, dict[str, Any]], None] | None = None


def _real_ledger(cfg: Config) -> DeploymentLedger:
    from tagrelay.adapters.store import Ledger

    return Ledger(cfg.ledger.table, ttl_days=cfg.ledger.decision_ttl_days)


def _real_github(cfg: Config, credentials: Callable[[], Auth] | None) -> GitHost:
    from tagrelay.adapters.github import GitHub, credentials_from_secrets
    from tagrelay.adapters.secrets import read_secret

    if credentials is None:
        first_gitops_repo = next(iter(cfg.apps.values())).gitops.repo
        credentials = credentials_from_secrets(cfg.github, read_secret, installation_repo=first_gitops_repo)
    return GitHub(cfg.github, credentials)


def _real_github_api(github: GitHost) -> GitHub | None:
    from tagrelay.adapters.github import GitHub

    return github if isinstance(github, GitHub) else None


def _real_post_webhook(url: str, document: dict[str, Any]) -> None:
    from tagrelay.adapters.webhook import post_json

    post_json(url, document)


def _real_registry(cfg: Config, app: App) -> ImageRegistry:
    from tagrelay.adapters.registry import RegistryLimits, registry_for

    limits = RegistryLimits(
        connect_timeout=cfg.limits.http_connect_timeout_seconds,
        deadline=cfg.limits.http_deadline_seconds,
        manifest_max_bytes=cfg.limits.manifest_max_bytes,
        error_body_max_bytes=cfg.limits.error_body_max_bytes,
    )
    return registry_for(app, limits=limits)


def _real_verifier(cfg: Config, app: App) -> SignatureVerifier:
    from tagrelay.adapters.signatures import verifier_for

    return verifier_for(app, limits=cfg.limits)


def _real_ecr(cfg: Config, app: App) -> RegistryControlPlane | None:
    from tagrelay.adapters.ecr import EcrControlPlane

    registry_id = app.ecr_registry
    if registry_id is None:
        return None
    return EcrControlPlane(*registry_id, cache_seconds=cfg.limits.tag_mutability_cache_seconds)


def _real_argocd(cfg: Config, token: str | None, overrides: Mapping[str, float]) -> ArgoCD:
    """A client with ``token``, or the one from Secrets Manager (cached by Powertools: rotation is picked up)."""
    from tagrelay.adapters.argocd import ArgoCDClient
    from tagrelay.adapters.secrets import read_secret
    from tagrelay.errors import MisconfiguredError

    argocd = _argocd_config(cfg)
    if token is None:
        if not argocd.token_secret:
            raise MisconfiguredError("argocd", "argocd.token_secret is not set; the API needs a bearer token")
        token = read_secret(argocd.token_secret)
    return ArgoCDClient.from_config(argocd, token, **overrides)


def _real_identity(cfg: Config, ledger: DeploymentLedger) -> IdentityVerifier:
    import os

    from tagrelay.adapters.identity import StsIdentityVerifier, default_sts_endpoint

    # The function's own region: the CLI signs its identity proof for the same regional endpoint.
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
    return StsIdentityVerifier(
        cfg.operators.sts_endpoint or default_sts_endpoint(region),
        # Single-use proofs: each nonce is recorded once (a conditional put), with a TTL.
        use_nonce=lambda nonce, expires_at: ledger.use_nonce(nonce, expires_at=expires_at),
    )


def _real_promoter_function(
    cfg: Config, function: str | None, endpoint: str | None, how_to_point: str
) -> PromoterFunction:
    from tagrelay.adapters.promoter_function import LambdaPromoterFunction

    return LambdaPromoterFunction(cfg, function=function, endpoint=endpoint, how_to_point=how_to_point)


def _real_secret(name_or_arn: str) -> str:
    from tagrelay.adapters.secrets import read_secret

    return read_secret(name_or_arn)


REAL_ADAPTERS = Adapters(
    ledger=_real_ledger,
    github=_real_github,
    registry=_real_registry,
    verifier=_real_verifier,
    ecr=_real_ecr,
    argocd=_real_argocd,
    identity=_real_identity,
    promoter_function=_real_promoter_function,
    secret=_real_secret,
    pull_requests=_real_github_api,
    deployments=_real_github_api,
    post_webhook=_real_post_webhook,
)
_adapters: Adapters = REAL_ADAPTERS


@contextmanager
def use_adapters(adapters: Adapters) -> Iterator[Adapters]:
    """Build everything with ``adapters`` while inside (the services built before are forgotten)."""
    global _adapters  # noqa: PLW0603 - the one switch of the composition root
    previous, _adapters = _adapters, adapters
    clear_caches()
    try:
        yield adapters
    finally:
        _adapters = previous
        clear_caches()


def adapters() -> Adapters:
    return _adapters


def clear_caches() -> None:
    """Forget the configuration and the services built from it (a new configuration, new adapters)."""
    for cached in (config, promoter, tracker, operator, reconciler):
        cached.cache_clear()


@cache
def config() -> Config:
    """The configuration named by $TAGRELAY_CONFIG (bundled with the Lambda as tagrelay.yaml)."""
    return load_config()


# --------------------------------------------------------------------------------------------------
# What the CLI reads with.


def ledger(cfg: Config) -> DeploymentLedger:
    """The configuration's ledger table (the CLI reads it with the caller's AWS credentials)."""
    return _adapters.ledger(cfg)


def github(cfg: Config, credentials: Callable[[], Auth] | None = None) -> GitHost:
    """GitHub with ``credentials`` (the read commands' read-only one), or the configured write credential."""
    return _adapters.github(cfg, credentials)


def secret(name_or_arn: str) -> str:
    return _adapters.secret(name_or_arn)


def registry(cfg: Config, app: App) -> ImageRegistry:
    return _adapters.registry(cfg, app)


def verifier(cfg: Config, app: App) -> SignatureVerifier:
    return _adapters.verifier(cfg, app)


def argocd_client(cfg: Config, *, token: str | None = None, **overrides: float) -> ArgoCD:
    """An Argo CD client within the configuration's response cap; ``token`` (default: the secret
    argocd.token_secret); ``overrides``: timeouts."""
    return _argocd_client(_adapters, cfg, token, **overrides)


def _argocd_client(wiring: Adapters, cfg: Config, token: str | None = None, **overrides: float) -> ArgoCD:
    return wiring.argocd(cfg, token, {"max_response_bytes": cfg.limits.argocd_response_max_bytes, **overrides})


def promoter_function(
    cfg: Config, *, function: str | None = None, endpoint: str | None = None, how_to_point: str = ""
) -> PromoterFunction:
    """The deployed promoter function (``<deploy.stack_name>-promoter`` unless ``function`` names another),
    invoked with AWS Lambda's API, or at ``endpoint`` (the local stack's Lambda API)."""
    return _adapters.promoter_function(cfg, function, endpoint, how_to_point)


def _argocd_config(cfg: Config) -> ArgoCDConfig:
    if cfg.argocd is None:  # callers ask only when Argo CD is configured
        raise ValueError("Argo CD is not configured (no argocd: section)")
    return cfg.argocd


# --------------------------------------------------------------------------------------------------
# The promoter, and its Argo CD refresh nudge.


def build_promoter(
    cfg: Config,
    *,
    dry_run: bool = False,
    github_credentials: Callable[[], Auth] | None = None,
    adapters: Adapters | None = None,
) -> Promoter:
    """The promoter. ``github_credentials`` replaces the configured (write) credential: `tagrelay
    explain` evaluates with a read-only one. ``adapters``: instead of the installed ones."""
    from tagrelay.services.promote import Promoter, PromoterDependencies

    wiring = adapters or _adapters
    # Per process: apps on one registry share a client (and an ECR token), apps with one signature policy
    # a verifier, apps on one ECR registry its control plane (and its mutability cache).
    registries: dict[str, ImageRegistry] = {}
    verifiers: dict[str, SignatureVerifier] = {}
    control_planes: dict[tuple[str, str], RegistryControlPlane | None] = {}

    def registry_for(app: App) -> ImageRegistry:
        if app.registry_url not in registries:
            registries[app.registry_url] = wiring.registry(cfg, app)
        return registries[app.registry_url]

    def verifier_for(app: App) -> SignatureVerifier:
        key = app.model_dump_json(include={"signature"})
        if key not in verifiers:
            verifiers[key] = wiring.verifier(cfg, app)
        return verifiers[key]

    def ecr_for(app: App) -> RegistryControlPlane | None:
        registry_id = app.ecr_registry
        if registry_id is None:
            return None
        if registry_id not in control_planes:
            control_planes[registry_id] = wiring.ecr(cfg, app)
        return control_planes[registry_id]

    github = wiring.github(cfg, github_credentials)
    deps = PromoterDependencies(
        config=cfg,
        ledger=wiring.ledger(cfg),
        github=github,
        pull_requests=wiring.pull_requests(github),
        registry_for=registry_for,
        verifier_for=verifier_for,
        ecr_for=ecr_for,
        clock=wiring.clock,
        sleep=wiring.sleep,
        refresh_environment=refresh_nudge(cfg, wiring),
    )
    if not dry_run:
        deps.publish = build_notifier(cfg, "promoter", wiring, lambda: github)
    return Promoter(deps, dry_run=dry_run)


def build_notifier(
    cfg: Config, service: str, wiring: Adapters, github: Callable[[], GitHost]
) -> Callable[[DeploymentEvent], None] | None:
    """The subscribers of deployment events the configuration turns on (services/notify.py); None if none.
    Nothing is read or opened here: a webhook's secret is read on its first message."""
    if not cfg.notifications.enabled:
        return None
    from tagrelay.domain.deployment_events import Subscriber
    from tagrelay.errors import MisconfiguredError
    from tagrelay.services.notify import GitHubDeployments, Notifier, Webhook

    subscribers: list[Subscriber] = []
    if cfg.notifications.github_deployments:
        deployments = wiring.deployments(github())
        if deployments is None:
            raise MisconfiguredError(
                "github", "notifications.github_deployments: this GitHub client has no Deployments"
            )
        subscribers.append(GitHubDeployments(deployments))

    def secret_url(name: str) -> Callable[[], str]:
        return lambda: wiring.secret(name).strip()

    if cfg.notifications.webhooks:
        post = wiring.post_webhook
        if post is None:
            raise MisconfiguredError("webhook", "notifications.webhooks: these adapters cannot send a webhook")
        for webhook in cfg.notifications.webhooks:
            subscribers.append(Webhook(webhook.name, secret_url(webhook.url_secret), webhook.format, post))
    return Notifier(subscribers, service=service, attempts=cfg.notifications.attempts, sleep=wiring.sleep).publish


@cache
def promoter() -> Promoter:
    """The Lambda's promoter: built on the first accepted event, reused while the container is warm."""
    return build_promoter(config())


# The nudge runs inside a promotion: it may cost at most this long when Argo CD does not answer.
NUDGE_CONNECT_TIMEOUT_SECONDS = 1.0
NUDGE_READ_TIMEOUT_SECONDS = 1.0


def refresh_nudge(cfg: Config, wiring: Adapters | None = None) -> Callable[[str, str], None] | None:
    """``(app, env) -> None``: ask Argo CD to refresh the environment's application right after a
    commit, so it syncs in seconds instead of at its next poll. None when not configured.

    Never raises and never waits long: a failed nudge only means Argo CD notices at its next poll. It is
    never silent either: each failure is a WARNING log line (which app, why) and a RefreshNudgeFailures
    metric, so an Argo CD the promoter cannot reach (an in-VPC one: deploy.promoter_vpc) shows.
    """
    argocd = cfg.argocd
    if argocd is None or not argocd.refresh_after_commit:
        return None
    adapters = wiring or _adapters

    def nudge(app_name: str, env: str) -> None:
        environment = cfg.apps[app_name].environments.get(env)
        if environment is None or not environment.argocd_app:
            return
        try:
            client = _argocd_client(
                adapters, cfg, connect_timeout=NUDGE_CONNECT_TIMEOUT_SECONDS, refresh_timeout=NUDGE_READ_TIMEOUT_SECONDS
            )
            with client:
                # False: refused or unreachable (the client logs the HTTP status or the error's type).
                if not client.refresh(environment.argocd_app, environment.argocd_project):
                    _nudge_failed(env, environment.argocd_app, argocd.url, "refused or unreachable")
        except Exception as error:  # the token's secret, most likely: the promotion goes on regardless
            _nudge_failed(env, environment.argocd_app, argocd.url, f"{type(error).__name__}: {str(error)[:300]}")

    return nudge


def _nudge_failed(env: str, argocd_app: str, argocd_url: str, why: str) -> None:
    import logging

    from tagrelay.services.observe import emit_nudge_failure

    logging.getLogger(__name__).warning(
        "Argo CD refresh nudge failed; Argo CD will notice the commit at its next poll",
        extra={"env": env, "argocd_app": argocd_app, "argocd_url": argocd_url, "why": why},
    )
    emit_nudge_failure()


# --------------------------------------------------------------------------------------------------
# The tracker.


def build_tracker(cfg: Config, *, adapters: Adapters | None = None) -> Tracker:
    from tagrelay.services.track import Tracker, TrackerDependencies

    wiring = adapters or _adapters
    deps = TrackerDependencies(
        config=cfg,
        ledger=wiring.ledger(cfg),
        # A client per run (Tracker.run asks only when Argo CD is configured and something is in flight).
        argocd=lambda: _argocd_client(wiring, cfg),
        clock=wiring.clock,
        # Only to ask whether a later revision contains our commit (compare: read-only); the credentials
        # are those of the promoter, read from Secrets Manager on the first request.
        github=lambda: wiring.github(cfg, None),
        publish=build_notifier(cfg, "tracker", wiring, lambda: wiring.github(cfg, None)),
    )
    return Tracker(deps)


@cache
def tracker() -> Tracker:
    """The Lambda's tracker: built on the first run, reused while the container is warm."""
    return build_tracker(config())


# --------------------------------------------------------------------------------------------------
# Operator requests (tagrelay deploy / rollback / pin / unpin), served by the promoter function.


def build_operator(cfg: Config, promoter: Promoter, *, adapters: Adapters | None = None) -> Operator:
    from tagrelay.services.operate import Operator, OperatorDependencies

    ledger = promoter.deps.ledger
    identity = (adapters or _adapters).identity(cfg, ledger)
    deps = OperatorDependencies(
        config=cfg,
        ledger=ledger,
        promoter=promoter,
        verify_identity=lambda proof, binding: identity.verify(proof, binding=binding),
    )
    return Operator(deps)


@cache
def operator() -> Operator:
    """The Lambda's operator service: shares the warm promoter (its clients, its clock)."""
    return build_operator(config(), promoter())


# --------------------------------------------------------------------------------------------------
# The reconcile sweep (its own function, on a schedule).


def build_reconciler(cfg: Config, promoter: Promoter) -> Reconciler:
    from tagrelay.services.reconcile import Reconciler, ReconcilerDependencies

    return Reconciler(ReconcilerDependencies(config=cfg, promoter=promoter))


@cache
def reconciler() -> Reconciler:
    """The Lambda's sweep: it promotes, heals and records with a promoter of its own process."""
    return build_reconciler(config(), promoter())


# --------------------------------------------------------------------------------------------------
# The Sigstore trusted root (`tagrelay trust-root`): the pinned public-good copy, and its TUF refresh.


def public_good_trust() -> tuple[Path, str]:
    """(the pinned public-good trusted_root.json, the public-good TUF repository's URL)."""
    from tagrelay.adapters.signatures.trust import PUBLIC_GOOD_TRUSTED_ROOT, PUBLIC_GOOD_TUF_URL

    return PUBLIC_GOOD_TRUSTED_ROOT, PUBLIC_GOOD_TUF_URL


def read_trusted_root(path: Path) -> TrustedRoot:
    """A trusted_root.json, parsed and checked. Raises OSError, or MisconfiguredError for bad content."""
    from tagrelay.adapters.signatures.trust import parse_trusted_root

    return parse_trusted_root(path.read_bytes(), source=str(path), path=path)


def refresh_trusted_root(*, tuf_url: str, directory: Path, bootstrap_root: Path | None) -> RefreshResult:
    """Update ``directory``'s trusted_root.json through TUF. Raises RefreshError, MisconfiguredError."""
    from tagrelay.adapters.signatures.trust_refresh import refresh_trusted_root as refresh

    return refresh(tuf_url=tuf_url, directory=directory, bootstrap_root=bootstrap_root)
