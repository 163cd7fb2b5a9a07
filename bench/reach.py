"""Reach benchmark on the local stack: GitHub requests per promotion with notifications on, and with
pull-request write-back; requests per tracked state with GitHub Deployments on.

    python -m bench.reach

Figures, not thresholds. Each promotion is one signed two-image release delivered event by event to
the promoter handler; the GitHub stand-in's request log is split at the commit (PUT contents, or the
pull request's merge) within the invocation that promotes, so that "before the commit" is the
promotion's critical path. Budget (issue
#13): a notification adds no request before the commit.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from devstack.lambda_context import lambda_context
from devstack.scenario import SeedScenario
from devstack.stack import LocalStack
from devstack.webhook_listener import WebhookListener

MODES: dict[str, dict[str, Any]] = {
    "commit, no notifications": {},
    "commit, GitHub Deployments + 2 webhooks": {"notifications": True},
    "pull request (merged at once)": {"gitops": {"write": "pull_request"}},
    "pull request + notifications": {"gitops": {"write": "pull_request"}, "notifications": True},
}


def main() -> int:
    print("GitHub requests per promotion (two images, one environment; local stack)\n")
    rows = []
    with tempfile.TemporaryDirectory(prefix="tagrelay-bench-") as tmp, LocalStack.start(Path(tmp)) as stack:
        listener = WebhookListener()
        try:
            for number, (label, mode) in enumerate(MODES.items()):
                rows.append((label, *measure(stack, listener, f"reach{number}", mode)))
        finally:
            listener.close()
    print("  (the invocation that promotes; the release's other events are the same in every mode)")
    print(f"  {'mode':<42}{'before commit':>14}{'after commit':>14}{'webhook posts':>15}")
    for label, before, after, posts in rows:
        print(f"  {label:<42}{before:>14}{after:>14}{posts:>15}")
    baseline, notified = rows[0][1], rows[1][1]
    verdict = "holds" if notified == baseline else "BROKEN"
    print(
        f"\nbudget: notifications add no request before the commit: {baseline} without, {notified} with ({verdict})."
        "\nafter the commit, GitHub Deployments cost 3 (find, create, in_progress status); each state the tracker"
        "\nrecords later costs 2 (find, status), outside the promotion."
    )
    return 0 if verdict == "holds" else 1


def measure(stack: LocalStack, listener: WebhookListener, name: str, mode: dict[str, Any]) -> tuple[int, int, int]:
    from tagrelay import runtime

    scenario = SeedScenario.create(stack, isolate_as=name)
    extra: dict[str, Any] = {}
    if mode.get("notifications"):
        secrets = stack.aws_client("secretsmanager")
        for hook in ("json", "slack"):
            secrets.create_secret(Name=f"bench/{name}/{hook}", SecretString=listener.url(f"/{name}/{hook}"))
        extra["notifications"] = {
            "github_deployments": True,
            "webhooks": [
                {"name": "json", "url_secret": f"bench/{name}/json"},
                {"name": "slack", "url_secret": f"bench/{name}/slack", "format": "slack"},
            ],
        }
    config_path = scenario.write_config(extra=extra, gitops=mode.get("gitops", {}))
    with stack.environment(config_path):
        runtime.config.cache_clear()
        runtime.promoter.cache_clear()
        from tagrelay.handlers.promoter import handler

        release = scenario.release(scenario.commit("main"), branch="main")
        control = stack.github_control
        log: list[tuple[str, str]] = []
        for event in release.events:
            control.clear_requests()
            if deliver(handler, event) == "promote":
                log = [(entry["method"], entry["path"]) for entry in control.requests()]
        assert log, "no event promoted the release"
    commit_at = next(i for i, (method, path) in enumerate(log) if is_commit(method, path, mode))
    posts = len(listener.messages(f"/{name}/json")) + len(listener.messages(f"/{name}/slack"))
    return commit_at + 1, len(log) - commit_at - 1, posts


def is_commit(method: str, path: str, mode: dict[str, Any]) -> bool:
    if mode.get("gitops", {}).get("write") == "pull_request":
        return method == "PUT" and path.endswith("/merge")
    return method == "PUT" and "/contents/" in path


def deliver(handler: Callable[..., Any], event: dict[str, Any]) -> str:
    return str(handler(event, lambda_context("promoter"))["decision"])


if __name__ == "__main__":
    raise SystemExit(main())
