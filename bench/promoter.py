"""Promoter benchmark on the local stack: requests per event, warm time per event, cold start, memory.

    python -m bench.promoter [--releases 20]

Figures, not thresholds (the machine is shared and noisy). What it measures:

* requests per event, by decision, for a two-image app with two environments: GitHub (the stand-in's
  request log), registry (the adapter's request count), ECR's API (the ECR stand-in's log: the tag
  mutability lookup), DynamoDB (the ledger's request count);
* warm time per event (p50/p95) over ``--releases`` releases whose six pieces arrive one by one
  (image tag, branch tag, signature for each image), so most events wait and one promotes;
* cold start: importing the handler module in a fresh interpreter (median of 5), and the heaviest imports;
* memory: peak RSS of a process that imports the handler and promotes one release (``/usr/bin/time -v``).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from devstack.events import ecr_push_event
from devstack.images import push_image, sign_image, tag_image
from devstack.scenario import SeedScenario
from devstack.stack import LocalStack
from tagrelay.domain.tags import signature_tag

REPO_ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.promoter", description=__doc__.split("\n\n")[0])
    parser.add_argument("--releases", type=int, default=20, help="releases to time (6 events each)")
    args = parser.parse_args(argv)

    print("promoter benchmark (two images, two environments, key-signed; local stack)\n")
    with tempfile.TemporaryDirectory(prefix="tagrelay-bench-") as tmp, LocalStack.start(Path(tmp)) as stack:
        scenario = SeedScenario.create(stack, isolate_as="bench")
        config_path = scenario.write_config()
        with stack.environment(config_path):
            stack.ecr_calls(clear=True)
            requests = requests_per_event(stack, scenario)
            timings = time_per_event(scenario, args.releases)
            describe = sum(1 for c in stack.ecr_calls() if c["operation"] == "DescribeRepositories")
            cold_process = fresh_process(stack)
    cold = cold_start()

    print("requests per event (budget: GitHub <= 5 per committed promotion and 0 per ignored event;")
    print("                    registry <= 3 per image + 1 per environment = 8 here;")
    print("                    ECR API <= 1 per repository per container per cache period)")
    print(f"  {'event':<44}{'decision':<22}{'github':>7}{'registry':>9}{'ecr':>5}{'dynamodb':>9}")
    for label, decision, github, registry, ecr, dynamodb in requests:
        print(f"  {label:<44}{decision:<22}{github:>7}{registry:>9}{ecr:>5}{dynamodb:>9}")
    promoted = [row for row in requests if row[1].startswith("promote")]
    ignored = [row for row in requests if row[1].startswith(("ignore", "reject (malformed"))]
    print(
        f"  budget check: GitHub per promotion {max((r[2] for r in promoted), default=0)} (<= 5), "
        f"per ignored/malformed event {max((r[2] for r in ignored), default=0)} (0)"
    )
    total_events = len(requests) + sum(len(v) for v in timings.values())
    print(
        f"  tag mutability: {describe} DescribeRepositories request(s) for {total_events} events of one warm "
        f"container (2 repositories, cache {runtime_cache_seconds()} s)"
    )

    print(f"\nwarm time per event over {args.releases} releases ({sum(len(v) for v in timings.values())} events)")
    every = [t for values in timings.values() for t in values]
    print(f"  {'all events':<24} p50 {percentile(every, 50):7.1f} ms   p95 {percentile(every, 95):7.1f} ms")
    for decision, values in sorted(timings.items()):
        print(
            f"  {decision:<24} p50 {percentile(values, 50):7.1f} ms   p95 {percentile(values, 95):7.1f} ms"
            f"   (n={len(values)})"
        )

    print(
        f"\ncold start: import tagrelay.handlers.promoter in a fresh interpreter: median {cold['median_ms']:.0f} ms "
        f"(runs: {', '.join(f'{v:.0f}' for v in cold['runs_ms'])} ms; aim < 800 ms)"
    )
    print("  its heaviest direct imports (cumulative, from python -X importtime):")
    for name, ms in cold["top"]:
        print(f"    {ms:7.1f} ms  {name}")
    print(
        "\na fresh process (a cold container): import "
        f"{cold_process['import_ms']:.0f} ms, first event (ignored) {cold_process['ignored_ms']:.0f} ms, "
        f"first accepted event ({cold_process['decision']}) {cold_process['first_accepted_ms']:.0f} ms"
    )
    print(f"memory: peak RSS of that process: {cold_process['peak_rss_mb']:.0f} MB")
    return 0


def runtime_cache_seconds() -> float:
    from tagrelay import runtime

    return runtime.config().limits.tag_mutability_cache_seconds


def requests_per_event(stack: LocalStack, scenario: SeedScenario) -> list[tuple[str, str, int, int, int, int]]:
    """Deliver one release's events in CI order and count each event's requests to every system."""
    from devstack.lambda_context import lambda_context
    from tagrelay import runtime
    from tagrelay.handlers.promoter import handler

    promoter = runtime.promoter()
    ledger = promoter.deps.ledger
    app = promoter.config.apps["mosaic-life"]
    registry = promoter.deps.registry_for(app)
    rows = []

    def measure(label: str, event: dict[str, Any]) -> None:
        stack.github_control.clear_requests()
        registry_before, ledger_before = registry.request_count, ledger.request_count
        ecr_before = len(stack.ecr_calls())
        result = handler(event, lambda_context("promoter"))
        github = len(stack.github_control.requests())
        rows.append(
            (
                label,
                f"{result['decision']} ({result['reason'][:12]})",
                github,
                registry.request_count - registry_before,
                len(stack.ecr_calls()) - ecr_before,
                ledger.request_count - ledger_before,
            )
        )

    web, api = scenario.images
    release_pieces(
        scenario,
        scenario.commit("main", "bench: warm-up"),
        deliver=lambda _label, e: handler(e, lambda_context("promoter")),
    )  # so the environment holds a release and the order check runs
    sha = scenario.commit("main", "bench: release")
    pieces, digests = release_pieces(scenario, sha, deliver=measure)
    measure("duplicate of the last event", pieces[-1][1])
    measure("ignored: latest", ecr_push_event(web, "latest", digests[web]))
    measure("ignored: DELETE", ecr_push_event(web, sha[:7], digests[web], action="DELETE"))
    malformed = ecr_push_event(api, sha[:7])
    malformed["detail"]["image-digest"] = "sha256:xyz"
    measure("malformed: bad digest", malformed)
    return rows


def release_pieces(
    scenario: SeedScenario, sha: str, *, deliver: Callable[[str, dict[str, Any]], Any]
) -> tuple[list[tuple[str, dict[str, Any]]], dict[str, str]]:
    """Push a release piece by piece like CI (each image with its tags, then the signatures), delivering
    each piece's event as soon as the piece has landed."""
    registry = scenario.stack.registry.url
    tag = sha[:7]
    events: list[tuple[str, dict[str, Any]]] = []
    digests: dict[str, str] = {}

    def arrive(label: str, event: dict[str, Any]) -> None:
        events.append((label, event))
        deliver(label, event)

    for image in scenario.images:
        name = image.split("/")[-1]
        digest = digests[image] = push_image(registry, image, [tag], content=f"{image}@{sha}".encode())
        arrive(f"{name}:{tag} (release tag)", ecr_push_event(image, tag, digest))
        tag_image(registry, image, digest, "main")
        arrive(f"{name}:main (branch tag)", ecr_push_event(image, "main", digest))
    for image in scenario.images:
        signed = sign_image(registry, image, digests[image], scenario.signer, annotations={"git-sha": sha})
        arrive(
            f"{image.split('/')[-1]}:sha256-….sig (signature)",
            ecr_push_event(image, signature_tag(digests[image]), signed),
        )
    return events, digests


