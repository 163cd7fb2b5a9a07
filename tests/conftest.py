"""Shared fixtures: one local stack per test session, and an isolated seed scenario per test.

The stack (Debian registry, moto server, GitHub stand-in) starts once; each server is stopped by
its pid when the session ends. Each test gets its own source repository, GitOps repository and
image repositories (named after the test), and an empty ledger table.
"""

from __future__ import annotations

import importlib
import logging
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from devstack.argocd_sim import ArgoCDSimControl
from devstack.moto import aws_env, start_moto
from devstack.process import RunningServer
from devstack.registry import start_registry
from devstack.scenario import BRANCH_OF_ENV, SeedScenario
from devstack.stack import ARGOCD_PROJECT, LocalStack

# The Lambda handlers' Powertools loggers write to the sys.stdout of the moment they are first imported,
# and hand that handler to the "tagrelay" logger. Imported here, that is the session's own stream. First
# imported inside a test that uses capsys, it would be that test's stream, closed after it: every later
# in-process log line (the CLI's, in another file on the same worker) would then print "Logging error:
# I/O operation on closed file" to stderr.
for _handler in ("promoter", "reconciler", "tracker"):
    importlib.import_module(f"tagrelay.handlers.{_handler}")

# Fixtures that start servers: a test using any of them is marked `stack` (`make test-unit` leaves those out).
# Besides the local stack's: the Argo CD simulator of tests/adapters and tests/devstack (``sim``), and the
# local TUF repository of tests/signatures/test_trust_root.py.
STACK_FIXTURES = frozenset(
    {
        "stack",
        "scenario",
        "promoter_env",
        "tracker_env",
        "operator_env",
        "registry_server",
        "moto_server",
        "sim",
        "tuf_repository",
    }
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if STACK_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.stack)
    items[:] = longest_files_first(items)


def longest_files_first(items: list[pytest.Item]) -> list[pytest.Item]:
    """The files expected to take longest first, the quick files without servers last.

    `make test`'s workers take whole files in this order (--dist loadfile --no-loadscope-reorder), so
    the long files start early and the short ones fill the gaps at the end. (xdist's own order, by
    number of tests, put the one-test soak, half a minute long, last: one worker idled through it.)
    Within a file the order is unchanged."""
    by_file: dict[str, list[pytest.Item]] = {}
    for item in items:
        by_file.setdefault(item.nodeid.split("::")[0], []).append(item)

    def expected_seconds(file: str) -> float:
        return sum(_expected_seconds(item) for item in by_file[file])

    order = sorted(by_file, key=lambda file: -expected_seconds(file))  # stable: ties keep collection order
    return [item for file in order for item in by_file[file]]


def _expected_seconds(item: pytest.Item) -> float:
    """A rough duration, from what the test uses (measured on this 2-core machine under coverage)."""
    fixtures = getattr(item, "fixturenames", ())
    if item.get_closest_marker("slow"):
        return 30.0  # the soaks and the every-order properties
    if "scenario" in fixtures:
        return 2.5  # a seeded scenario per test: git repositories, images, signatures, promotions
    if item.get_closest_marker("stack") or item.get_closest_marker("cdk"):
        return 0.3  # a module's own server, or a CDK synth shared by the file
    return 0.05


@pytest.fixture(scope="module")
def registry_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """A registry of the module's own, for adapter tests that count requests or layers on fixed names."""
    server = start_registry(tmp_path_factory.mktemp("registry"))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def moto_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """A moto server of the module's own, with boto3 pointed at it for the module's tests."""
    server = start_moto(tmp_path_factory.mktemp("moto"))
    with pytest.MonkeyPatch.context() as patch:
        for name, value in aws_env(server).items():
            patch.setenv(name, value)
        yield server
    server.stop()


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    with LocalStack.start(tmp_path_factory.mktemp("stack")) as local_stack:
        yield local_stack


@pytest.fixture
def scenario(stack: LocalStack, request: pytest.FixtureRequest) -> SeedScenario:
    stack.reset_ledger()
    stack.github_control.clear_faults()
    name = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower())[:60].strip("-") or "test"
    return SeedScenario.create(stack, isolate_as=name)


@pytest.fixture
def promoter_env(stack: LocalStack, scenario: SeedScenario) -> Iterator[Callable[..., Path]]:
    """Configure the process like the promoter Lambda on this stack; returns a configure(**overrides)."""
    from tagrelay import runtime

    contexts: list[Any] = []

    def configure(**app_overrides: Any) -> Path:
        path = scenario.write_config(**app_overrides)
        context = stack.environment(path)
        context.__enter__()
        contexts.append(context)
        runtime.config.cache_clear()
        runtime.promoter.cache_clear()
        runtime.reconciler.cache_clear()
        return path

    yield configure
    for context in reversed(contexts):
        context.__exit__(None, None, None)
    runtime.config.cache_clear()
    runtime.promoter.cache_clear()
    runtime.reconciler.cache_clear()


