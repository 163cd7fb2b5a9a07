"""FakeWorld: the seed system (devstack/scenario.py) on the fakes, and the services wired to them.

What ``SeedScenario`` builds on the local stack, built in memory: the source repository with ``main``
and ``develop``, the GitOps repository with the seed's values files, the images' ECR repositories
(release tags immutable), and releases pushed and signed like CI does, returning the same ECR events.
Images and cosign signatures are made by devstack.images, so the real signature verifier checks them
(``signatures="real"``, the default); ``signatures="fake"`` uses FakeSignatures instead.

The services are built from the same configuration (the example, pointed at the world's names) with
the fakes in place of the adapters, as runtime.py builds them with the adapters. One clock drives the
world: commit times, event times and the services' ``now``.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from ruamel.yaml import YAML

from devstack.events import ecr_push_event
from devstack.images import CosignKeySigner, push_image, sign_image, tag_image
from devstack.scenario import BRANCH_OF_ENV, GITOPS_REPO, IMAGES, RELEASE_EXCLUSIONS, SEED_VALUES, SOURCE_REPO, Release
from devstack.stack import EXAMPLE_CONFIG
from tagrelay.config import App, Config, parse_config
from tagrelay.domain.operator import OPERATION_KEY, request_binding
from tagrelay.domain.tags import signature_tag
from tagrelay.errors import TransientError
from tagrelay.ports import SignatureVerifier
from tagrelay.runtime import Adapters
from tagrelay.services.operate import Operator
from tagrelay.services.promote import Promoter
from tagrelay.services.reconcile import Reconciler
from tagrelay.services.track import Tracker
from tests.fakes.argocd import FakeArgoCD
from tests.fakes.ecr import FakeEcr
from tests.fakes.github import FakeGitHub
from tests.fakes.identity import FakeIdentity
from tests.fakes.ledger import FakeLedger
from tests.fakes.registry import FakeRegistry
from tests.fakes.signatures import FakeSignatures
from tests.fakes.webhooks import FakeWebhooks

OPERATOR_ARN = "arn:aws:sts::033691785857:assumed-role/oncall/alice"


@dataclass
class Clock:
    """The world's time: moves only when told to (``tick``), so every figure is exact."""

    now_: datetime = field(default_factory=lambda: datetime(2025, 6, 2, 9, 0, tzinfo=UTC))

    def __call__(self) -> datetime:
        return self.now_

    def tick(self, seconds: float = 1) -> datetime:
        self.now_ += timedelta(seconds=seconds)
        return self.now_