def time_per_event(scenario: SeedScenario, releases: int) -> dict[str, list[float]]:
    from devstack.lambda_context import lambda_context
    from tagrelay.handlers.promoter import handler

    timings: dict[str, list[float]] = defaultdict(list)
    for number in range(releases):
        sha = scenario.commit("main", f"bench: release {number}")
        # Pieces are pushed as they arrive: each event is timed right after its piece lands.
        registry = scenario.stack.registry.url
        tag = sha[:7]
        for image in scenario.images:
            digest = push_image(registry, image, [tag], content=f"{image}@{sha}".encode())
            timed(handler, ecr_push_event(image, tag, digest), timings, lambda_context)
            tag_image(registry, image, digest, "main")
            timed(handler, ecr_push_event(image, "main", digest), timings, lambda_context)
            signed = sign_image(registry, image, digest, scenario.signer, annotations={"git-sha": sha})
            timed(handler, ecr_push_event(image, signature_tag(digest), signed), timings, lambda_context)
    return timings


def timed(handler: Any, event: dict[str, Any], timings: dict[str, list[float]], context: Any) -> None:
    started = time.perf_counter()
    result = handler(event, context("promoter"))
    timings[result["decision"]].append((time.perf_counter() - started) * 1000)


def percentile(values: list[float], pct: int) -> float:
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[pct - 1]


