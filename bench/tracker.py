"""Tracker benchmark on the local stack: cold start, time per run, Argo CD and DynamoDB requests per run.

    python -m bench.tracker [--runs 10]

Figures, not thresholds (the machine is shared and noisy). The set-up is issue 4's budget case: 50
deployments in flight across 10 Argo CD applications (one app with 10 environments, 5 deployments
each), written straight into the ledger, and the simulator serving the 10 applications from one
GitOps repository on its manual clock (so nothing moves between runs). Two shapes of run:

* first run: the 5 deployments of an environment were committed one after the other, so the run
  supersedes the 4 older ones (40 conditional writes) and leaves the newest waiting; timed over
  ``--runs`` fresh ledgers;
* steady run: the 5 deployments of an environment tie (committed at the same instant), none is
  superseded and Argo CD has picked up none of them, so the run writes nothing; timed over ``--runs``
  runs on the same ledger.

* lineage run: the 10 environments' deployments are real commits of the GitOps branch, and Argo CD
  synced a later docs commit on top of them all (a revision that *contains* each deployment's commit,
  issue 11): the first run asks GitHub once for that one new revision and records 10 SUCCEEDED; a
  second run asks nothing (cached).

Requests are counted by the tracker itself (``TrackerRun.argocd_requests``/``ledger_requests``/
``github_requests``) and checked against the simulator's and the GitHub stand-in's request logs. Cold
start is the import of the handler module in a fresh interpreter (median of 5) with its heaviest imports.
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from devstack.argocd_sim import GitOpsRepo, SimApp
from devstack.stack import ARGOCD_PROJECT, LEDGER_TABLE, LocalStack

APPLICATIONS = 10
PER_APPLICATION = 5
HANDLER = "tagrelay.handlers.tracker"
GITOPS_REPO = "bench/gitops"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.tracker", description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10, help="timed runs per shape (default: 10)")
    args = parser.parse_args(argv)

    cold = cold_start()
    with tempfile.TemporaryDirectory(prefix="tagrelay-bench-") as tmp, LocalStack.start(Path(tmp)) as stack:
        config_path, repo = set_up(stack, Path(tmp))
        with stack.environment(config_path):
            first = measure(stack, args.runs, ties=False)
            steady = measure(stack, args.runs, ties=True)
            lineage = measure_lineage(stack, repo)

    in_flight = APPLICATIONS * PER_APPLICATION
    print(f"tracker: {in_flight} deployments in flight across {APPLICATIONS} Argo CD applications")
    for label, result in (("first run (40 superseded)", first), ("steady run (no change)", steady)):
        print(
            f"  {label:<27} p50 {result['p50_ms']:6.0f} ms  p95 {result['p95_ms']:6.0f} ms  "
            f"Argo CD {result['argocd']} request(s) (simulator log: {result['sim_log']}), "
            f"DynamoDB {result['dynamodb']} request(s) = 1 query + {result['writes']} write(s) on "
            f"{result['transitions']} transition(s)"
        )
    print(
        f"  lineage run (later commit)  {lineage['transitions']} SUCCEEDED via 1 new revision: GitHub "
        f"{lineage['github']} request(s) (stand-in log: {lineage['github_log']} compare), then "
        f"{lineage['github_again']} on the next run (cached); Argo CD {lineage['argocd']} request(s), "
        f"{lineage['ms']:.0f} ms"
    )
    print(
        f"\ncold start: import {HANDLER} in a fresh interpreter: median {cold['median_ms']:.0f} ms "
        f"(runs: {', '.join(f'{v:.0f}' for v in cold['runs_ms'])} ms)"
    )
    print("heaviest imports under the handler (cumulative ms):")
    for name, ms in cold["top"]:
        print(f"  {ms:7.1f}  {name}")
    return 0


def set_up(stack: LocalStack, workdir: Path) -> tuple[Path, GitOpsRepo]:
    """One GitOps repository (on the GitHub stand-in) with 10 environments, their 10 Argo CD applications,
    and a config naming them."""
    envs = [f"env{index}" for index in range(APPLICATIONS)]
    bare = stack.github_control.create_repo(GITOPS_REPO)
    repo = GitOpsRepo.create(workdir / "gitops", {env: "0000000" for env in envs}, bare=bare)
    host = stack.registry.url.split("://", 1)[-1]
    control = stack.argocd_control
    for env in envs:
        control.add_app(
            SimApp(
                name=f"bench-{env}",
                repo_path=str(repo.bare),
                images=(f"{host}/bench/web", f"{host}/bench/core-api"),
                values_file=f"environments/{env}/values.yaml",
                project=ARGOCD_PROJECT,
                multi_source=True,
                repo_url=f"https://github.com/{GITOPS_REPO}.git",
            )
        )
    control.close()
    data = stack.config_data()
    [app] = data["apps"].values()
    app["gitops"] = {**app.get("gitops", {}), "repo": GITOPS_REPO, "branch": "main"}
    app.update(
        images=["bench/web", "bench/core-api"],
        signature="none",
        environments={
            env: {"branch": "main", "argocd_app": f"bench-{env}", "argocd_project": ARGOCD_PROJECT} for env in envs
        },
    )
    data["apps"] = {"bench": app}
    path = workdir / "tagrelay-bench.yaml"
    with path.open("w") as stream:
        YAML().dump(data, stream)
    return path, repo


def seed(ties: bool, after: datetime) -> None:
    """50 committed deployments, straight into an empty ledger (what the promoter would have written),
    committed well after Argo CD last looked (so that no revision it reports can contain them)."""
    now = max(datetime.now(UTC), after + timedelta(minutes=1))
    for index in range(APPLICATIONS):
        for number in range(PER_APPLICATION):
            at = now - timedelta(seconds=0 if ties else PER_APPLICATION - number)
            record_deployment(f"env{index}", secrets.token_hex(4)[:7], secrets.token_hex(20), at)


def record_deployment(env: str, tag: str, gitops_commit: str, at: datetime) -> None:
    """One committed deployment in the ledger, as the promoter records it."""
    from tagrelay.adapters.store import Ledger
    from tagrelay.domain.records import DecisionRecord, new_decision_id, timestamp

    when = timestamp(at)
    Ledger(LEDGER_TABLE).record_decision(
        DecisionRecord(
            decision_id=new_decision_id(),
            app="bench",
            env=env,
            outcome="committed",
            reason="committed",
            message="bench",
            created_at=when,
            trigger="push",
            tag=tag,
            sha=tag,
            gitops_commit=gitops_commit,
            digests={"bench/web": "sha256:" + "0" * 64, "bench/core-api": "sha256:" + "1" * 64},
            status="COMMITTED",
            committed_at=when,
            pushed_at=when,
        )
    )


def measure(stack: LocalStack, runs: int, *, ties: bool) -> dict[str, Any]:
    from tagrelay import runtime
    from tagrelay.config import load_config

    tracker = runtime.build_tracker(load_config())
    control = stack.argocd_control
    timings: list[float] = []
    last: Any = None
    sim_log = 0
    for run in range(runs):
        if not ties or run == 0:
            stack.reset_ledger()
            seed(ties, control.now())
        control.clear_requests()
        started = time.perf_counter()
        last = tracker.run()
        timings.append((time.perf_counter() - started) * 1000)
        if last.error is not None:
            raise SystemExit(f"tracker run failed: {last.error}")
        sim_log = len(control.requests())
    control.close()
    timings.sort()
    writes = sum(1 for t in last.transitions if t.written)
    return {
        "p50_ms": statistics.median(timings),
        "p95_ms": timings[min(len(timings) - 1, round(0.95 * (len(timings) - 1)))],
        "argocd": last.argocd_requests,
        "sim_log": sim_log,
        "dynamodb": last.ledger_requests,
        "writes": writes,
        "transitions": len(last.transitions),
    }


def measure_lineage(stack: LocalStack, repo: GitOpsRepo) -> dict[str, Any]:
    """10 deployments whose commits a later docs commit contains; Argo CD synced that docs commit."""
    from tagrelay import runtime
    from tagrelay.config import load_config

    stack.reset_ledger()
    control, github = stack.argocd_control, stack.github_control
    start = control.now()
    for index in range(APPLICATIONS):
        tag = secrets.token_hex(4)[:7]
        commit = repo.set_tag(f"env{index}", tag)
        # The promoter commits one after the other, on the branch head.
        record_deployment(f"env{index}", tag, commit, start + timedelta(seconds=20 * index))
    repo.write_file("docs/README.md", f"# bench {secrets.token_hex(4)}\n", "docs: how to run the bench")
    control.tick(20 * APPLICATIONS + 1)
    control.settle()  # every application's poll sees the docs commit, which changes its tag: it syncs it
    tracker = runtime.build_tracker(load_config())
    github.clear_requests()
    control.clear_requests()
    started = time.perf_counter()
    first = tracker.run(control.now())
    elapsed = (time.perf_counter() - started) * 1000
    if first.error is not None:
        raise SystemExit(f"tracker run failed: {first.error}")
    github_log = sum(1 for entry in github.requests() if "/compare/" in entry["path"])
    again = tracker.run(control.now())
    control.close()
    return {
        "transitions": sum(1 for t in first.transitions if t.transition.state.value == "SUCCEEDED"),
        "github": first.github_requests,
        "github_log": github_log,
        "github_again": again.github_requests,
        "argocd": first.argocd_requests,
        "ms": elapsed,
    }


def cold_start() -> dict[str, Any]:
    """Import the handler in fresh interpreters; and which of its imports cost most (python -X importtime)."""
    env = {**os.environ, "POWERTOOLS_TRACE_DISABLED": "true"}
    code = f"import time; t = time.perf_counter(); import {HANDLER}; print((time.perf_counter() - t) * 1000)"
    runs = [
        float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True).stdout)
        for _ in range(5)
    ]
    trace = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", f"import {HANDLER}"],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    ).stderr
    # "import time: self [us] | cumulative | <indent>module": the handler's direct imports are one level in.
    rows = [
        (len(match.group(2)), match.group(3), int(match.group(1)) / 1000)
        for line in trace.splitlines()
        if (match := re.match(r"import time:\s+\d+ \|\s+(\d+) \|( *)(\S+)", line))
    ]
    heavy = sorted(((name, ms) for depth, name, ms in rows if depth <= 3), key=lambda row: row[1], reverse=True)
    return {"median_ms": statistics.median(runs), "runs_ms": runs, "top": heavy[:8]}


if __name__ == "__main__":
    sys.exit(main())
