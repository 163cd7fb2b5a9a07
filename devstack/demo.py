"""`make demo`: the promotion pipeline end to end on the local stack.

1. Start the local stack: the Debian registry, moto server (DynamoDB, Secrets Manager), the GitHub
   stand-in backed by real git repositories, the Argo CD simulator (wall clock, ~100x faster).
2. Create the seed's source repository (commits on main and develop) and GitOps repository (the
   seed's real values files), and the Argo CD applications that deploy them.
3. CI's work: push web and core-api with their short-SHA and branch tags, and sign them with cosign.
4. Deliver the ECR events to the promoter Lambda handler in shuffled order, with a duplicate.
5. Show the GitOps commit (git log -p of the values file), the ledger, and the rejected cases: an
   unsigned image, a wrong signer, a repository whose release tags are mutable (`tags_mutable`, with
   the command that fixes it) and a promoted tag pushed again with another image (`tag_moved`).
6. Argo CD syncs; the tracker Lambda handler records each outcome (prod SUCCEEDED, staging DEGRADED:
   its tag is marked bad in the simulator).
7. Where people already look: each deployment's GitHub deployment on the source repository, with a
   status per state, and the messages a Slack-compatible webhook (a local listener) received.
8. The backstops: a release whose completing events are lost is promoted by the reconcile sweep, and
   a hand edit of a values file is recorded as an external change; then `tagrelay history` and
   `tagrelay status`.
9. A kustomize-based app: its overlay's images: entries get newTag and the digest in one commit.

Run with ``python -m devstack.demo [--keep]``; ``--keep`` leaves the stack's files for inspection.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import itertools
import random
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from devstack.events import ecr_push_event
from devstack.images import CosignKeySigner, push_image, tag_image
from devstack.lambda_context import lambda_context
from devstack.scenario import RELEASE_EXCLUSIONS, Release, SeedScenario, set_tag_mutability
from devstack.sigstore_testing import demo_sigstore
from devstack.stack import LEDGER_TABLE, LocalStack
from devstack.webhook_listener import WebhookListener

_TTY = sys.stdout.isatty()
BOLD, DIM, GREEN, RED, YELLOW, RESET = (
    ("\033[1m", "\033[2m", "\033[32m", "\033[31m", "\033[33m", "\033[0m") if _TTY else ("",) * 6
)
COLOURS = {"promote": GREEN, "reject": RED, "wait": YELLOW, "noop": DIM, "superseded": YELLOW}
# The example configuration's applications; the simulator serves them from the seed's GitOps repository.
ARGOCD_APPS = {"prod": "mosaic-life-prod", "staging": "mosaic-life-staging"}
FAILED_STATES = ("DEGRADED", "SYNC_FAILED", "TIMED_OUT")
TRACKER_INTERVAL_SECONDS = 0.5  # the real schedule is every minute; Argo CD here is ~100x faster
TRACKING_PATIENCE_SECONDS = 15.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack.demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--keep", action="store_true", help="keep the stack's working directory")
    args = parser.parse_args(argv)
    started = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="tagrelay-demo-"))
    log_path = workdir / "promoter.log"
    try:
        _demo(workdir, log_path)
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    kept = f"; files kept in {workdir}" if args.keep else ""
    print(f"\n{BOLD}done in {time.monotonic() - started:.1f} s{RESET}; every server stopped{kept}.")
    return 0


def _demo(workdir: Path, log_path: Path) -> None:  # noqa: PLR0915 - the demo's steps, in the order it prints them
    step(1, "starting the local stack")
    with LocalStack.start(workdir, argocd_manual_clock=False) as stack:
        for server in stack.servers:
            detail(f"{server.name:<16} {server.url}  (pid {server.pid})")

        step(2, "creating the seed's repositories")
        # The seed signs keyless from GitHub Actions; the demo runs its own Sigstore (Fulcio CA, Rekor
        # log, CT log) and trusts it, with the seed's workflow identity bound to each release's commit.
        scenario = SeedScenario.create(stack, sigstore=demo_sigstore(workdir))
        prod_sha = scenario.commit("main", "feat(web): faster story timeline")
        staging_sha = scenario.commit("develop", "feat(api): story export endpoint")
        detail(f"{scenario.source_repo}: main at {prod_sha[:7]}, develop at {staging_sha[:7]}")
        detail(
            f"{scenario.gitops_repo}: environments/prod/values.yaml and environments/staging/values.yaml "
            "(the seed's files, byte for byte)"
        )
        listener = WebhookListener()
        stack.aws_client("secretsmanager").create_secret(Name="demo/chat-webhook", SecretString=listener.url("/chat"))
        config_path = scenario.write_config(
            extra={
                "notifications": {
                    "github_deployments": True,
                    "webhooks": [{"name": "chat", "url_secret": "demo/chat-webhook", "format": "slack"}],
                }
            }
        )
        detail(f"configuration: examples/mosaic-life.yaml with local endpoints -> {config_path}")
        detail(
            "notifications: GitHub deployments on the source repository, and a Slack-compatible webhook "
            f"(a local listener, {listener.url('/chat')}; its URL is a Secrets Manager secret)"
        )
        stack.register_argocd_apps(scenario.gitops_repo, scenario.images, ARGOCD_APPS)
        stack.argocd_control.mark(staging_sha[:7], "degraded")
        detail(
            f"Argo CD (the simulator, ~100x faster): {', '.join(ARGOCD_APPS.values())} follow the values files; "
            f"staging's build {staging_sha[:7]} is marked bad (its pods will never become ready)"
        )

        with stack.environment(config_path), lambda_logs(log_path):
            from tagrelay.handlers.promoter import handler

            step(3, "CI pushes and signs two releases (short-SHA tag + branch tag, keyless cosign signatures)")
            prod = scenario.release(prod_sha, branch="main")
            staging = scenario.release(staging_sha, branch="develop")
            for release, branch in ((prod, "main"), (staging, "develop")):
                for image, digest in release.digests.items():
                    layout = "cosign v3 bundle" if image == scenario.images[-1] else "cosign .sig"
                    detail(f"{image}:{release.tag}  {digest[:19]}…  signed keyless ({layout}), refs/heads/{branch}")

            step(4, "delivering the ECR events to the promoter handler, shuffled, with a duplicate")
            events = [*prod.events, *staging.events, prod.events[0]]
            random.Random(2026).shuffle(events)
            for number, event in enumerate(events, 1):
                result = _invoke(handler, event)
                detail(f"{number:>2}. {_event_label(event):<58} -> {_decision(result)}")

            step(5, "the GitOps commits (git log -p of the values files)")
            for env in ("prod", "staging"):
                print(
                    _indent(scenario.gitops.log("main", path=f"environments/{env}/values.yaml").split("\ncommit ")[0])
                )

            step(6, "rejected and held-back cases")
            _rejections(scenario, handler)
            _integrity_cases(scenario, handler, prod)

            step(7, f"the ledger (DynamoDB table {LEDGER_TABLE})")
            _print_ledger()

            step(8, "Argo CD syncs; the tracker Lambda records how each deployment ended")
            _track(stack)

            step(9, "a prod release on its own: promoted, nudged, synced, tracked")
            hotfix = scenario.release(scenario.commit("main", "fix(web): timeline paging"), branch="main")
            decisions = [_invoke(handler, event)["decision"] for event in hotfix.events]
            detail(
                f"{hotfix.tag}: {_colour('promote')}{decisions.count('promote')} commit{RESET}; Argo CD asked to refresh"
            )
            _track(stack)

            step(10, "where people already look: GitHub deployments and the chat webhook")
            _notifications(stack, scenario, listener)

            step(11, "the backstops: a lost event recovered, a hand edit recorded (the reconcile sweep)")
            _backstops(scenario, handler)
            _track(stack)

            step(12, "tagrelay history, then tagrelay status (GitOps vs Argo CD vs the running images)")
            _cli("history")
            _cli("status")

            step(13, "a kustomize-based app: newTag and digest pinned in one commit")
            _kustomize_app(stack, config_path, handler)
        listener.close()
        detail(f"the promoter's JSON logs and EMF metrics: {log_path}")


def _track(stack: LocalStack) -> None:
    """Run the tracker as its schedule would (every few seconds of accelerated time) until nothing is in flight."""
    from tagrelay.handlers.tracker import handler as tracker

    control = stack.argocd_control
    for name in ARGOCD_APPS.values():
        app = control.app(name)
        detail(f"Argo CD {name}: {app['sync_status']}, {app['health']}, runs {app['deployed_tag']}")
    deadline = time.monotonic() + TRACKING_PATIENCE_SECONDS
    for run in itertools.count(1):
        scheduled = {"id": f"demo-run-{run}", "detail-type": "Scheduled Event", "source": "aws.events"}
        result = _invoke(tracker, scheduled, "tracker")
        moved = [t for t in result["transitions"] if t["written"]]
        for t in moved:
            colour = GREEN if t["to"] == "SUCCEEDED" else (RED if t["to"] in FAILED_STATES else YELLOW)
            detail(
                f"run {run}: {t['env']:<8} {t['tag']}  {t['from']} -> {colour}{t['to']}{RESET}: {_short(t['reason'], 90)}"
            )
        still = result["in_flight"] - sum(1 for t in moved if t["to"] not in ("COMMITTED", "SYNCING"))
        if not moved:
            detail(f"run {run}: {result['in_flight']} in flight, no change (nothing written)")
        if still <= 0 or time.monotonic() > deadline:
            detail(
                f"each run: 1 DynamoDB query + 1 write per change; {result['argocd_requests']} Argo CD request(s) "
                "(one per application in flight)"
            )
            return
        time.sleep(TRACKER_INTERVAL_SECONDS)


def _backstops(scenario: SeedScenario, handler: Any) -> None:
    """A release whose last events EventBridge never delivers, and someone editing staging by hand; one
    run of the reconcile sweep (every 10 minutes in AWS) finds both."""
    from tagrelay.domain.values_patch import set_value
    from tagrelay.handlers.reconciler import handler as reconciler

    web, api = scenario.images
    sha = scenario.commit("main", "feat(web): story reactions")
    first = scenario.release(sha, branch="main", images=[web])
    decisions = {_invoke(handler, event)["decision"] for event in first.events}
    detail(f"{web}:{first.tag} pushed and signed, its {len(first.events)} events delivered -> {', '.join(decisions)}")
    rest = scenario.release(sha, branch="main", images=[api])
    detail(
        f"{api}:{first.tag} pushed and signed, its {len(rest.events)} events {RED}lost{RESET} (delivery is best effort)"
    )
    path = "environments/staging/values.yaml"
    running = scenario.values_file("staging").decode()
    hand = scenario.gitops.commit_files(
        {path: set_value(running, "global.imageTag", "staging-545ef16").text},
        "hotfix(staging): back to the known-good build by hand",
    )
    detail(f"someone edits {path} by hand and pushes: commit {hand[:7]}, back to staging-545ef16")
    scheduled = {"id": "demo-sweep", "detail-type": "Scheduled Event", "source": "aws.events", "detail": {}}
    result = _invoke(reconciler, scheduled, "reconciler")
    for release in result["releases"]:
        outcome = {"decision": release["decision"], "reason": release["reason"]}
        detail(f"sweep: {release['app']}:{release['tag']} (waiting since its first event) -> {_decision(outcome)}")
    for change in result["external_changes"]:
        detail(f"sweep: {change['env']}: {YELLOW}external_change{RESET}: {_short(change['message'], 160)}")
    requests = ", ".join(f"{n} {system}" for system, n in result["requests"].items())
    detail(f"one run: {requests} requests; no tag listing, no table scan")


def _notifications(stack: LocalStack, scenario: SeedScenario, listener: WebhookListener) -> None:
    """The GitHub stand-in's deployments of the source repository, with their statuses, and the chat messages."""
    import requests

    from devstack.stack import GITHUB_TOKEN

    def get(path: str) -> Any:
        answer = requests.get(
            f"{stack.github.url}/repos/{scenario.source_repo}{path}",
            headers={"Authorization": f"token {GITHUB_TOKEN}"},
            timeout=10,
        )
        answer.raise_for_status()
        return answer.json()

    for deployment in reversed(get("/deployments")):
        statuses = [status["state"] for status in reversed(get(f"/deployments/{deployment['id']}/statuses"))]
        colour = GREEN if statuses[-1:] == ["success"] else (RED if statuses[-1:] in (["failure"], ["error"]) else DIM)
        detail(
            f"GitHub deployment {deployment['id']}: {deployment['environment']:<8} {deployment['sha'][:7]} "
            f"(GitOps commit {str(deployment['payload'].get('gitops_commit'))[:7]}): "
            f"{colour}{' -> '.join(statuses)}{RESET}"
        )
    messages = listener.messages("/chat")
    detail(f"the chat webhook received {len(messages)} messages, e.g.:")
    for message in messages[-3:]:
        detail(f"  {DIM}{_short(message['text'], 140)}{RESET}")


