"""Reconcile sweep benchmark on the local stack: requests and time per run.

    python -m bench.reconcile [--releases 25]

Figures, not thresholds. For the seed's shape (one app, two images, two environments; release tags
``<env>-<sha7>``, so that every lost release can still be promoted), it runs the sweep handler in
three situations and prints, per run, the requests to GitHub (the stand-in's request log), the
registry and the ECR API (the adapters' counts) and DynamoDB (the ledger's count), and the time:

* steady: every release decided, every environment in line with its values file;
* catching up: ``--releases`` releases whose completing event was lost (each promoted by the run,
  oldest first: the most expensive case; the cap ``reconcile.max_releases_per_run`` is set to the
  same number plus one), one release stuck waiting, and a hand edit of staging's values file;
* the run after: what is left once those are decided.

The budget the figures are checked against is in docs/operations.md ("The reconcile sweep").
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

from devstack.lambda_context import lambda_context
from devstack.scenario import SeedScenario
from devstack.stack import LocalStack
from tagrelay.domain.values_patch import set_value

PREFIXED = "^(?P<env>prod|staging)-(?P<sha>[0-9a-f]{7})$"
SCHEDULED = {"id": "bench-run", "detail-type": "Scheduled Event", "source": "aws.events", "detail": {}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.reconcile", description=__doc__.split("\n\n")[0])
    parser.add_argument("--releases", type=int, default=25, help="releases whose completing event is lost")
    args = parser.parse_args(argv)

    print("reconcile sweep benchmark (one app, two images, two environments; local stack)\n")
    with tempfile.TemporaryDirectory(prefix="tagrelay-bench-") as tmp, LocalStack.start(Path(tmp)) as stack:
        scenario = SeedScenario.create(stack, isolate_as="bench")
        config_path = scenario.write_config(
            tag_pattern=PREFIXED, extra={"reconcile": {"max_releases_per_run": args.releases + 1}}
        )
        with stack.environment(config_path):
            rows = runs(stack, scenario, args.releases)

    print(f"  {'run':<52}{'github':>8}{'registry':>10}{'ecr api':>9}{'dynamodb':>10}{'time':>10}")
    for label, github, registry, ecr, dynamodb, seconds in rows:
        print(f"  {label:<52}{github:>8}{registry:>10}{ecr:>9}{dynamodb:>10}{seconds * 1000:>8.0f} ms")
    (_, github0, registry0, _, dynamo0, _), (_, github, registry, _, dynamodb, _) = rows[0], rows[1]
    (_, github2, registry2, _, dynamo2, _) = rows[2]
    print(
        f"\nper promoted release ((catching up - the run after) / {args.releases}, the hand edit's few requests "
        f"included): GitHub {(github - github2) / args.releases:.1f}, "
        f"registry {(registry - registry2) / args.releases:.1f}, DynamoDB {(dynamodb - dynamo2) / args.releases:.1f}"
    )
    print(
        f"per waiting release (the run after minus steady): GitHub {github2 - github0}, registry "
        f"{registry2 - registry0}, DynamoDB {dynamo2 - dynamo0}"
    )
    return 0


def runs(stack: LocalStack, scenario: SeedScenario, releases: int) -> list[tuple[str, int, int, int, int, float]]:
    from tagrelay.handlers.promoter import handler as promote
    from tagrelay.handlers.reconciler import handler as reconcile

    rows: list[tuple[str, int, int, int, int, float]] = []

    def measure(label: str) -> dict[str, Any]:
        stack.github_control.clear_requests()
        started = time.perf_counter()
        result: dict[str, Any] = reconcile(SCHEDULED, lambda_context("reconciler"))
        elapsed = time.perf_counter() - started
        github = len(stack.github_control.requests())
        assert github == result["requests"]["github"], (github, result["requests"])
        counts = result["requests"]
        rows.append((label, github, counts["registry"], counts["ecr"], counts["dynamodb"], elapsed))
        return result

    for env, branch in (("prod", "main"), ("staging", "develop")):  # each environment runs a release
        sha = scenario.commit(branch)
        for event in scenario.release(sha, branch=None, tag=f"{env}-{sha[:7]}").events:
            promote(event, lambda_context("promoter"))
    measure("steady: nothing waiting, both environments in line")
    web, api = scenario.images
    for _ in range(releases):
        sha = scenario.commit("main")
        tag = f"prod-{sha[:7]}"
        for event in scenario.release(sha, branch=None, tag=tag, images=[web]).events:
            promote(event, lambda_context("promoter"))  # web's events arrive: the release waits
        scenario.release(sha, branch=None, tag=tag, images=[api])  # core-api's are lost
    sha = scenario.commit("main")
    for event in scenario.release(sha, branch=None, tag=f"prod-{sha[:7]}", images=[web]).events:
        promote(event, lambda_context("promoter"))  # core-api is never pushed: stuck
    path = "environments/staging/values.yaml"
    edited = set_value(scenario.values_file("staging").decode(), "global.imageTag", "hand-edit").text
    scenario.gitops.commit_files({path: edited}, "hotfix: staging by hand")
    result = measure(f"catching up: {releases} lost events, 1 stuck, 1 hand edit")
    promoted = sum(1 for r in result["releases"] if r["decision"] == "promote")
    assert promoted == releases and len(result["external_changes"]) == 1, result
    measure("the run after: 1 release still waiting")
    return rows


if __name__ == "__main__":
    raise SystemExit(main())
