"""The developer loop's own pieces: the pre-commit hooks, `make test-unit`'s no-server guard, and the
coverage gate of `make test` (docs/development.md)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from devstack.process import NO_SERVERS_ENV_VAR, ServerStartError, start_server

ROOT = Path(__file__).resolve().parent.parent


def test_pre_commit_runs_ruff_and_mypy_from_the_locked_venv() -> None:
    from pre_commit.clientlib import load_config

    config = load_config(str(ROOT / ".pre-commit-config.yaml"))
    hooks = {hook["id"]: hook for repo in config["repos"] for hook in repo["hooks"]}
    assert set(hooks) == {"ruff-check", "ruff-format", "mypy"}
    for hook in hooks.values():
        executable = ROOT / hook["entry"].split()[0]
        assert executable.is_file(), f"{hook['id']}: {executable} is not installed by make bootstrap"
        assert hook["types_or"] == ["python", "pyi"]


def test_no_server_starts_under_make_test_unit(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(NO_SERVERS_ENV_VAR, "1")
    with pytest.raises(ServerStartError, match="mark"):
        start_server("anything", ["true"], url="http://127.0.0.1:9", log_dir=tmp_path)
    assert not list(tmp_path.iterdir())  # refused before anything ran


def test_make_test_unit_sets_the_guard_and_make_test_gates_on_coverage() -> None:
    makefile = (ROOT / "Makefile").read_text()
    unit = re.search(r"^test-unit:.*\n\t(.*)$", makefile, re.MULTILINE)
    assert unit is not None and f"{NO_SERVERS_ENV_VAR}=1" in unit[1] and '-m "not stack and not cdk"' in unit[1]
    full = re.search(r"^test:.*\n\t(.*)$", makefile, re.MULTILINE)
    assert full is not None and full[1] == "scripts/test"
    script = (ROOT / "scripts" / "test").read_text()
    pytest_line = next(line for line in script.splitlines() if line.startswith('"$BIN/pytest"'))
    assert "--cov " in pytest_line and '"$@"' in pytest_line
    assert re.search(r'^nice -n \d+ "\$BIN/mypy" .*&$', script, re.MULTILINE)  # side by side, and waited for:
    assert 'wait "$mypy_pid"' in script and "mypy_status != 0" in script
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert re.search(r"^\[tool\.coverage\.report\]\nfail_under = 90$", pyproject, re.MULTILINE)
    assert 'source = ["functions/tagrelay"]' in pyproject