def _kustomize_app(stack: LocalStack, config_path: Path, handler: Any) -> None:
    """A second app, deployed with kustomize: its overlay's images: entries get newTag and digest."""
    from ruamel.yaml import YAML

    from tagrelay import runtime

    shop = SeedScenario.create(stack, isolate_as="shop")
    registry = stack.registry.url.split("://", 1)[1]
    path = "environments/prod/kustomization.yaml"
    overlay = "".join(
        [
            "# prod overlay of the shop\n",
            "resources:\n  - ../../base\n",
            "images:\n",
            *(
                f'  - name: {registry}/{image}\n    newTag: "prod-0000000"  # set by tagrelay\n'
                for image in shop.images
            ),
        ]
    )
    shop.gitops.commit_files({path: overlay}, "chore: kustomize overlay")
    yaml = YAML()
    data = yaml.load(config_path.read_text())
    data["apps"]["shop"] = {
        "source_repo": shop.source_repo,
        "registry": data["apps"]["mosaic-life"]["registry"],
        "images": list(shop.images),
        "gitops": {"repo": shop.gitops_repo, "format": "kustomize", "pin_digests": True},
        "environments": {"prod": {"branch": "main"}},
        "signature": shop.signature_config,
        "ecr": dict(data["apps"]["mosaic-life"]["ecr"]),
    }
    with config_path.open("w") as stream:
        yaml.dump(data, stream)
    runtime.config.cache_clear()
    runtime.promoter.cache_clear()
    detail(f"app shop: {', '.join(shop.images)}; {shop.gitops_repo}:{path}, gitops.format kustomize, pin_digests")
    release = shop.release(shop.commit("main", "feat(shop): checkout"), branch="main")
    decisions = [_invoke(handler, event)["decision"] for event in release.events]
    detail(f"{release.tag}: {_colour('promote')}{decisions.count('promote')} commit{RESET}")
    print(_indent(shop.gitops.log("main", path=path).split("\ncommit ")[0]))


