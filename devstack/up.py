"""`make stack` (``python -m devstack up``): the local stack, seeded and kept running, to try commands on.

Starts what `make demo` starts (registry, moto, GitHub stand-in, Argo CD simulator on the wall clock,
local Lambda API), creates the seed's repositories, registers the Argo CD applications and the promoter
function, delivers one signed prod release to the promoter, and runs the tracker every few seconds, as
its schedule would. Then it prints the environment variables that point `tagrelay` (and boto3, the AWS
CLI, curl) at the stack, and waits. Ctrl-C (or SIGTERM) stops every server it started, by pid, and
removes its files unless --keep.

    make stack
    # in another terminal: paste the printed exports, then
    tagrelay history --env prod
    tagrelay status
    tagrelay deploy <sha> --env staging
"""

from __future__ import annotations

import argparse
import shlex
import shutil
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path
from types import FrameType

from devstack.demo import lambda_logs
from devstack.lambda_context import lambda_context
from devstack.scenario import SeedScenario
from devstack.sigstore_testing import demo_sigstore
from devstack.stack import GITHUB_READ_TOKEN, LocalStack

ARGOCD_APPS = {"prod": "mosaic-life-prod", "staging": "mosaic-life-staging"}
TRACKER_INTERVAL_SECONDS = 5.0
READY_LINE = "tagrelay local stack: ready"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack up", description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", type=Path, help="where the stack keeps its files (default: a new temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the working directory when stopping")
    args = parser.parse_args(argv)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="tagrelay-stack-"))
    stop = threading.Event()

    def request_stop(signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    try:
        run(workdir, stop)
    finally:
        if not args.keep and args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    print("tagrelay local stack: stopped; every server it started has exited.", flush=True)
    return 0


def run(workdir: Path, stop: threading.Event) -> None:
    with LocalStack.start(workdir, argocd_manual_clock=False) as stack:
        scenario = SeedScenario.create(stack, sigstore=demo_sigstore(workdir))
        config_path = scenario.write_config()
        stack.register_argocd_apps(scenario.gitops_repo, scenario.images, ARGOCD_APPS)
        promoter = stack.register_promoter(config_path)
        # The functions' JSON logs and metrics go to a file; the terminal shows what to do.
        with stack.environment(config_path), lambda_logs(stack.workdir / "functions.log"):
            from tagrelay.handlers.promoter import handler

            sha = scenario.commit("main", "feat(web): first release on the local stack")
            scenario.commit("develop", "feat(api): ready for staging")
            for event in scenario.release(sha, branch="main").events:
                handler(event, lambda_context("promoter"))
            tracker = threading.Thread(target=_track, args=(stop,), name="tracker", daemon=True)
            tracker.start()
            _print_environment(stack, config_path, promoter)
            while not stop.wait(0.5):
                pass
            tracker.join(timeout=TRACKER_INTERVAL_SECONDS + 5)


def _track(stop: threading.Event) -> None:
    """The tracker's schedule: one run every few seconds (Argo CD is ~100x faster here)."""
    from tagrelay.handlers.tracker import handler as tracker

    run = 0
    while not stop.wait(TRACKER_INTERVAL_SECONDS if run else 0.5):
        run += 1
        try:
            tracker({"id": f"local-{run}", "detail-type": "Scheduled Event", "source": "aws.events"},
                    lambda_context("tracker"))  # fmt: skip
        except Exception as exc:  # keep the schedule going, as Lambda would run it again
            print(f"tracker run {run} failed: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)


def environment(stack: LocalStack, config_path: Path) -> dict[str, str]:
    """What a shell needs to use the stack: tagrelay's configuration, AWS (moto), the Lambda API, the
    Argo CD token, and a GitHub token for read commands."""
    return {
        "TAGRELAY_CONFIG": str(config_path),
        **stack.aws_env,
        "TAGRELAY_LAMBDA_ENDPOINT": stack.lambda_api.url,
        "ARGOCD_AUTH_TOKEN": stack.argocd.extra["token"],
        "GITHUB_TOKEN": GITHUB_READ_TOKEN,
    }


def _print_environment(stack: LocalStack, config_path: Path, promoter: str) -> None:
    variables = environment(stack, config_path)
    exports = "\n".join(f"export {name}={shlex.quote(value)}" for name, value in variables.items())
    env_file = stack.workdir / "env.sh"
    env_file.write_text(exports + "\n", encoding="utf-8")
    servers = "\n".join(f"  {s.name:<16} {s.url}  (pid {s.pid})" for s in stack.servers)
    print(
        f"{servers}\n  promoter function {promoter} (local Lambda API)\n"
        f"  functions' logs: {stack.workdir / 'functions.log'}\n\n"
        f"Paste into another shell (or: source {env_file}):\n\n{exports}\n\n"
        "Then try: tagrelay history --env prod; tagrelay status; tagrelay history --all\n"
        f"Ctrl-C here stops the stack.\n{READY_LINE} ({time.strftime('%H:%M:%S')})",
        flush=True,
    )


if __name__ == "__main__":
    sys.exit(main())