def cold_start() -> dict[str, Any]:
    code = (
        "import time; started = time.perf_counter(); import tagrelay.handlers.promoter; "
        "print((time.perf_counter() - started) * 1000)"
    )
    env = {**os.environ, "POWERTOOLS_TRACE_DISABLED": "true"}
    runs = [
        float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True).stdout)
        for _ in range(5)
    ]
    trace = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import tagrelay.handlers.promoter"],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    ).stderr
    entries = []
    for line in trace.splitlines():
        match = re.match(r"import time:\s+\d+ \|\s+(\d+) \|( *)(\S+)", line)
        if match:
            entries.append((len(match.group(2)), match.group(3), int(match.group(1)) / 1000))
    # importtime prints a module's imports (two spaces deeper) before the module's own line.
    handler_at = next(i for i, (_, name, _) in enumerate(entries) if name == "tagrelay.handlers.promoter")
    depth = entries[handler_at][0]
    first = max((i for i in range(handler_at) if entries[i][0] <= depth), default=-1) + 1
    top = [(name, ms) for d, name, ms in entries[first:handler_at] if d == depth + 2]
    top.sort(key=lambda item: item[1], reverse=True)
    return {"median_ms": statistics.median(runs), "runs_ms": runs, "top": top[:8]}


def fresh_process(stack: LocalStack) -> dict[str, Any]:
    """A new interpreter, like a cold Lambda container: import the handler, then an ignored event, then a
    release's events. Reports each step's time and the peak RSS (``/usr/bin/time -v``)."""
    scenario = SeedScenario.create(stack, isolate_as="bench-cold")
    sha = scenario.commit("main", "bench: cold start")
    release = scenario.release(sha)
    events_file = stack.workdir / "cold-events.json"
    events_file.write_text(json.dumps(release.events))
    script = f"""
import json, time
started = time.perf_counter()
from tagrelay.handlers.promoter import handler
from devstack.events import ecr_push_event
from devstack.lambda_context import lambda_context
imported = time.perf_counter()
handler(ecr_push_event({scenario.images[0]!r}, "latest"), lambda_context("promoter"))
ignored = time.perf_counter()
events = json.load(open({str(events_file)!r}))
result = handler(events[0], lambda_context("promoter"))
accepted = time.perf_counter()
print(json.dumps({{"import_ms": (imported - started) * 1000, "ignored_ms": (ignored - imported) * 1000,
                  "first_accepted_ms": (accepted - ignored) * 1000, "decision": result["decision"]}}))
"""
    env = {**os.environ, "TAGRELAY_CONFIG": str(scenario.write_config())}
    result = subprocess.run(
        ["/usr/bin/time", "-v", sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env=env,
        check=True,
        cwd=REPO_ROOT,
    )
    figures: dict[str, Any] = json.loads(
        next(line for line in result.stdout.splitlines() if line.startswith('{"import_ms"'))
    )
    match = re.search(r"Maximum resident set size \(kbytes\): (\d+)", result.stderr)
    figures["peak_rss_mb"] = int(match.group(1)) / 1024 if match else float("nan")
    return figures


if __name__ == "__main__":
    sys.exit(main())
