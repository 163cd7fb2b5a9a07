"""The fault-injection soak's machinery: faults at every adapter boundary, a seeded plan of operations,
and the invariants checked at the end (tests/soak/test_soak.py runs it; `make soak` runs it longer).

Everything goes through the entry points AWS and the operators use: ECR events to the promoter
handler (with Lambda's retries of a failed invocation, then the dead-letter queue), operator changes
through the `tagrelay` command's own code (``operator_call.change``: plan, request id, the request
kept and sent again when the operator runs the command again), the reconcile sweep's handler. Only
the Lambda invoke is in-process (the handler called directly, with an identity proof signed as the
command signs it), so that faults can be injected inside the function:

* GitHub, through the stand-in's fault control: 5xx (more than PyGithub's retries), 409 on a commit,
  a timeout (served late: the commit happens, its answer is lost), a concurrent commit;
* DynamoDB: a write throttled (boto3's retries exhausted), by wrapping the ledger's client;
* the registry: a 5xx (its retries exhausted), by wrapping the adapter's HTTP session;
* a crash between two writes: after a chosen GitHub or DynamoDB write succeeds, the invocation dies;
  nothing it would still do reaches any system (cleanup code included);
* Lambda retrying the same event, and EventBridge delivering an event twice or never.

The plan is a function of the seed; so is every fault. What concurrent promotions decide among
themselves may differ from run to run; the invariants hold for every interleaving.
"""

from __future__ import annotations

import io
import random
import subprocess
import threading
import types
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import requests
from botocore.credentials import ReadOnlyCredentials
from botocore.exceptions import ClientError

from devstack.lambda_context import lambda_context
from devstack.scenario import BRANCH_OF_ENV, Release, SeedScenario
from devstack.stack import LEDGER_TABLE, LocalStack
from tagrelay.config import Config
from tagrelay.errors import TransientError
from tagrelay.ports import DeploymentLedger

APP = "mosaic-life"
LAMBDA_ATTEMPTS = 3  # an asynchronous invocation and Lambda's two retries; then the dead-letter queue
COMMAND_RUNS = 3  # an operator runs a failed command again, up to twice
FAULT_RATE = 0.35  # of invocation attempts that get a fault
GITHUB_TIMEOUT_SECONDS = 1  # the soak's github.timeout_seconds; a delayed answer comes after 1.5 s
DYNAMO_WRITES = ("put_item", "update_item", "transact_write_items")
FAULT_KINDS = (
    "github_5xx",
    "github_409",
    "github_timeout",
    "github_concurrent_commit",
    "dynamodb_throttle",
    "registry_5xx",
    "crash_between_writes",
)
# What the GitHub stand-in is asked to do for each GitHub fault: (method, path regex, spec).
_GITHUB_FAULTS: dict[str, list[tuple[str, str, dict[str, Any]]]] = {
    "github_5xx": [
        ("GET", "/contents/", {"status": 502, "count": 4}),
        ("GET", "/commits", {"status": 503, "count": 4}),
        ("PUT", "/contents/", {"status": 502, "count": 4}),
        ("GET", "/compare/", {"status": 500, "count": 4}),
    ],
    "github_409": [("PUT", "/contents/", {"status": 409, "count": 1})],
    "github_timeout": [
        ("PUT", "/contents/", {"kind": "delay", "seconds": 1.5, "count": 1}),
        ("GET", "/contents/", {"kind": "delay", "seconds": 1.5, "count": 1}),
    ],
    "github_concurrent_commit": [("PUT", "/contents/", {"kind": "concurrent_commit", "count": 1})],
}


class SimulatedCrash(BaseException):
    """The function's process died: nothing after this point happens."""


@dataclass
class _Armed:
    kind: str
    nth: int  # the nth matching call of this invocation fires it
    seen: int = 0
    fired: bool = False


