"""The fault-injection soak on the in-memory fakes (tests/fakes): the same plan, entry points and
invariants as on the local stack (tests/soak/harness.py), fast enough for `make test` to run 250
operations.

The services are wired to the fakes as runtime.py wires them to the adapters, and reached through the
same handlers: ECR events through the promoter's, the `tagrelay` command's own code (``operator_call``)
through the promoter's with a fake identity proof (single-use, through the ledger's nonce record), the
sweep through the reconciler's. Each fake's fault hook (``faults``, called on entry to every port
method and after every write) is replaced by the soak's, which injects what the adapters would raise
once their own retries are spent:

* GitHub: a 5xx (``TransientError``) on any call; a 409 on a commit (``WriteConflict``); a timeout, on a
  read or on a commit that still happens (its answer lost); a concurrent commit to the values files
  right before a commit (a real compare-and-swap conflict);
* DynamoDB: any single write throttled, including the state advance that follows a deployment record;
* the registry: a 5xx on any call;
* a crash right after a GitHub or DynamoDB write: the invocation dies, and nothing it would still do
  (cleanup code included) reaches any fake.

Each call of a fake holds one lock, as a server serves one request atomically; concurrent promotions
interleave between calls.
"""

from __future__ import annotations

import dataclasses
import random
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from tagrelay.config import Config
from tagrelay.errors import TransientError, WriteConflict
from tagrelay.ports import DeploymentLedger
from tests.fakes.faults import Faults
from tests.fakes.identity import FakeIdentity
from tests.fakes.world import OPERATOR_ARN, FakeWorld
from tests.soak.harness import FAULT_KINDS, FAULT_RATE, ArmedFaults, SimulatedCrash, Soak, _Armed

GITHUB_CALLS = ("read_file", "resolve_commit", "compare", "comparison", "commits_touching", "write_file")
# The FakeLedger's writes (each a fault point after its work); advance_state is the update that makes a
# deployment current, a write of its own after the deployment's transaction.
LEDGER_WRITES = (
    "record_sighting",
    "set_current",
    "note_alert",
    "set_pin",
    "clear_pin",
    "record_decision",
    "record_deployment",
    "advance_state",
    "note_release_waiting",
    "note_release_decided",
    "begin_request",
    "finish_request",
    "use_nonce",
)


class FakeFaultLayer(ArmedFaults):
    """At most one fault per invocation attempt (per thread), armed with the seed's dice."""

    def __init__(self, world: FakeWorld, rng: random.Random) -> None:
        super().__init__(rng)
        self.world = world
        self.serial = threading.RLock()  # one call of a fake at a time

    def install(self) -> None:
        world = self.world
        world.github.faults = _SoakFaults("github", layer=self)
        world.ledger.faults = _SoakFaults("dynamodb", layer=self)
        world.registry.faults = _SoakFaults("registry", layer=self)
        world.ecr.faults = _SoakFaults("ecr", layer=self)

    @contextmanager
    def invocation(self, faulty: bool) -> Iterator[None]:
        local = self._local
        local.crashed = False
        local.lose_commit_answer = False
        local.armed = None
        if faulty and self.rng.random() < FAULT_RATE:
            kind = self.rng.choice(FAULT_KINDS)
            # A commit is the one call of its kind in most invocations: those faults fire on the first.
            nth = 1 if kind in ("github_409", "github_concurrent_commit") else self.rng.randint(1, 4)
            local.armed = _Armed(kind, nth=nth)
        try:
            yield
        finally:
            armed: _Armed | None = local.armed
            if armed is not None and armed.fired:
                self._count(armed.kind)
            local.armed = None
            local.crashed = False
            local.lose_commit_answer = False

    # --- the hooks the fakes call ---

    def before(self, system: str, method: str) -> None:
        local = self._local
        if getattr(local, "crashed", False):
            raise SimulatedCrash("the process is gone")
        if system == "github" and method in GITHUB_CALLS:
            if self._take("github_5xx"):
                raise TransientError("github", f"{method}: HTTP 502 (soak)")
            if method == "write_file":
                if self._take("github_409"):
                    raise WriteConflict("409 Conflict (soak)")
                if self._take("github_concurrent_commit"):
                    self._concurrent_commit()
            if self._take("github_timeout"):
                if method != "write_file":
                    raise TransientError("github", f"{method}: read timed out (soak)")
                local.lose_commit_answer = True  # served late: the commit happens, its answer is lost
        elif system == "dynamodb" and method in LEDGER_WRITES and self._take("dynamodb_throttle"):
            raise TransientError("dynamodb", f"{method} failed (ProvisionedThroughputExceededException, soak)")
        elif system == "registry" and self._take("registry_5xx"):
            raise TransientError("registry", f"{method}: HTTP 503 (soak)")

    def after(self, system: str, method: str) -> None:
        local = self._local
        if system == "github" and method == "write_file" and getattr(local, "lose_commit_answer", False):
            local.lose_commit_answer = False
            raise TransientError("github", "write_file: read timed out (soak; the commit happened)")
        if self._take("crash_between_writes"):
            local.crashed = True
            raise SimulatedCrash("crashed right after a write")

    def _concurrent_commit(self) -> None:
        """Another writer commits to the values files first (a line added), as the stand-in's fault does."""
        github, repo = self.world.github, self.world.gitops_repo
        tree = github.log(repo, "main")[0].tree
        changed = {
            path: content + b"# touched by another writer\n"
            for path, content in tree.items()
            if path.endswith("/values.yaml")
        }
        github.commit(repo, "main", changed, "chore: another writer (soak)", author="someone-else")


