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
from tagrelay.domain.tags import signature_tag
from tagrelay.ports import SignatureVerifier
from tagrelay.services.operate import Operator, OperatorDependencies
from tagrelay.services.promote import Promoter, PromoterDependencies
from tagrelay.services.reconcile import Reconciler, ReconcilerDependencies
from tagrelay.services.track import Tracker, TrackerDependencies
from tests.fakes.argocd import FakeArgoCD
from tests.fakes.ecr import FakeEcr
from tests.fakes.github import FakeGitHub
from tests.fakes.identity import FakeIdentity
from tests.fakes.ledger import FakeLedger
from tests.fakes.registry import FakeRegistry
from tests.fakes.signatures import FakeSignatures

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

    # --- the services, wired to the fakes ---

    def promoter(self, config: Config | None = None, *, dry_run: bool = False) -> Promoter:
        cfg = config or self.config()
        return Promoter(
            PromoterDependencies(
                config=cfg,
                ledger=self.ledger,
                github=self.github,
                registry_for=lambda app: self.registry,
                verifier_for=self.verifier_for,
                ecr_for=lambda app: self.ecr,
                clock=self.clock,
                sleep=self.sleeps.append,
                jitter=lambda: 0.5,
                monotonic=lambda: self.clock().timestamp(),
                refresh_environment=self.refresh_nudge(cfg),
            ),
            dry_run=dry_run,
        )

    def verifier_for(self, app: App) -> SignatureVerifier:
        if self.signatures is not None:
            return self.signatures
        from tagrelay.adapters.signatures import verifier_for

        return verifier_for(app)

    def refresh_nudge(self, cfg: Config) -> Any:
        from tagrelay.runtime import refresh_nudge

        return refresh_nudge(cfg, client=lambda: self.argocd)

    def tracker(self, config: Config | None = None) -> Tracker:
        return Tracker(
            TrackerDependencies(
                config=config or self.config(),
                ledger=self.ledger,
                argocd=lambda: self.argocd,
                clock=self.clock,
                github=lambda: self.github,
            )
        )

    def operator(self, config: Config | None = None, promoter: Promoter | None = None) -> Operator:
        cfg = config or self.config()
        return Operator(
            OperatorDependencies(
                config=cfg,
                ledger=self.ledger,
                promoter=promoter or self.promoter(cfg),
                verify_identity=lambda proof, binding: self.identity.verify(proof, binding=binding),
            )
        )

    def reconciler(self, config: Config | None = None) -> Reconciler:
        cfg = config or self.config()
        return Reconciler(ReconcilerDependencies(config=cfg, promoter=self.promoter(cfg)))

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


__all__ = ["BRANCH_OF_ENV", "OPERATOR_ARN", "Clock", "FakeWorld"]