class ArmedFaults:
    """The faults of one invocation attempt (per thread), armed with the seed's dice, and their counts."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.injected: Counter[str] = Counter()
        self._local = threading.local()
        self._lock = threading.Lock()  # the counts

    def _count(self, kind: str) -> None:
        with self._lock:
            self.injected[kind] += 1

    def _take(self, kind: str) -> bool:
        """Whether the fault armed for this attempt is ``kind`` and fires at this call (its nth match)."""
        armed: _Armed | None = getattr(self._local, "armed", None)
        if armed is None or armed.fired or armed.kind != kind:
            return False
        armed.seen += 1
        if armed.seen < armed.nth:
            return False
        armed.fired = True
        return True


class FaultLayer(ArmedFaults):
    """In-process faults around the runtime promoter's adapters, armed per invocation attempt (per thread)."""

    def __init__(self, stack: LocalStack, rng: random.Random) -> None:
        super().__init__(rng)
        self.stack = stack

    # --- wiring ---

    def install(self, promoter: Any) -> None:
        ledger = promoter.deps.ledger
        ledger._client = _FaultyClient(ledger.client, self)
        github = promoter.deps.github
        for name in ("read_file", "resolve_commit", "compare", "commits_touching", "write_file"):
            setattr(github, name, self._github_call(getattr(github, name), writes=name == "write_file"))
        for app in promoter.config.apps.values():
            registry = promoter.deps.registry_for(app)
            session = registry._session
            session.request = self._registry_call(session.request)

    # --- one invocation attempt ---

    @contextmanager
    def invocation(self, faulty: bool) -> Iterator[None]:
        """Arm at most one fault for this attempt (when ``faulty`` and the dice say so)."""
        local = self._local
        local.crashed = False
        local.armed = None
        github_kind = None
        if faulty and self.rng.random() < FAULT_RATE:
            kind = self.rng.choice(FAULT_KINDS)
            if kind in _GITHUB_FAULTS:
                method, path, spec = self.rng.choice(_GITHUB_FAULTS[kind])
                self.stack.github_control.inject(method=method, path_regex=path, **spec)
                github_kind = (kind, spec.get("count", 1))
            else:
                local.armed = _Armed(kind, nth=self.rng.randint(1, 4))
        try:
            yield
        finally:
            armed: _Armed | None = local.armed
            if armed is not None and armed.fired:
                self._count(armed.kind)
            if github_kind is not None:
                left = self.stack.github_control.faults()
                self.stack.github_control.clear_faults()
                kind, count = github_kind
                if not left or left[0]["remaining"] < count:  # the stand-in answered with it at least once
                    self._count(kind)
            local.armed = None
            local.crashed = False

    def _check_alive(self) -> None:
        if getattr(self._local, "crashed", False):
            raise SimulatedCrash("the process is gone")

    def crash_after_write(self) -> None:
        if self._take("crash_between_writes"):
            self._local.crashed = True
            raise SimulatedCrash("crashed right after a write")

    def dynamodb_write(self) -> None:
        self._check_alive()
        if self._take("dynamodb_throttle"):
            raise ClientError(
                {"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "throttled (soak)"}},
                "UpdateItem",
            )

    def _github_call(self, call: Callable[..., Any], *, writes: bool) -> Callable[..., Any]:
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            self._check_alive()
            result = call(*args, **kwargs)
            if writes:
                self.crash_after_write()
            return result

        return wrapped

    def _registry_call(self, call: Callable[..., Any]) -> Callable[..., Any]:
        def wrapped(method: str, url: str, *args: Any, **kwargs: Any) -> Any:
            self._check_alive()
            if self._take("registry_5xx"):
                body = b'{"errors":[{"code":"UNAVAILABLE","message":"soak"}]}'
                response = requests.Response()
                response.status_code = 503
                response.raw = io.BytesIO(body)
                response._content = body
                response.url = url
                return response
            return call(method, url, *args, **kwargs)

        return wrapped


class _FaultyClient:
    """The ledger's boto3 client, with the soak's faults on writes (and nothing at all after a crash)."""

    def __init__(self, client: Any, layer: FaultLayer) -> None:
        self._client = client
        self._layer = layer

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._client, name)
        if not callable(attribute):
            return attribute
        layer = self._layer

        def call(*args: Any, **kwargs: Any) -> Any:
            if name in DYNAMO_WRITES:
                layer.dynamodb_write()
                result = attribute(*args, **kwargs)
                layer.crash_after_write()
                return result
            layer._check_alive()
            return attribute(*args, **kwargs)

        return call


# --------------------------------------------------------------------------------------------------
# The soak itself.