@dataclass
class _SoakFaults(Faults):
    """A fake's fault hook, answered by the soak's layer."""

    layer: FakeFaultLayer | None = None

    def before(self, method: str) -> None:
        assert self.layer is not None
        self.layer.before(self.system, method)

    def after(self, method: str) -> None:
        assert self.layer is not None
        self.layer.after(self.system, method)


class _Serialized:
    """A fake whose every call holds the layer's lock (a server answers one request at a time)."""

    def __init__(self, fake: Any, lock: threading.RLock) -> None:
        self._fake = fake
        self._serial = lock

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._fake, name)
        if not callable(attribute):
            return attribute
        lock = self._serial

        def call(*args: Any, **kwargs: Any) -> Any:
            with lock:
                return attribute(*args, **kwargs)

        return call


class FakeSoak(Soak):
    def __init__(self, world: FakeWorld, seed: int, operations: int) -> None:
        super().__init__(world, seed, operations)
        self.world = world
        self.layer = FakeFaultLayer(world, random.Random(seed + 1))

    @contextmanager
    def installed(self, config_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
        """Every service the handlers build, wired to the fakes (runtime.use_adapters) behind the soak's
        faults, from the world's configuration written to ``config_path``."""
        from tagrelay import runtime
        from tagrelay.config import CONFIG_ENV_VAR

        world, serial = self.world, self.layer.serial
        ledger: Any = _Serialized(world.ledger, serial)
        github: Any = _Serialized(world.github, serial)
        registry: Any = _Serialized(world.registry, serial)
        ecr: Any = _Serialized(world.ecr, serial)
        identity = FakeIdentity(
            world.identity.callers,
            use_nonce=lambda nonce, at: bool(ledger.use_nonce(nonce, expires_at=at)),
            clock=world.clock,
        )
        adapters = dataclasses.replace(
            world.adapters(),
            ledger=lambda cfg: ledger,
            github=lambda cfg, credentials: github,
            registry=lambda cfg, app: registry,
            ecr=lambda cfg, app: ecr if app.ecr_registry is not None else None,
            identity=lambda cfg, _ledger: identity,
            sleep=lambda _seconds: None,  # compare-and-swap backoff: no need to wait here
        )
        with config_path.open("w") as stream:
            YAML().dump(world.config_data(), stream)
        monkeypatch.setenv(CONFIG_ENV_VAR, str(config_path))
        with runtime.use_adapters(adapters):
            runtime.promoter().deps.jitter = random.Random(self.seed + 2).random
            self.layer.install()
            yield

    def tick(self, seconds: int) -> None:
        self.world.clock.tick(seconds)

    def config(self) -> Config:
        from tagrelay import runtime

        return runtime.config()  # the one the handlers read (while installed)

    def identity(self, payload: dict[str, Any]) -> dict[str, Any]:
        from tagrelay.domain.operator import request_binding

        return FakeIdentity.proof(OPERATOR_ARN, request_binding(payload))

    def values_history(self, env: str) -> list[tuple[str, str, str | None]]:
        from tagrelay.domain.values_patch import read_value

        path = f"environments/{env}/values.yaml"
        history: list[tuple[str, str, str | None]] = []
        before: bytes | None = None
        for commit in reversed(self.world.github.log(self.world.gitops_repo, "main")):
            content = commit.tree.get(path)
            if content is not None and content != before:
                history.append(
                    (commit.sha, commit.message.splitlines()[0], read_value(content.decode(), "global.imageTag"))
                )
            before = content
        return history

    def request_ids(self, env: str) -> list[str]:
        commits = {commit.sha: commit for commit in self.world.github.log(self.world.gitops_repo, "main")}
        return [
            line.removeprefix("Request: ").strip()
            for sha, _, _ in self.values_history(env)
            for line in commits[sha].message.splitlines()
            if line.startswith("Request: ")
        ]

    def is_ancestor(self, older: str, newer: str) -> bool:
        github = self.world.github
        return older == newer or older in {c.sha for c in github.log(self.world.source_repo, newer)}

    def ledger(self) -> DeploymentLedger:
        return self.world.ledger