@dataclass
class FakeWorld:
    clock: Clock
    github: FakeGitHub
    registry: FakeRegistry
    ecr: FakeEcr
    ledger: FakeLedger
    argocd: FakeArgoCD
    identity: FakeIdentity
    signer: CosignKeySigner
    signatures: FakeSignatures | None = None  # None: the real verifier, on the registry's signatures
    webhooks: FakeWebhooks = field(default_factory=FakeWebhooks)
    source_repo: str = SOURCE_REPO
    gitops_repo: str = GITOPS_REPO
    images: tuple[str, ...] = IMAGES
    sleeps: list[float] = field(default_factory=list)
    _counter: itertools.count[int] = field(default_factory=itertools.count)

    @classmethod
    def create(cls, *, signatures: Literal["real", "fake"] = "real", referrers_api: bool = False) -> FakeWorld:
        clock = Clock()
        ledger = FakeLedger()
        world = cls(
            clock=clock,
            github=FakeGitHub(clock=clock),
            registry=FakeRegistry(referrers_api=referrers_api),
            ecr=FakeEcr(),
            ledger=ledger,
            argocd=FakeArgoCD(),
            identity=FakeIdentity(use_nonce=lambda nonce, at: ledger.use_nonce(nonce, expires_at=at), clock=clock),
            signer=CosignKeySigner.generate(),
            signatures=FakeSignatures() if signatures == "fake" else None,
        )
        world.github.commit(world.source_repo, "main", {"README.md": "# mosaic-life\n"}, "chore: initial commit")
        world.github.create_branch(world.source_repo, "develop", "main")
        world.github.commit(
            world.gitops_repo,
            "main",
            {path: source.read_bytes() for path, source in SEED_VALUES.items()},
            "chore: seed values files",
        )
        for image in world.images:
            world.ecr.set_mutability(image, "IMMUTABLE_WITH_EXCLUSION", RELEASE_EXCLUSIONS)
        world.identity.known(OPERATOR_ARN)
        return world

    # --- the configuration ---

    def config_data(self, *, extra: Mapping[str, Any] | None = None, **app_overrides: Any) -> dict[str, Any]:
        """The example configuration, for this world's repositories and images (as SeedScenario.write_config)."""
        data: dict[str, Any] = YAML(typ="safe", pure=True).load(EXAMPLE_CONFIG.read_text())
        [app] = data["apps"].values()
        app.update(
            source_repo=self.source_repo,
            images=list(self.images),
            signature={"key": {"public_key_pem": self.signer.public_key_pem}},
        )
        gitops = app_overrides.pop("gitops", {})
        app["gitops"].update(gitops)
        for env, settings in app_overrides.pop("environments", {}).items():
            app["environments"][env] = {**app["environments"].get(env, {}), **settings}
        app.update(app_overrides)
        data["argocd"]["refresh_after_commit"] = True
        data.update(extra or {})
        return data

    def config(self, *, extra: Mapping[str, Any] | None = None, **app_overrides: Any) -> Config:
        return parse_config(self.config_data(extra=extra, **app_overrides))

    # --- the services, wired to the fakes by runtime.py ---

    def adapters(self) -> Adapters:
        """The fakes as runtime.py's Adapters: what ``runtime.use_adapters`` installs for handler and CLI tests."""
        return Adapters(
            ledger=lambda cfg: self.ledger,
            github=lambda cfg, credentials: self.github,
            registry=lambda cfg, app: self.registry,
            verifier=self._verifier,
            ecr=lambda cfg, app: self.ecr if app.ecr_registry is not None else None,
            argocd=lambda cfg, token, overrides: self.argocd,
            identity=lambda cfg, ledger: self.identity,
            promoter_function=lambda cfg, function, endpoint, advice: FakePromoterFunction(self),
            secret=lambda name: f"fake-secret-of-{name}",
            clock=self.clock,
            sleep=self.sleeps.append,
            # FakeGitHub serves pull requests and Deployments too, as the GitHub adapter does.
            pull_requests=lambda github: self.github,
            deployments=lambda github: self.github,
            post_webhook=self.webhooks.post,
        )

    def _verifier(self, cfg: Config, app: App) -> SignatureVerifier:
        if self.signatures is not None:
            return self.signatures
        from tagrelay.adapters.signatures import verifier_for

        return verifier_for(app, limits=cfg.limits)

    def promoter(self, config: Config | None = None, *, dry_run: bool = False) -> Promoter:
        from tagrelay import runtime

        promoter = runtime.build_promoter(config or self.config(), dry_run=dry_run, adapters=self.adapters())
        promoter.deps.jitter = lambda: 0.5  # backoffs of exact length
        promoter.deps.monotonic = lambda: self.clock().timestamp()
        return promoter

    def tracker(self, config: Config | None = None) -> Tracker:
        from tagrelay import runtime

        return runtime.build_tracker(config or self.config(), adapters=self.adapters())

    def operator(self, config: Config | None = None, promoter: Promoter | None = None) -> Operator:
        from tagrelay import runtime

        cfg = config or self.config()
        return runtime.build_operator(cfg, promoter or self.promoter(cfg), adapters=self.adapters())

    def reconciler(self, config: Config | None = None) -> Reconciler:
        from tagrelay import runtime

        cfg = config or self.config()
        return runtime.build_reconciler(cfg, self.promoter(cfg))

    # --- what developers and CI do ---

    def commit(self, branch: str, message: str | None = None) -> str:
        """A new commit on the source repository's ``branch``; returns its full SHA."""
        number = next(self._counter)
        return self.github.commit(
            self.source_repo,
            branch,
            {f"src/change-{number}.txt": f"change {number} on {branch}\n"},
            message or f"feat: change {number}",
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
        release_tag = tag or sha[:7]
        release = Release(sha=sha, tag=release_tag, digests={})
        when = self.event_time()
        for image in images if images is not None else self.images:
            digest = push_image(self.registry, image, [release_tag], content=f"{image}@{sha}".encode())
            release.digests[image] = digest
            release.events.append(ecr_push_event(image, release_tag, digest, time=when))
            if branch:
                tag_image(self.registry, image, digest, branch)
                release.events.append(ecr_push_event(image, branch, digest, time=when))
            if sign:
                release.events.append(self.sign(image, digest, sha, signer=signer))
        return release

    def sign(self, image: str, digest: str, sha: str, *, signer: CosignKeySigner | None = None) -> dict[str, Any]:
        """Sign like CI (``cosign sign --key ... -a git-sha=<sha>``); returns the signature push's event."""
        if self.signatures is not None:
            self.signatures.sign(image, digest, sha)
        signed = sign_image(self.registry, image, digest, signer or self.signer, annotations={"git-sha": sha})
        return ecr_push_event(image, signature_tag(digest), signed, time=self.event_time())

    def event_time(self) -> str:
        """Now, as EventBridge writes an event's time."""
        return self.clock().strftime("%Y-%m-%dT%H:%M:%SZ")

    def values_file(self, env: str) -> bytes:
        content = self.github.file(self.gitops_repo, f"environments/{env}/values.yaml", "main")
        assert content is not None
        return content

    def gitops_subjects(self, limit: int = 20) -> list[str]:
        """The GitOps branch's commit subjects, newest first (``git log --format=%s``)."""
        return [c.message.splitlines()[0] for c in self.github.log(self.gitops_repo, "main")[:limit]]


@dataclass
class FakePromoterFunction:
    """The PromoterFunction port on the fakes: what Lambda does with the command's request, the operator
    service of the installed runtime answering it, the caller's identity proved to FakeIdentity."""

    world: FakeWorld
    arn: str = OPERATOR_ARN

    def call(self, operation: str, fields: Mapping[str, Any]) -> dict[str, Any]:
        from tagrelay import runtime
        from tagrelay.adapters.promoter_function import function_error

        payload = {OPERATION_KEY: operation, **fields}
        proof = FakeIdentity.proof(self.arn, request_binding(payload))
        try:
            return runtime.operator().handle({**payload, "identity": proof}, invocation_id=str(uuid.uuid4()))
        except TransientError as exc:  # Lambda reports the function's error; the request may have run
            raise function_error(type(exc).__name__, str(exc)) from None


__all__ = ["BRANCH_OF_ENV", "OPERATOR_ARN", "Clock", "FakePromoterFunction", "FakeWorld"]
