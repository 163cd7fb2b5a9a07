"""Latency of the GitHub stand-in for the calls the promoter makes, and git processes spawned per call.

``python bench/github_standin_latency.py [--iterations 50] [--runs 3]``

Timing runs against the stand-in as the tests start it (its own process, ``start_github_standin``),
through PyGithub as the promoter configures it. Each run seeds fresh repositories, an application's
and a GitOps one, and repeats per iteration what a promotion asks: ``get_commit(short_sha)`` (reading
``.commit`` so the lazy object is fetched) and ``compare(a, "main").status`` on the application
repository, ``get_contents(path, ref="main")`` and ``update_file`` with the blob SHA just read on the
GitOps one. ``compare_new`` compares against the GitOps ``main``, which every ``update_file`` moves: a
pair of commits never compared before. It prints p50/p95 per call and run, then the median over runs.

Spawns are counted separately on a server built in this process (``build_server`` on a thread) with
``subprocess.Popen`` wrapped: the first request per call (which may start long-lived helpers) and the
steady state after it. Counting in-process keeps the timed server free of instrumentation.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import statistics
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from github import Auth, Github
from github.Repository import Repository

from devstack.github_standin import StandinControl, start_github_standin
from devstack.github_standin.config import StandinConfig
from devstack.github_standin.server import build_server
from devstack.gitrepo import GitWorkspace
from devstack.process import free_port

TOKEN = "bench-token"
VALUES = "environments/prod/values.yaml"
CALLS = ("get_commit", "compare", "get_contents", "update_file", "compare_new")


@dataclass
class Seeded:
    app: Repository
    gitops: Repository
    short_sha: str  # a commit on develop, as an ECR tag names it
    base_sha: str  # an older commit on main, for compare
    gitops_root: str  # the GitOps repository's first commit


def client(url: str) -> Github:
    return Github(
        auth=Auth.Token(TOKEN),
        base_url=url,
        lazy=True,
        retry=None,
        seconds_between_requests=None,
        seconds_between_writes=None,
    )


def seed(url: str, workdir: Path, name: str) -> Seeded:
    """An application repository (history on main, develop ahead of it) and a GitOps one (values files)."""
    control = StandinControl(url)
    app = GitWorkspace.create(control.create_repo(f"bench/{name}-app"), workdir / "clones" / f"{name}-app")
    base = app.commit_files({"src/app.py": "print('hello')\n", "README.md": "app\n"}, "feat: app")
    for number in range(1, 20):
        app.commit_files({"README.md": f"app {number}\n"}, f"docs {number}")
    app.create_branch("develop", "main")
    feature = app.commit_files({"src/app.py": "print('hello, world')\n"}, "feat: greet the world", branch="develop")
    gitops = GitWorkspace.create(control.create_repo(f"bench/{name}-gitops"), workdir / "clones" / f"{name}-gitops")
    files = {f"environments/{env}/values.yaml": f'global:\n  imageTag: "{env}-0"\n' for env in ("dev", "staging")}
    files.update({VALUES: 'global:\n  imageTag: "prod-0"\n', "README.md": "gitops\n"})
    root = gitops.commit_files(files, "seed: values files")
    github = client(url)
    return Seeded(
        github.get_repo(f"bench/{name}-app"), github.get_repo(f"bench/{name}-gitops"), feature[:7], base, root
    )


def one_iteration(seeded: Seeded, number: int, timed: Callable[[str, Callable[[], Any]], Any]) -> None:
    app, gitops = seeded.app, seeded.gitops
    timed("get_commit", lambda: app.get_commit(seeded.short_sha).commit)
    timed("compare", lambda: app.compare(seeded.base_sha, "main").status)
    content = timed("get_contents", lambda: gitops.get_contents(VALUES, ref="main"))
    assert not isinstance(content, list)
    text = f'global:\n  imageTag: "prod-{number}"\n'
    timed(
        "update_file", lambda: gitops.update_file(VALUES, f"deploy(prod): {number}", text, content.sha, branch="main")
    )
    timed("compare_new", lambda: gitops.compare(seeded.gitops_root, "main").status)


def time_run(url: str, workdir: Path, run: int, iterations: int) -> dict[str, list[float]]:
    seeded = seed(url, workdir, f"latency-{run}")
    samples: dict[str, list[float]] = {name: [] for name in CALLS}

    def timed(name: str, call: Callable[[], Any]) -> Any:
        started = time.perf_counter()
        result = call()
        samples[name].append((time.perf_counter() - started) * 1000)
        return result

    one_iteration(seeded, 0, lambda _name, call: call())  # warm-up: connections, helpers, caches
    for number in range(1, iterations + 1):
        one_iteration(seeded, number, timed)
    return samples


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


# -- spawn counting ---------------------------------------------------------------------------------


class _SpawnCounter:
    def __init__(self) -> None:
        self.count = 0
        self.argv: list[str] = []
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        original = subprocess.Popen
        counter = self

        class CountingPopen(original):  # type: ignore[misc, valid-type]
            def __init__(self, args: Any, *rest: Any, **options: Any) -> None:
                with counter._lock:
                    counter.count += 1
                    counter.argv.append(" ".join(str(part) for part in args[2:4]) if isinstance(args, list) else "?")
                super().__init__(args, *rest, **options)

        subprocess.Popen = CountingPopen  # type: ignore[misc]
        try:
            yield
        finally:
            subprocess.Popen = original  # type: ignore[misc]

    def take(self) -> tuple[int, list[str]]:
        with self._lock:
            taken = (self.count, self.argv)
            self.count, self.argv = 0, []
            return taken


def count_spawns(workdir: Path, iterations: int = 5) -> dict[str, tuple[int, int, list[str]]]:
    """Per call: spawns on its first request, steady-state spawns (median afterwards), their commands."""
    port = free_port()
    server = build_server(port, workdir / "inproc-repos", "", StandinConfig((TOKEN,)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    counter = _SpawnCounter()
    per_call: dict[str, list[tuple[int, list[str]]]] = {name: [] for name in CALLS}
    try:
        seeded = seed(url, workdir, "spawns")

        def counted(name: str, call: Callable[[], Any]) -> Any:
            counter.take()
            with counter.installed():
                result = call()
            per_call[name].append(counter.take())
            return result

        for number in range(iterations):
            one_iteration(seeded, number, counted)
    finally:
        server.shutdown()
        server.server_close()
    return {
        name: (found[0][0], int(statistics.median(n for n, _ in found[1:])), found[-1][1])
        for name, found in per_call.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--iterations", type=int, default=50)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="standin-bench-") as scratch:
        workdir = Path(scratch)
        with contextlib.redirect_stderr(io.StringIO()):  # the in-process server logs every request there
            spawns = count_spawns(workdir)
        print("git processes spawned per request (first request / steady state; steady-state commands):")
        for name, (first, steady, commands) in spawns.items():
            print(f"  {name:<13} {first:>3} / {steady:<3} {', '.join(commands)}")

        server = start_github_standin(workdir, tokens=(TOKEN,))
        try:
            p50s: dict[str, list[float]] = {name: [] for name in CALLS}
            p95s: dict[str, list[float]] = {name: [] for name in CALLS}
            print(f"\nlatency in ms over {args.iterations} iterations per run:")
            for run in range(args.runs):
                samples = time_run(server.url, workdir, run, args.iterations)
                figures = []
                for name in CALLS:
                    p50s[name].append(percentile(samples[name], 0.5))
                    p95s[name].append(percentile(samples[name], 0.95))
                    figures.append(f"{name} {p50s[name][-1]:.1f}/{p95s[name][-1]:.1f}")
                print(f"  run {run + 1} (p50/p95): " + "  ".join(figures))
            print(f"\nmedian over {args.runs} runs:")
            print(f"  {'call':<13} {'p50 ms':>8} {'p95 ms':>8}")
            for name in CALLS:
                print(f"  {name:<13} {statistics.median(p50s[name]):>8.1f} {statistics.median(p95s[name]):>8.1f}")
        finally:
            server.stop()


if __name__ == "__main__":
    main()