def _cli(*argv: str) -> None:
    from tagrelay.cli.main import main

    print(f"  {DIM}$ tagrelay {' '.join(argv)}{RESET}")
    output = io.StringIO()
    with contextlib.redirect_stdout(output):
        main(list(argv))
    print(_indent(output.getvalue()))


def _rejections(scenario: SeedScenario, handler: Any) -> None:
    unsigned_sha = scenario.commit("main", "fix(web): hotfix built outside CI")
    unsigned = scenario.release(unsigned_sha, branch="main", sign=False)
    print(f"  {BOLD}an unsigned image{RESET} ({unsigned.tag}: pushed with tags, never signed)")
    result = _deliver_all(handler, unsigned)
    detail(f"when pushed      -> {_decision(result)}: {_short(result['message'])}")
    later = _twenty_minutes_later(scenario, unsigned)
    detail(f"20 minutes later -> {_decision(later)}: ...{later['message'][-60:]}")

    forged_sha = scenario.commit("main", "feat: signed with someone else's key")
    forged = scenario.release(forged_sha, branch="main", signer=CosignKeySigner.generate())
    print(f"  {BOLD}an image signed with a key, not by the seed's keyless identity{RESET} ({forged.tag})")
    result = _deliver_all(handler, forged)
    detail(f"-> {_decision(result)}: {_short(result['message'])}")
    value = scenario.values_file("prod").decode().splitlines()[1].strip()
    detail(f"prod still runs {value}; nothing was committed for either")