class Soak:
    """The plan, the entry points and the report, whatever the systems run on: a subclass says where the
    services run (``install``), whose clock they read, how a fault is armed for one invocation
    (``layer``), how an operator proves who they are, and where the invariants read the GitOps history."""

    layer: Any  # FaultLayer or the fakes' (tests/soak/fakes.py): ``injected``, ``_lock``, ``_count``, ``invocation``

    def __init__(self, scenario: Any, seed: int, operations: int) -> None:
        self.scenario = scenario  # SeedScenario (local stack) or FakeWorld: commit(), release(), images
        self.seed = seed
        self.operations = operations
        self.rng = random.Random(seed)
        self.releases: dict[str, list[Release]] = {env: [] for env in BRANCH_OF_ENV}
        self.delivered: list[str] = []  # event ids that reached the promoter at least once
        self.dead_letters: list[str] = []
        self.attempts: dict[str, list[str]] = {}  # event id -> what each attempt ended in
        self.done: Counter[str] = Counter()
        self.answers: list[dict[str, Any]] = []
        self.faults_on = True

    # --- what a subclass provides ---

    def tick(self, seconds: int) -> None:
        raise NotImplementedError

    def config(self) -> Config:
        """The configuration the `tagrelay` command reads."""
        raise NotImplementedError

    def identity(self, payload: dict[str, Any]) -> dict[str, Any]:
        """The identity proof the command adds to ``payload``."""
        raise NotImplementedError

    def clear_faults(self) -> None:
        """Disarm whatever a system still holds armed (the end of the run)."""

    def values_history(self, env: str) -> list[tuple[str, str, str | None]]:
        """(GitOps commit, subject, tag after it) for every commit of the values file, oldest first."""
        raise NotImplementedError

    def request_ids(self, env: str) -> list[str]:
        """The request id of every operator commit (`Request: <id>` in its message) of the values file."""
        raise NotImplementedError

    def is_ancestor(self, older: str, newer: str) -> bool:
        """Whether source commit ``older`` is ``newer`` or one of its ancestors."""
        raise NotImplementedError

    def ledger(self) -> DeploymentLedger:
        raise NotImplementedError

    # --- the plan ---

    def run(self) -> None:
        choices = (
            ("push", 46),
            ("push_lost_events", 12),
            ("concurrent_pushes", 8),
            ("deploy", 9),
            ("rollback", 9),
            ("pin", 7),
            ("unpin", 9),
        )
        names, weights = zip(*choices, strict=True)
        for _ in range(self.operations):
            self.tick(self.rng.randint(5, 90))
            operation = self.rng.choices(names, weights)[0]
            getattr(self, f"_{operation}")()
            self.done[operation] += 1

    def _env(self) -> str:
        return self.rng.choice(sorted(BRANCH_OF_ENV))

    def _new_release(self, env: str) -> Release:
        """CI pushes and signs every image of a new commit of the environment's branch at once."""
        branch = BRANCH_OF_ENV[env]
        release = self._seeded(self.scenario.release(self.scenario.commit(branch), branch=branch))
        self.releases[env].append(release)
        return release

    def _seeded(self, release: Release) -> Release:
        """Event ids from the seed (EventBridge's are random), so that a seed replays the same events."""
        for event in release.events:
            event["id"] = str(uuid.UUID(int=self.rng.getrandbits(128), version=4))
        return release

    def _push(self, *, lose: bool = False) -> None:
        """CI pushes web, then core-api; each one's events arrive in any order, some twice; with ``lose``,
        EventBridge never delivers some of them (at least one of web's arrives: a release of which no event
        arrived is invisible, a documented limit)."""
        env = self._env()
        branch = BRANCH_OF_ENV[env]
        sha = self.scenario.commit(branch)
        parts = [self._seeded(self.scenario.release(sha, branch=branch, images=list(self.scenario.images[:1])))]
        self._deliver_part(parts[0].events, lose=lose, keep_one=True)
        parts.append(self._seeded(self.scenario.release(sha, branch=branch, images=list(self.scenario.images[1:]))))
        self._deliver_part(parts[1].events, lose=lose, keep_one=False)
        digests = {image: digest for part in parts for image, digest in part.digests.items()}
        self.releases[env].append(Release(sha, parts[0].tag, digests, [e for part in parts for e in part.events]))

    def _deliver_part(self, events: list[dict[str, Any]], *, lose: bool, keep_one: bool) -> None:
        events = list(events)
        self.rng.shuffle(events)
        if lose:
            events = events[: self.rng.randint(1 if keep_one else 0, len(events) - 1)]
            self.layer._count("lost_event")
        for event in events:
            self.deliver(event)
            if self.rng.random() < 0.15:
                self.layer._count("duplicate_event")
                self.deliver(event)

    def _push_lost_events(self) -> None:
        self._push(lose=True)

    def _concurrent_pushes(self) -> None:
        env = self._env()
        batch = [self._new_release(env) for _ in range(3)]
        events = [event for release in batch for event in release.events]
        self.rng.shuffle(events)
        with ThreadPoolExecutor(max_workers=3) as pool:
            list(pool.map(lambda event: self.deliver(event, faulty=False), events))

    def _deploy(self) -> None:
        env = self._env()
        if self.releases[env]:
            release = self.rng.choice(self.releases[env])
            self.command("deploy", {"app": APP, "env": env, "sha": release.sha})

    def _rollback(self) -> None:
        env = self._env()
        fields: dict[str, Any] = {"app": APP, "env": env, "pin": self.rng.random() < 0.7}
        if self.releases[env] and self.rng.random() < 0.4:
            fields["sha"] = self.rng.choice(self.releases[env]).sha
        self.command("rollback", fields)

    def _pin(self) -> None:
        self.command("pin", {"app": APP, "env": self._env(), "reason": "soak freeze"})

    def _unpin(self) -> None:
        self.command("unpin", {"app": APP, "env": self._env()})

    # --- entry points, with Lambda's retries and the operator's ---

    def deliver(self, event: dict[str, Any], *, faulty: bool = True) -> bool:
        """One ECR event to the promoter handler: retried by Lambda, dead-lettered when retries run out."""
        from tagrelay.handlers.promoter import handler

        with self.layer._lock:
            self.delivered.append(event["id"])
        tried = self.attempts.setdefault(
            event["id"], [f"{event['detail']['repository-name']}:{event['detail'].get('image-tag')}"]
        )
        for attempt in range(LAMBDA_ATTEMPTS):
            try:
                with self.layer.invocation(faulty and self.faults_on):
                    result = handler(event, lambda_context("promoter"))
                tried.append(f"{result.get('decision')}:{result.get('reason')}")
                return True
            except (TransientError, SimulatedCrash) as exc:
                tried.append(f"{type(exc).__name__}: {exc}"[:200])
                if attempt + 1 < LAMBDA_ATTEMPTS:
                    self.layer._count("lambda_retry")
        with self.layer._lock:
            self.dead_letters.append(event["id"])
        return False

    def command(self, operation: str, fields: dict[str, Any]) -> dict[str, Any] | None:
        """`tagrelay <operation>` through the command's own code; run again (up to twice) after a failure."""
        from tagrelay.cli import operator_call

        config = self.config()
        args = types.SimpleNamespace(function=None, lambda_endpoint=None)
        for _ in range(COMMAND_RUNS):
            try:
                answer = operator_call.change(config, args, operation, fields, function=self)  # type: ignore[arg-type]
            except operator_call.OutcomeUnknown:
                self.layer._count("command_run_again")
                continue
            self.answers.append({"operation": operation, **answer})
            return answer
        return None

    def call(self, operation: str, fields: Mapping[str, Any]) -> dict[str, Any]:
        """The PromoterFunction port for the command: what boto3's Lambda Invoke does, with the handler
        run here (faults inside)."""
        from tagrelay.domain.operator import OPERATION_KEY
        from tagrelay.errors import InvocationFailed
        from tagrelay.handlers.promoter import handler

        payload = {OPERATION_KEY: operation, **fields}
        identity = self.identity(payload)
        try:
            with self.layer.invocation(self.faults_on):
                answer: dict[str, Any] = handler({**payload, "identity": identity}, lambda_context("promoter"))
        except (TransientError, SimulatedCrash) as exc:
            raise InvocationFailed(f"the promoter failed ({type(exc).__name__})", may_have_run=True) from None
        return answer

    # --- the end: no faults, everything unpinned, one more release per environment, one sweep ---

    def finish(self) -> dict[str, Release]:
        from tagrelay.handlers.reconciler import handler as reconcile

        self.faults_on = False
        self.clear_faults()
        finals: dict[str, Release] = {}
        for env in sorted(BRANCH_OF_ENV):
            self.tick(60)
            # A request left unanswered earlier is sent again first (the command does that), and may be
            # refused as stale: the operator then runs the command again, which plans afresh.
            for _ in range(COMMAND_RUNS):
                answer = self.command("unpin", {"app": APP, "env": env})
                if answer is not None and answer.get("ok"):
                    break
            else:
                raise AssertionError(f"{env} could not be unpinned: {answer}")
            finals[env] = self._new_release(env)
            for event in finals[env].events:
                assert self.deliver(event, faulty=False), f"the final release of {env} was dead-lettered"
        self.tick(60)
        with self.layer.invocation(False):
            reconcile({"id": f"soak-{self.seed}", "detail-type": "Scheduled Event"}, lambda_context("reconciler"))
        return finals

    def report(self, seconds: float) -> str:
        faults = ", ".join(f"{kind} {n}" for kind, n in sorted(self.layer.injected.items()))
        done = ", ".join(f"{name} {n}" for name, n in sorted(self.done.items()))
        return (
            f"soak seed {self.seed}: {self.operations} operations ({done}); "
            f"{len(self.delivered)} event deliveries, {len(self.dead_letters)} dead-lettered; "
            f"faults injected: {sum(self.layer.injected.values())} ({faults}); {seconds:.1f} s"
        )