@dataclass
class TrackerSetup:
    """What ``tracker_env`` configured: the config file, the Argo CD applications, the simulator."""

    config_path: Path
    apps: dict[str, str]  # env -> Argo CD application
    control: ArgoCDSimControl

    def now(self) -> datetime:
        return self.control.now()


@pytest.fixture
def tracker_env(
    stack: LocalStack, scenario: SeedScenario, promoter_env: Callable[..., Any]
) -> Iterator[Callable[..., TrackerSetup]]:
    """The promoter and the tracker on this stack, with Argo CD applications for this test's GitOps repo.

    Returns ``configure(*, multi_source=True, argocd=None, **app_overrides)``; ``argocd`` overrides keys
    of the config's ``argocd:`` section. The simulator runs on its manual clock, and so do the promoter
    and the tracker (their clocks read it), so that commit times, Argo CD's times and the tracker's
    deadlines are one timeline that only ``tick``/``settle`` move.
    """
    from tagrelay import runtime

    control = stack.argocd_control
    registered: list[str] = []

    def configure(
        *, multi_source: bool = True, argocd: dict[str, Any] | None = None, **app_overrides: Any
    ) -> TrackerSetup:
        name = scenario.gitops_repo.split("/")[0]
        apps = {env: f"{name}-{env}" for env in BRANCH_OF_ENV}
        stack.register_argocd_apps(scenario.gitops_repo, scenario.images, apps, multi_source=multi_source)
        registered.extend(apps.values())
        environments: dict[str, Any] = {
            env: {"branch": branch, "argocd_app": apps[env], "argocd_project": ARGOCD_PROJECT}
            for env, branch in BRANCH_OF_ENV.items()
        }
        for env, settings in app_overrides.pop("environments", {}).items():
            environments[env] = {**environments.get(env, {}), **settings}
        path: Path = promoter_env(environments=environments, **app_overrides)
        if argocd:
            yaml = YAML()
            data = yaml.load(path.read_text())
            data["argocd"].update(argocd)
            with path.open("w") as stream:
                yaml.dump(data, stream)
        stack.argocd_catch_up()
        runtime.config.cache_clear()
        runtime.promoter.cache_clear()
        runtime.tracker.cache_clear()
        runtime.promoter().deps.clock = control.now
        runtime.tracker().deps.clock = control.now
        return TrackerSetup(path, apps, control)

    yield configure
    for app in registered:
        control.forget_app(app)
    control.clear_faults()
    control.clear_marks()
    control.close()
    runtime.tracker.cache_clear()


@dataclass
class OperatorSetup(TrackerSetup):
    """What ``operator_env`` configured: ``tracker_env``'s, and the promoter function on the Lambda API."""

    function: str = "tagrelay-promoter"
    lambda_endpoint: str = ""


@pytest.fixture
def operator_env(
    stack: LocalStack, tracker_env: Callable[..., TrackerSetup], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[Callable[..., OperatorSetup]]:
    """``tracker_env``, plus the promoter deployed to the local Lambda API with the same configuration
    and the `tagrelay` command pointed at it ($TAGRELAY_LAMBDA_ENDPOINT): the operator commands' path.

    Returns ``configure(*, operators=None, **tracker_env_options)``; ``operators`` is the config's
    ``operators:`` section. The function reads the simulator's clock, like the in-process promoter.
    """
    from tagrelay import runtime

    names: list[str] = []

    def configure(*, operators: dict[str, Any] | None = None, **options: Any) -> OperatorSetup:
        if operators is not None:
            options["extra"] = {"operators": operators}
        setup = tracker_env(**options)
        name = stack.register_promoter(setup.config_path)
        names.append(name)
        monkeypatch.setenv("TAGRELAY_LAMBDA_ENDPOINT", stack.lambda_api.url)
        # Where the command keeps a request it got no answer to (this test's own).
        monkeypatch.setenv("TAGRELAY_STATE_DIR", str(tmp_path / "tagrelay-state"))
        runtime.operator.cache_clear()
        return OperatorSetup(setup.config_path, setup.apps, setup.control, name, stack.lambda_api.url)

    yield configure
    for name in names:
        stack.lambda_control.unregister(name)
    runtime.operator.cache_clear()


@pytest.fixture(autouse=True)
def _quiet_servers() -> None:
    # werkzeug (moto) logs every request when it shares the process; keep test output readable.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