def _integrity_cases(scenario: SeedScenario, handler: Any, promoted: Release) -> None:
    """Release tags must stay on the digests tagrelay verified (docs/integrity.md)."""
    from tagrelay import runtime
    from tagrelay.services.report import report

    web, api = scenario.images
    ecr = scenario.stack.ecr_client()
    settings = ecr.describe_repositories(repositoryNames=[web])["repositories"][0]
    filters = ", ".join(f["filter"] for f in settings.get("imageTagMutabilityExclusionFilters", []))
    print(f"  {BOLD}release tags must be immutable{RESET} (ECR: {settings['imageTagMutability']}, exempting {filters})")
    set_tag_mutability(scenario.stack, api, "MUTABLE")  # someone relaxes the repository
    mutable = scenario.release(scenario.commit("main", "feat(api): pushed to a mutable repository"), branch="main")
    # A fresh container: its tag-mutability cache starts empty (the warm one caches for 5 minutes).
    fresh = runtime.build_promoter(runtime.config())
    results = [report(fresh.process(event)) for event in mutable.events]
    result = next(r for r in results if r["decision"] == "reject")
    detail(f"{api} made MUTABLE -> {_decision(result)}: {_short(result['message'], 120)}")
    command = result["message"].split("fix: ", 1)[1].split(". Or accept", 1)[0]
    detail(f"the fix it prints: {DIM}{command}{RESET}")
    set_tag_mutability(scenario.stack, api, "IMMUTABLE_WITH_EXCLUSION", RELEASE_EXCLUSIONS)

    print(f"  {BOLD}a promoted tag pushed again with another image{RESET} ({web}:{promoted.tag})")
    swapped = push_image(scenario.stack.registry.url, web, [promoted.tag], content=b"an image nobody verified")
    result = _invoke(handler, ecr_push_event(web, promoted.tag, swapped))
    detail(
        f"-> {_decision(result)}: promoted as {promoted.digests[web][:19]}…, now {swapped[:19]}…; alarm ReleaseTagMoved"
    )
    tag_image(scenario.stack.registry.url, web, promoted.digests[web], promoted.tag)  # restored, by hand


