"""Fixtures of the service tests on the fakes: a fresh FakeWorld, and the same world installed in
runtime.py, so that handlers and `tagrelay` commands run on the fakes as they run on the local stack."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from tagrelay import runtime
from tagrelay.config import CONFIG_ENV_VAR
from tests.fakes.world import FakeWorld


@pytest.fixture
def world() -> FakeWorld:
    return FakeWorld.create()


@pytest.fixture
def install(world: FakeWorld, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., Path]]:
    """``install(**app_overrides)``: write the world's configuration (with the overrides) where
    $TAGRELAY_CONFIG names it, and build every service and client with the world's fakes
    (runtime.use_adapters) until the test ends. Returns the configuration file."""
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("TAGRELAY_STATE_DIR", str(tmp_path / "tagrelay-state"))
    with runtime.use_adapters(world.adapters()):

        def configure(*, extra: dict[str, Any] | None = None, **app_overrides: Any) -> Path:
            path = tmp_path / "tagrelay.yaml"
            with path.open("w") as stream:
                YAML().dump(world.config_data(extra=extra, **app_overrides), stream)
            monkeypatch.setenv(CONFIG_ENV_VAR, str(path))
            runtime.clear_caches()
            return path

        yield configure
