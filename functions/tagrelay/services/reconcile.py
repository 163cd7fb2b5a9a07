"""The reconcile sweep: the backstop for events that never arrived and changes made outside tagrelay.

EventBridge delivers ECR events on a best-effort basis, and an event the promoter could not process
ends in the dead-letter queue. Promotion is level-triggered, so nothing is lost as long as *some*
later event makes the promoter look again; the sweep is that later look, on a schedule
(``reconcile.schedule_minutes``, default 10). Each run:

1. **Undecided releases.** One Query of the ledger's sparse ``undecided`` index (releases first seen
   in the last ``reconcile.lookback_hours`` that waited and were never decided), oldest first, at
   most ``reconcile.max_releases_per_run``. Each is evaluated again from current facts, exactly as an
   event would (``Promoter.evaluate_release``, trigger push): a release whose completing event was
   lost is promoted; one still unsigned past ``promotion.signature_grace_minutes`` is rejected; one
   still waiting ``reconcile.stuck_after_minutes`` after it was first seen is reported, with its
   reason (metric ``ReleasesStuckWaiting``, alarmed).
2. **Every environment.** Its values file is compared with the ledger's current state, and the state
   is healed (services/heal.py): a lost record is recovered, a change made by hand or by another tool
   is recorded as an ``external_change`` (the GitOps commit, its author, its subject) and becomes the
   current state.
3. **What each environment runs.** The images of its current release: a release tag that now points
   at another digest than the one deployed is a ``tag_moved`` rejection (the promoter's alarm), an
   image archived in ECR an ``image_archived`` alert (alarmed): each recorded once, in the metrics on
   every run while it lasts. The backstop for the archive events the promoter did not get.

It never lists a repository's tags and never scans the table. Its requests per run are counted and
returned (``requests``): see docs/operations.md, "The reconcile sweep", for the budget.

A failure on one release or environment (GitHub down, throttling) does not stop the others; the run
then raises at the end, so the function's error alarm fires, and the next run tries again.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

from tagrelay.config import Config
from tagrelay.domain.decision import (
    Evaluation,
    Ruling,
    Verdict,
    judge_archived_deployed,
    judge_tag_moved,
    moved_images,
)
from tagrelay.domain.records import EnvironmentState, parse_timestamp, timestamp
from tagrelay.domain.tags import parse_release_tag
from tagrelay.domain.values_patch import ValuesFileError
from tagrelay.errors import FileNotFound, MisconfiguredError, TransientError
from tagrelay.services.promote import Promoter, ReleaseRequest

logger = logging.getLogger(__name__)

METRICS_NAMESPACE = "tagrelay"
SERVICE = "reconciler"
RELEASES_STUCK_METRIC = "ReleasesStuckWaiting"
EXTERNAL_CHANGES_METRIC = "ExternalChanges"
STATES_HEALED_METRIC = "EnvironmentStatesHealed"
# The event id a sweep's decisions carry: reconcile:<run id>.
EVENT_ID_PREFIX = "reconcile:"


@dataclass(frozen=True)
class ReleaseOutcome:
    app: str
    tag: str
    decision: str  # a Verdict value
    reason: str
    message: str
    first_seen_at: str
    waiting_minutes: int


@dataclass(frozen=True)
class EnvironmentOutcome:
    app: str
    env: str
    kind: str  # heal's kind (in_sync, advanced, recovered, external_change, unexplained) or unreadable
    tag: str | None
    gitops_commit: str | None = None
    message: str = ""


@dataclass
class SweepRun:
    run_id: str
    started_at: datetime
    seen_since: str
    releases: list[ReleaseOutcome] = field(default_factory=list)
    stuck: list[ReleaseOutcome] = field(default_factory=list)
    more_releases_left: bool = False
    environments: list[EnvironmentOutcome] = field(default_factory=list)
    evaluations: list[Evaluation] = field(default_factory=list)
    alerts: list[dict[str, str]] = field(default_factory=list)  # what deployed releases run: moved, archived
    failures: list[str] = field(default_factory=list)
    misconfigured: list[str] = field(default_factory=list)
    requests: dict[str, int] = field(default_factory=dict)

    @property
    def external_changes(self) -> list[EnvironmentOutcome]:
        return [e for e in self.environments if e.kind == "external_change"]

    @property
    def healed(self) -> list[EnvironmentOutcome]:
        return [e for e in self.environments if e.kind in ("advanced", "recovered", "external_change")]

    def summary(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "seen_since": self.seen_since,
            "releases": [asdict(r) for r in self.releases],
            "more_releases_left": self.more_releases_left,
            "stuck": [asdict(r) for r in self.stuck],
            "external_changes": [asdict(e) for e in self.external_changes],
            "healed": [asdict(e) for e in self.healed],
            "alerts": self.alerts,
            "environments": len(self.environments),
            "failures": self.failures,
            "requests": self.requests,
        }

    def raise_if_failed(self) -> None:
        """After the whole run: fail the invocation (the error alarm) if part of it could not be done."""
        if self.misconfigured:
            raise MisconfiguredError("reconcile", "; ".join(self.misconfigured))
        if self.failures:
            raise TransientError("reconcile", f"{len(self.failures)} part(s) failed: " + "; ".join(self.failures))


@dataclass
class ReconcilerDependencies:
    config: Config
    promoter: Promoter  # its ledger, GitHub, registries, clock and healer


class Reconciler:
    def __init__(self, deps: ReconcilerDependencies) -> None:
        self.deps = deps
        self.config = deps.config

    def run(self, run_id: str, *, deadline: float | None = None) -> SweepRun:
        """One sweep. ``deadline`` (``deps.monotonic()`` time) is when the invocation ends: no commit starts
        that it would cut short, and releases there is no time left for wait for the next run."""
        promoter = self.deps.promoter
        now = promoter.deps.clock()
        settings = self.config.reconcile
        seen_since = timestamp(now - timedelta(hours=settings.lookback_hours))
        run = SweepRun(run_id=run_id, started_at=now, seen_since=seen_since)
        before = self._request_counts()
        with promoter.invocation_deadline(deadline):
            self._releases(run, now, deadline)
            running = self._environments(run)
            self._deployed_images(run, running)
        after = self._request_counts()
        run.requests = {name: after[name] - before[name] for name in after}
        return run

    # --- 1. releases that waited and were never decided ---

    def _releases(self, run: SweepRun, now: datetime, deadline: float | None) -> None:
        promoter, settings = self.deps.promoter, self.config.reconcile
        ledger = promoter.deps.ledger
        try:
            undecided, run.more_releases_left = ledger.undecided_releases(
                seen_since=run.seen_since, limit=settings.max_releases_per_run
            )
        except (TransientError, MisconfiguredError) as exc:
            self._failed(run, "undecided releases", exc)
            return
        stuck_after = timedelta(minutes=settings.stuck_after_minutes)
        # Time kept for the environments' part of the run, after the last release.
        reserve = 2 * self.config.limits.commit_reserve_seconds
        for pending in undecided:
            if deadline is not None and deadline - promoter.deps.monotonic() < reserve:
                run.more_releases_left = True
                logger.warning("the run is out of time; the remaining releases wait for the next run")
                break
            app = self.config.apps.get(pending.app)
            release = parse_release_tag(pending.tag, app.tag_regex) if app else None
            try:
                if release is None:
                    # The app left the configuration, or its grammar changed: nothing to evaluate any more.
                    ledger.note_release_decided(pending.app, pending.tag, decision="ignore", now=now)
                    continue
                evaluation = promoter.evaluate_release(
                    ReleaseRequest(pending.app, release, "push", f"{EVENT_ID_PREFIX}{run.run_id}")
                )
                if evaluation.verdict is Verdict.NOOP:  # decided by someone else meanwhile (a deploy, a hand edit)
                    ledger.note_release_decided(pending.app, pending.tag, decision="noop", now=now)
            except (TransientError, MisconfiguredError) as exc:
                self._failed(run, f"{pending.app}:{pending.tag}", exc)
                continue
            evaluation.trigger = "reconcile"
            run.evaluations.append(evaluation)
            headline = evaluation.headline
            waited = now - parse_timestamp(pending.first_seen_at)
            outcome = ReleaseOutcome(
                app=pending.app,
                tag=pending.tag,
                decision=headline.verdict.value,
                reason=headline.reason,
                message=headline.message,
                first_seen_at=pending.first_seen_at,
                waiting_minutes=int(waited.total_seconds() // 60),
            )
            run.releases.append(outcome)
            if headline.verdict is Verdict.WAIT and waited >= stuck_after:
                run.stuck.append(outcome)
        if run.more_releases_left:
            logger.warning(
                "more undecided releases than one run re-evaluates; the rest wait for the next run",
                extra={"max_releases_per_run": settings.max_releases_per_run},
            )

    # --- 2. every environment: the values file against the ledger's state ---

    def _environments(self, run: SweepRun) -> list[tuple[str, str, EnvironmentState]]:
        """Heal every environment; returns those that run a release, with their state."""
        running = []
        healer = self.deps.promoter.healer
        for app_name, app in self.config.apps.items():
            for env in app.environments:
                try:
                    healed = healer.heal(app_name, env)
                except (FileNotFound, ValuesFileError, UnicodeDecodeError) as exc:
                    # Not the sweep's to fix: a promotion to it is refused the same way, and says so.
                    run.environments.append(EnvironmentOutcome(app_name, env, "unreadable", None, message=str(exc)))
                    logger.warning("values file unreadable", extra={"app": app_name, "env": env, "why": str(exc)})
                    continue
                except (TransientError, MisconfiguredError) as exc:
                    self._failed(run, f"{app_name}/{env}", exc)
                    continue
                record = healed.record
                if healed.state is not None and healed.state.current_tag is not None:
                    running.append((app_name, env, healed.state))
                run.environments.append(
                    EnvironmentOutcome(
                        app_name,
                        env,
                        healed.kind,
                        healed.tag,
                        record.gitops_commit if record else None,
                        record.message if record else "",
                    )
                )

        return running

    # --- 3. what each environment runs: moved tags, archived images ---

    def _deployed_images(self, run: SweepRun, running: list[tuple[str, str, EnvironmentState]]) -> None:
        promoter = self.deps.promoter
        for app_name, env, state in running:
            app = self.config.apps[app_name]
            tag = state.current_tag
            assert tag is not None
            evaluation = Evaluation(event_id=f"{EVENT_ID_PREFIX}{run.run_id}", app=app_name, tag=tag)
            evaluation.trigger = "reconcile"
            try:
                deployed = promoter.deployed_digests(app_name, env, state)
                registry = promoter.deps.registry_for(app)
                now = {image: registry.resolve_tag(image, tag) for image in app.images}
                self._moved(run, app_name, env, tag, deployed, now, evaluation)
                self._archived(run, app_name, env, tag, deployed or {i: d for i, d in now.items() if d}, evaluation)
            except (TransientError, MisconfiguredError) as exc:
                self._failed(run, f"{app_name}/{env} images", exc)
                continue
            if evaluation.decisions:
                run.evaluations.append(evaluation)

    def _moved(
        self,
        run: SweepRun,
        app_name: str,
        env: str,
        tag: str,
        deployed: dict[str, str],
        now: dict[str, str | None],
        evaluation: Evaluation,
    ) -> None:
        # A tag gone from an image (deleted) is not a move; the registry's readiness check tells about it.
        moved = moved_images(deployed, {image: digest for image, digest in now.items() if digest is not None})
        self._alert(
            run,
            app_name,
            env,
            tag,
            judge_tag_moved(tag, moved, running_in=env),
            evaluation,
            key="tag_moved:" + ",".join(sorted(f"{image}@{new}" for image, (_, new) in moved.items())),
            digests={image: new for image, (_, new) in moved.items()},
        )

    def _archived(
        self, run: SweepRun, app_name: str, env: str, tag: str, digests: dict[str, str], evaluation: Evaluation
    ) -> None:
        ecr = self.deps.promoter.deps.ecr_for(self.config.apps[app_name])
        if ecr is None:
            return
        for image, digest in digests.items():
            details = ecr.describe_images(image, digests=[digest])
            if not details or details[0].status == "ACTIVE":
                continue
            ruling = judge_archived_deployed(env, tag, image, digest)
            self._alert(
                run, app_name, env, tag, ruling, evaluation, key=f"image_archived:{digest}", digests={image: digest}
            )

    def _alert(
        self,
        run: SweepRun,
        app_name: str,
        env: str,
        tag: str,
        ruling: Ruling,
        evaluation: Evaluation,
        *,
        key: str,
        digests: dict[str, str],
    ) -> None:
        """A ruling about what ``env`` runs: decided in the sweep's evaluation, reported in its alerts and
        recorded in the environment's history (once per ``key``)."""
        if ruling.reason is None:  # it found nothing to alert about
            return
        evaluation.rule(ruling, [env])
        run.alerts.append({"env": env, "tag": tag, "reason": ruling.reason, "message": ruling.decision_message})
        self.deps.promoter.record_alert(
            app_name, env, tag, ruling, key=key, digests=digests, event_id=evaluation.event_id
        )

    # --- helpers ---

    def _failed(self, run: SweepRun, what: str, exc: Exception) -> None:
        logger.warning("reconcile step failed", extra={"what": what, "why": str(exc)})
        (run.misconfigured if isinstance(exc, MisconfiguredError) else run.failures).append(f"{what}: {exc}")

    def _request_counts(self) -> dict[str, int]:
        deps = self.deps.promoter.deps
        registries = {id(r): r for r in (deps.registry_for(app) for app in self.config.apps.values())}
        control_planes = {id(e): e for e in (deps.ecr_for(app) for app in self.config.apps.values()) if e is not None}
        return {
            "github": deps.github.request_count,
            "registry": sum(r.request_count for r in registries.values()),
            "ecr": sum(e.request_count for e in control_planes.values()),
            "dynamodb": deps.ledger.request_count,
        }


