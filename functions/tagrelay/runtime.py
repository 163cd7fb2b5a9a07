"""The composition root: builds the services from the configuration with the real adapters, once per process.

Handlers and CLI commands call these functions; nothing is created at import time, so importing a
handler stays cheap (cold start) and an ignored event never opens a client.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING

from tagrelay.config import App, Config, load_config

if TYPE_CHECKING:
    from collections.abc import Callable

    from github.Auth import Auth

    from tagrelay.adapters.argocd import ArgoCDClient
    from tagrelay.adapters.ecr import EcrControlPlane
    from tagrelay.adapters.github import GitHub
    from tagrelay.adapters.registry import Registry
    from tagrelay.adapters.signatures import SignatureVerifier
    from tagrelay.config import ArgoCDConfig
    from tagrelay.ports import ArgoCD, PromoterFunction
    from tagrelay.services.operate import Operator
    from tagrelay.services.promote import Promoter
    from tagrelay.services.reconcile import Reconciler
    from tagrelay.services.track import Tracker


@cache
def config() -> Config:
    """The configuration named by $TAGRELAY_CONFIG (bundled with the Lambda as tagrelay.yaml)."""
    return load_config()


def build_promoter(
    cfg: Config, *, dry_run: bool = False, github_credentials: Callable[[], Auth] | None = None
) -> Promoter:
    """The promoter with the real adapters. ``github_credentials`` replaces the configured (write)
    credential: `tagrelay explain` evaluates with a read-only one."""
    from tagrelay.adapters.github import GitHub, credentials_from_secrets
    from tagrelay.adapters.registry import registry_for
    from tagrelay.adapters.secrets import read_secret
    from tagrelay.adapters.signatures import verifier_for
    from tagrelay.adapters.store import Ledger
    from tagrelay.services.promote import Promoter, PromoterDependencies

    registries: dict[str, Registry] = {}
    verifiers: dict[str, SignatureVerifier] = {}
    control_planes: dict[tuple[str, str], EcrControlPlane] = {}

    from tagrelay.adapters.registry import RegistryLimits

    limits = RegistryLimits(
        connect_timeout=cfg.limits.http_connect_timeout_seconds,
        deadline=cfg.limits.http_deadline_seconds,
        manifest_max_bytes=cfg.limits.manifest_max_bytes,
        error_body_max_bytes=cfg.limits.error_body_max_bytes,
    )

    def registry(app: App) -> Registry:
        # Keyed by registry URL: apps on the same registry share one client and one ECR token.
        if app.registry_url not in registries:
            registries[app.registry_url] = registry_for(app, limits=limits)
        return registries[app.registry_url]

    def verifier(app: App) -> SignatureVerifier:
        key = app.model_dump_json(include={"signature"})
        if key not in verifiers:
            verifiers[key] = verifier_for(app, limits=cfg.limits)
        return verifiers[key]

    def ecr(app: App) -> EcrControlPlane | None:
        from tagrelay.adapters.ecr import EcrControlPlane

        # One per registry (account, region): its mutability cache serves every app on it.
        registry_id = app.ecr_registry
        if registry_id is None:
            return None
        if registry_id not in control_planes:
            control_planes[registry_id] = EcrControlPlane(
                *registry_id, cache_seconds=cfg.limits.tag_mutability_cache_seconds
            )
        return control_planes[registry_id]

    first_gitops_repo = next(iter(cfg.apps.values())).gitops.repo
    deps = PromoterDependencies(
        config=cfg,
        ledger=Ledger(cfg.ledger.table, ttl_days=cfg.ledger.decision_ttl_days),
        github=GitHub(
            cfg.github,
            github_credentials
            or credentials_from_secrets(cfg.github, read_secret, installation_repo=first_gitops_repo),
        ),
        registry_for=registry,
        verifier_for=verifier,
        ecr_for=ecr,
        refresh_environment=refresh_nudge(cfg),
    )
    return Promoter(deps, dry_run=dry_run)


@cache
def promoter() -> Promoter:
    """The Lambda's promoter: built on the first accepted event, reused while the container is warm."""
    return build_promoter(config())


# --- the tracker, and the promoter's Argo CD refresh nudge ---

# The nudge runs inside a promotion: it may cost at most this long when Argo CD does not answer.
NUDGE_CONNECT_TIMEOUT_SECONDS = 1.0
NUDGE_READ_TIMEOUT_SECONDS = 1.0


def argocd_client(argocd: ArgoCDConfig, **overrides: float) -> ArgoCDClient:
    """A client with the token from Secrets Manager (cached by Powertools, so rotation is picked up)."""
    from tagrelay.adapters.argocd import ArgoCDClient
    from tagrelay.adapters.secrets import read_secret
    from tagrelay.errors import MisconfiguredError

    if not argocd.token_secret:
        raise MisconfiguredError("argocd", "argocd.token_secret is not set; the API needs a bearer token")
    return ArgoCDClient.from_config(argocd, read_secret(argocd.token_secret), **overrides)