def _twenty_minutes_later(scenario: SeedScenario, release: Release) -> dict[str, Any]:
    """Evaluate a late event of the unsigned release with the promoter's clock 20 minutes ahead."""
    from tagrelay import runtime
    from tagrelay.services.report import report

    promoter = runtime.build_promoter(runtime.config())
    promoter.deps.clock = lambda: datetime.now(UTC) + timedelta(minutes=20)
    return report(promoter.process(release.events_of("branch")[0]))


def _short(message: str, limit: int = 150) -> str:
    first = message.split("; ", maxsplit=1)[0]
    return first if len(first) <= limit else first[: limit - 1] + "…"


def _deliver_all(handler: Any, release: Release) -> dict[str, Any]:
    results = [_invoke(handler, event) for event in release.events]
    deciding = [r for r in results if r["decision"] not in ("wait", "noop")]
    return deciding[-1] if deciding else results[-1]


def _invoke(handler: Any, event: dict[str, Any], function: str = "promoter") -> dict[str, Any]:
    result: dict[str, Any] = handler(event, lambda_context(function))
    return result


def _print_ledger() -> None:
    from tagrelay.adapters.store import Ledger

    ledger = Ledger(LEDGER_TABLE)
    header = f"  {'env':<11}{'outcome':<11}{'reason':<24}{'tag':<9}{'commit':<9}{'gitops':<9}signer"
    print(DIM + header + RESET)
    for env in ("prod", "staging", "unresolved"):
        shown = [
            r
            for r in reversed(ledger.history("mosaic-life", env, limit=50).records)
            if r.outcome not in ("waiting", "noop")
        ]
        # Every event of a bad release re-evaluates it and records the same rejection: show them once.
        for (outcome, reason, tag), group in itertools.groupby(shown, key=lambda r: (r.outcome, r.reason, r.tag)):
            records = list(group)
            record = records[0]
            signer = next(iter(record.signers.values()), "-")[:30]
            times = f" x{len(records)}" if len(records) > 1 else ""
            print(
                f"  {env:<11}{_colour(outcome)}{outcome:<11}{RESET}{reason + times:<24}"
                f"{tag or '-':<9}{(record.full_sha or '-')[:7]:<9}{(record.gitops_commit or '-')[:7]:<9}{signer}"
            )
    waits = sum(
        1
        for env in ("prod", "staging", "unresolved")
        for r in ledger.history("mosaic-life", env, limit=100).records
        if r.outcome in ("waiting", "noop")
    )
    detail(f"(+ {waits} transient 'waiting'/'noop' records: the events that arrived before a release was complete)")