def log_run(run: SweepRun) -> None:
    from tagrelay.services.observe import log_decisions

    log_decisions(run.evaluations)
    for stuck in run.stuck:
        logger.warning(
            f"release {stuck.app}:{stuck.tag} still waiting after {stuck.waiting_minutes} min: {stuck.message}",
            extra={"app": stuck.app, "tag": stuck.tag, "reason": stuck.reason, "first_seen_at": stuck.first_seen_at},
        )
    for change in run.external_changes:
        logger.warning(
            change.message,
            extra={"app": change.app, "env": change.env, "tag": change.tag, "gitops_commit": change.gitops_commit},
        )
    logger.info(
        "reconcile run",
        extra={
            "releases": len(run.releases),
            "stuck": len(run.stuck),
            "healed": len(run.healed),
            "failures": len(run.failures) + len(run.misconfigured),
            "requests": run.requests,
        },
    )


def emit_reconcile_metrics(run: SweepRun) -> None:
    """``ReleasesStuckWaiting`` every run (0 included, so the alarm and the dashboard see each run), and
    the counts of external changes and healed states; the re-evaluations' own ``Decisions``."""
    from aws_lambda_powertools.metrics import MetricUnit, single_metric

    from tagrelay.services.observe import emit_decision_metrics

    emit_decision_metrics(run.evaluations)
    counts: Iterable[tuple[str, int]] = (
        (RELEASES_STUCK_METRIC, len(run.stuck)),
        (EXTERNAL_CHANGES_METRIC, len(run.external_changes)),
        (STATES_HEALED_METRIC, len(run.healed)),
    )
    for name, value in counts:
        if value == 0 and name != RELEASES_STUCK_METRIC:
            continue
        with single_metric(name=name, unit=MetricUnit.Count, value=value, namespace=METRICS_NAMESPACE) as metric:
            metric.add_dimension(name="service", value=SERVICE)
            if name == RELEASES_STUCK_METRIC and run.stuck:
                # Which releases and why, beside the count: an alarm's reader finds them in the same
                # record (metadata, not a dimension: a dimension would split the metric the alarm selects).
                metric.add_metadata(
                    key="stuck_releases",
                    value=[{"app": r.app, "tag": r.tag, "reason": r.reason} for r in run.stuck],
                )
