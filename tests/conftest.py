"""Shared fixtures: one local stack per test session, and an isolated seed scenario per test.

The stack (Debian registry, moto server, GitHub stand-in) starts once; each server is stopped by
its pid when the session ends. Each test gets its own source repository, GitOps repository and
image repositories (named after the test), and an empty ledger table.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from devstack.scenario import SeedScenario
from devstack.stack import LocalStack


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    with LocalStack.start(tmp_path_factory.mktemp("stack")) as local_stack:
        yield local_stack


@pytest.fixture
def scenario(stack: LocalStack, request: pytest.FixtureRequest) -> SeedScenario:
    stack.reset_ledger()
    stack.github_control.clear_faults()
    name = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")[:60] or "test"
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
        return path

    yield configure
    for context in reversed(contexts):
        context.__exit__(None, None, None)
    runtime.config.cache_clear()
    runtime.promoter.cache_clear()


@pytest.fixture(autouse=True)
def _quiet_servers() -> None:
    # werkzeug (moto) logs every request when it shares the process; keep test output readable.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