class StackSoak(Soak):
    """The soak on the local stack: the real adapters against the local servers, faults from the servers'
    fault controls and around the in-process promoter's clients."""

    def __init__(self, stack: LocalStack, scenario: SeedScenario, config_path: Any, seed: int, operations: int) -> None:
        super().__init__(scenario, seed, operations)
        self.stack = stack
        self.config_path = config_path
        self.layer = FaultLayer(stack, random.Random(seed + 1))
        self.now = datetime(2026, 12, 5, 9, 0, tzinfo=UTC)

    def install(self) -> None:
        from tagrelay import runtime

        promoter = runtime.promoter()
        promoter.deps.clock = self.clock
        promoter.deps.sleep = lambda _seconds: None  # compare-and-swap backoff: no need to wait here
        promoter.deps.jitter = random.Random(self.seed + 2).random
        self.layer.install(promoter)

    def clock(self) -> datetime:
        return self.now

    def tick(self, seconds: int) -> None:
        self.now += timedelta(seconds=seconds)

    def config(self) -> Config:
        from tagrelay.config import load_config

        return load_config(self.config_path)

    def identity(self, payload: dict[str, Any]) -> dict[str, Any]:
        from tagrelay.adapters.identity import default_sts_endpoint, sign_caller_identity
        from tagrelay.domain.operator import request_binding

        env = self.stack.aws_env
        proof: dict[str, Any] = sign_caller_identity(
            ReadOnlyCredentials(env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"], env["AWS_SESSION_TOKEN"]),
            endpoint=default_sts_endpoint("us-east-1"),
            region="us-east-1",
            binding=request_binding(payload),
        )
        return proof

    def clear_faults(self) -> None:
        self.stack.github_control.clear_faults()

    def values_history(self, env: str) -> list[tuple[str, str, str | None]]:
        return values_history(self.scenario, env)

    def request_ids(self, env: str) -> list[str]:
        return request_ids(self.scenario, env)

    def is_ancestor(self, older: str, newer: str) -> bool:
        return is_ancestor(self.scenario, older, newer)

    def ledger(self) -> DeploymentLedger:
        from tagrelay.adapters.store import Ledger

        return Ledger(LEDGER_TABLE)


# --------------------------------------------------------------------------------------------------
# The invariants.


def git(scenario: SeedScenario, *args: str, source: bool = False) -> str:
    repo = scenario.source if source else scenario.gitops
    output = subprocess.run(
        ["git", f"--git-dir={repo.bare_path}", *args], check=True, capture_output=True, text=True
    ).stdout
    return output


def values_history(scenario: SeedScenario, env: str) -> list[tuple[str, str, str | None]]:
    """(GitOps commit, subject, tag after it) for every commit of the values file, oldest first."""
    from tagrelay.domain.values_patch import read_value

    path = f"environments/{env}/values.yaml"
    lines = git(scenario, "log", "--reverse", "--format=%H %s", "main", "--", path).splitlines()
    history = []
    for line in lines:
        commit, subject = line.split(" ", 1)
        text = git(scenario, "show", f"{commit}:{path}")
        history.append((commit, subject, read_value(text, "global.imageTag")))
    return history


def request_ids(scenario: SeedScenario, env: str) -> list[str]:
    """The request id of every operator commit (`Request: <id>` in its message) of the values file."""
    path = f"environments/{env}/values.yaml"
    log = git(scenario, "log", "--format=%B%x00", "main", "--", path)
    return [
        line.removeprefix("Request: ").strip()
        for message in log.split("\x00")
        for line in message.splitlines()
        if line.startswith("Request: ")
    ]


def is_ancestor(scenario: SeedScenario, older: str, newer: str) -> bool:
    result = subprocess.run(
        ["git", f"--git-dir={scenario.source.bare_path}", "merge-base", "--is-ancestor", older, newer],
        check=False,
        capture_output=True,
    )
    return result.returncode == 0


def check_invariants(soak: Soak, finals: dict[str, Release]) -> None:
    scenario = soak.scenario
    ledger = soak.ledger()
    sha_of = {release.tag: release.sha for releases in soak.releases.values() for release in releases}
    records = {env: _all_records(ledger, env) for env in (*sorted(BRANCH_OF_ENV), "unresolved")}
    for env in sorted(BRANCH_OF_ENV):
        history = soak.values_history(env)
        ours = [
            (commit, subject, tag) for commit, subject, tag in history if subject.startswith(("deploy(", "rollback("))
        ]

        # 1. The GitOps history never goes backwards except through an explicit rollback.
        deployed: str | None = None
        for commit, subject, tag in ours:
            if deployed in sha_of and tag in sha_of and not subject.startswith("rollback("):
                assert not soak.is_ancestor(sha_of[tag], sha_of[deployed]) or tag == deployed, (
                    f"{env}: {commit[:12]} ({subject}) went back from {deployed} to {tag}"
                )
            deployed = tag

        # 2. Each release has at most one commit per environment from pushes, and each operator request
        # at most one commit (a rollback to a release, or a manual deploy of it, is a change of its own).
        pushes = Counter(tag for _, subject, tag in ours if subject.startswith("deploy(") and "manual" not in subject)
        assert all(n == 1 for n in pushes.values()), f"{env}: releases pushed twice: {pushes.most_common(3)}"
        requests_committed = Counter(soak.request_ids(env))
        assert all(n == 1 for n in requests_committed.values()), (
            f"{env}: an operator request committed twice: {requests_committed.most_common(2)}"
        )

        # 3. No update is lost: every GitOps commit tagrelay made has its one deployment record, and the
        # last release pushed after everything was unpinned is what runs.
        for commit, subject, tag in ours:
            record = ledger.deployment_for_commit(APP, env, scenario.gitops_repo, commit)
            assert record is not None and record.tag == tag, f"{env}: commit {commit[:12]} ({subject}) not recorded"
        committed = [r for r in records[env] if r.outcome == "committed" and r.trigger != "external"]
        assert len({r.gitops_commit for r in committed}) == len(committed), f"{env}: a commit recorded twice"
        assert history[-1][2] == finals[env].tag, f"{env}: the final release {finals[env].tag} is not deployed"

        # 4. The ledger's current state equals the GitOps file.
        state = ledger.environment_state(APP, env)
        assert state is not None and (state.current_tag, state.gitops_commit) == (history[-1][2], history[-1][0]), (
            f"{env}: the ledger says {state}, the values file {history[-1]}"
        )

    # 5. Every accepted event ends in a recorded decision or a dead letter.
    decided = {event_id for env_records in records.values() for r in env_records for event_id in r.event_ids}
    missing = [
        event_id for event_id in set(soak.delivered) if event_id not in decided and event_id not in soak.dead_letters
    ]
    if missing:
        detail = []
        for event_id in missing[:3]:
            tried = soak.attempts.get(event_id) or ["?"]
            tag = tried[0].rsplit(":", 1)[-1]
            related = [
                (r.env, r.outcome, r.reason, r.tag, r.event_ids, r.message[:80])
                for env_records in records.values()
                for r in env_records
                if r.tag == tag or tag.startswith("sha256")
            ]
            detail.append(f"{event_id}: {tried}; records of {tag}: {related[:8]}")
        raise AssertionError(
            f"{len(missing)} accepted event(s) without a decision or a dead letter: " + "; ".join(detail)
        )


def _all_records(ledger: Any, env: str) -> list[Any]:
    records: list[Any] = []
    token = None
    while True:
        page = ledger.history(APP, env, limit=100, next_token=token)
        records.extend(page.records)
        token = page.next_token
        if not token:
            return records
