"""The composition root: builds the services from the configuration with the real adapters, once per process.

Handlers and CLI commands call these functions; nothing is created at import time, so importing a
handler stays cheap (cold start) and an ignored event never opens a client.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING

from tagrelay.config import App, Config, load_config

if TYPE_CHECKING:
    from tagrelay.adapters.registry import Registry
    from tagrelay.adapters.signatures import SignatureVerifier
    from tagrelay.services.promote import Promoter


@cache
def config() -> Config:
    """The configuration named by $TAGRELAY_CONFIG (bundled with the Lambda as tagrelay.yaml)."""
    return load_config()


def build_promoter(cfg: Config, *, dry_run: bool = False) -> Promoter:
    from tagrelay.adapters.github import GitHub, credentials_from_secrets
    from tagrelay.adapters.registry import registry_for
    from tagrelay.adapters.secrets import read_secret
    from tagrelay.adapters.signatures import verifier_for
    from tagrelay.adapters.store import Ledger
    from tagrelay.services.promote import Promoter, PromoterDependencies

    registries: dict[str, Registry] = {}
    verifiers: dict[str, SignatureVerifier] = {}

    def registry(app: App) -> Registry:
        # Keyed by registry URL: apps on the same registry share one client and one ECR token.
        return registries.setdefault(app.registry_url, registry_for(app))

    def verifier(app: App) -> SignatureVerifier:
        key = app.model_dump_json(include={"signature"})
        return verifiers.setdefault(key, verifier_for(app))

    first_gitops_repo = next(iter(cfg.apps.values())).gitops.repo
    deps = PromoterDependencies(
        config=cfg,
        ledger=Ledger(cfg.ledger.table, ttl_days=cfg.ledger.decision_ttl_days),
        github=GitHub(
            cfg.github, credentials_from_secrets(cfg.github, read_secret, installation_repo=first_gitops_repo)
        ),
        registry_for=registry,
        verifier_for=verifier,
    )
    return Promoter(deps, dry_run=dry_run)


@cache
def promoter() -> Promoter:
    """The Lambda's promoter: built on the first accepted event, reused while the container is warm."""
    return build_promoter(config())