def refresh_nudge(cfg: Config, *, client: Callable[[], ArgoCD] | None = None) -> Callable[[str, str], None] | None:
    """``(app, env) -> None``: ask Argo CD to refresh the environment's application right after a
    commit, so it syncs in seconds instead of at its next poll. None when not configured.

    Never raises and never waits long: a failed nudge only means Argo CD notices at its next poll. It is
    never silent either: each failure is a WARNING log line (which app, why) and a RefreshNudgeFailures
    metric, so an Argo CD the promoter cannot reach (an in-VPC one: deploy.promoter_vpc) shows.
    ``client`` makes the Argo CD client (by default one with the nudge's short timeouts).
    """
    argocd = cfg.argocd
    if argocd is None or not argocd.refresh_after_commit:
        return None

    def nudge_client() -> ArgoCD:
        assert argocd is not None
        return argocd_client(
            argocd,
            connect_timeout=NUDGE_CONNECT_TIMEOUT_SECONDS,
            refresh_timeout=NUDGE_READ_TIMEOUT_SECONDS,
            max_response_bytes=cfg.limits.argocd_response_max_bytes,
        )

    def nudge(app_name: str, env: str) -> None:
        environment = cfg.apps[app_name].environments.get(env)
        if environment is None or not environment.argocd_app:
            return
        try:
            with (client or nudge_client)() as argocd_api:
                # False: refused or unreachable (the client logs the HTTP status or the error's type).
                if not argocd_api.refresh(environment.argocd_app, environment.argocd_project):
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


def build_tracker(cfg: Config) -> Tracker:
    from tagrelay.adapters.store import Ledger
    from tagrelay.services.track import Tracker, TrackerDependencies

    def argocd() -> ArgoCDClient:
        assert cfg.argocd is not None  # Tracker.run() asks only when Argo CD is configured
        return argocd_client(cfg.argocd, max_response_bytes=cfg.limits.argocd_response_max_bytes)

    def github() -> GitHub:
        # Only to ask whether a later revision contains our commit (compare: read-only); the
        # credentials are those of the promoter, read from Secrets Manager on the first request.
        from tagrelay.adapters.github import GitHub, credentials_from_secrets
        from tagrelay.adapters.secrets import read_secret

        first_gitops_repo = next(iter(cfg.apps.values())).gitops.repo
        return GitHub(
            cfg.github, credentials_from_secrets(cfg.github, read_secret, installation_repo=first_gitops_repo)
        )

    deps = TrackerDependencies(
        config=cfg,
        ledger=Ledger(cfg.ledger.table, ttl_days=cfg.ledger.decision_ttl_days),
        argocd=argocd,
        github=github,
    )
    return Tracker(deps)


@cache
def tracker() -> Tracker:
    """The Lambda's tracker: built on the first run, reused while the container is warm."""
    return build_tracker(config())


# --- operator requests (tagrelay deploy / rollback / pin / unpin), served by the promoter function ---


def build_operator(cfg: Config, promoter: Promoter) -> Operator:
    import os

    from tagrelay.adapters.identity import StsIdentityVerifier, default_sts_endpoint
    from tagrelay.services.operate import Operator, OperatorDependencies

    # The function's own region: the CLI signs its identity proof for the same regional endpoint.
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
    ledger = promoter.deps.ledger
    verifier = StsIdentityVerifier(
        cfg.operators.sts_endpoint or default_sts_endpoint(region),
        # Single-use proofs: each nonce is recorded once (a conditional put), with a TTL.
        use_nonce=lambda nonce, expires_at: ledger.use_nonce(nonce, expires_at=expires_at),
    )
    deps = OperatorDependencies(
        config=cfg,
        ledger=promoter.deps.ledger,
        promoter=promoter,
        verify_identity=lambda proof, binding: verifier.verify(proof, binding=binding),
    )
    return Operator(deps)


@cache
def operator() -> Operator:
    """The Lambda's operator service: shares the warm promoter (its clients, its clock)."""
    return build_operator(config(), promoter())


# --- the reconcile sweep (its own function, on a schedule) ---


def build_reconciler(cfg: Config, promoter: Promoter) -> Reconciler:
    from tagrelay.services.reconcile import Reconciler, ReconcilerDependencies

    return Reconciler(ReconcilerDependencies(config=cfg, promoter=promoter))


@cache
def reconciler() -> Reconciler:
    """The Lambda's sweep: it promotes, heals and records with a promoter of its own process."""
    return build_reconciler(config(), promoter())


# --- the `tagrelay` operator commands' side: the promoter function they invoke ---


def promoter_function(
    cfg: Config, *, function: str | None = None, endpoint: str | None = None, how_to_point: str = ""
) -> PromoterFunction:
    """The deployed promoter function (``<deploy.stack_name>-promoter`` unless ``function`` names another),
    invoked with AWS Lambda's API, or at ``endpoint`` (the local stack's Lambda API)."""
    from tagrelay.adapters.promoter_function import LambdaPromoterFunction

    return LambdaPromoterFunction(cfg, function=function, endpoint=endpoint, how_to_point=how_to_point)
