"""`make stack` / `python -m devstack up`: the local stack keeps running, says how to use it, and stops
cleanly on Ctrl-C (SIGINT), leaving no server behind."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from devstack.up import READY_LINE

REPO_ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT_SECONDS = 120


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.stack
@pytest.mark.timeout(300)
def test_the_stack_keeps_running_for_the_cli_and_stops_cleanly_on_ctrl_c(tmp_path: Path) -> None:
    workdir = tmp_path / "stack"
    process = subprocess.Popen(
        [sys.executable, "-m", "devstack", "up", "--workdir", str(workdir)],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # Ctrl-C reaches it alone, as in its own terminal
    )
    lines: list[str] = []
    try:
        assert process.stdout is not None
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                break
            lines.append(line)
            if line.startswith(READY_LINE):
                break
        output = "".join(lines)
        assert READY_LINE in output, output
        assert not any(line.startswith("{") for line in lines), "the functions' JSON logs go to a file"
        exports = dict(re.findall(r"^export (\w+)=(\S+)$", output, flags=re.MULTILINE))
        assert {"TAGRELAY_CONFIG", "AWS_ENDPOINT_URL", "TAGRELAY_LAMBDA_ENDPOINT", "ARGOCD_AUTH_TOKEN"} <= set(exports)
        pids = [int(pid) for pid in re.findall(r"\(pid (\d+)\)", output)]
        assert len(pids) >= 5 and all(_alive(pid) for pid in pids)

        # A shell with the printed variables (and nothing of this test's environment) can use tagrelay.
        shell = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp"), **exports}
        history = subprocess.run(
            [sys.executable, "-m", "tagrelay.cli.main", "history", "--env", "prod", "-o", "json"],
            env=shell, capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert history.returncode == 0, history.stderr
        records = json.loads(history.stdout)["records"]
        assert [r["outcome"] for r in records] == ["committed"]

        process.send_signal(signal.SIGINT)
        remaining, _ = process.communicate(timeout=60)
        assert process.returncode == 0, remaining
        assert "stopped" in remaining and "Traceback" not in remaining
        assert not [pid for pid in pids if _alive(pid)]
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