def _event_label(event: dict[str, Any]) -> str:
    detail_ = event["detail"]
    tag = detail_["image-tag"]
    if tag.startswith("sha256-"):  # cosign .sig tag, or the referrers index of cosign v3 bundles
        tag = tag[:17] + ("….sig" if tag.endswith(".sig") else "… (bundle index)")
    return f"{detail_['repository-name']}:{tag}"


def _decision(result: dict[str, Any]) -> str:
    decision = result["decision"]
    return f"{_colour(decision)}{decision}{RESET} ({result['reason']})"


def _colour(word: str) -> str:
    key = {"committed": "promote", "rejected": "reject", "waiting": "wait"}.get(word, word)
    return COLOURS.get(key, "")


@contextlib.contextmanager
def lambda_logs(log_path: Path) -> Iterator[None]:
    """Send the handler's JSON logs and EMF metrics to a file, so the demo's output stays readable."""
    import logging

    with log_path.open("w") as log, contextlib.redirect_stdout(_Tee(sys.stdout, log)):
        logging.getLogger("tagrelay").propagate = False
        yield


class _Tee(io.TextIOBase):
    """stdout for the demo's own prints; JSON lines (logs, metrics) go to the log file."""

    def __init__(self, terminal: Any, log: Any) -> None:
        self.terminal, self.log = terminal, log
        self.last = terminal

    def write(self, text: str) -> int:
        # print() writes the line and its newline separately: the newline follows its line.
        target = self.last if text == "\n" else (self.log if text.startswith("{") else self.terminal)
        target.write(text)
        self.last = target
        return len(text)

    def flush(self) -> None:
        self.terminal.flush()
        self.log.flush()


def step(number: int, title: str) -> None:
    print(f"\n{BOLD}[{number}] {title}{RESET}")


def detail(text: str) -> None:
    print(f"  {text}")


def _indent(text: str) -> str:
    return "\n".join(f"    {line}" for line in text.rstrip().splitlines())


if __name__ == "__main__":
    sys.exit(main())
