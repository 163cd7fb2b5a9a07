"""heal(app, env): bring an environment's state in the ledger in line with its GitOps values file.

The values file is the truth: it is what Argo CD deploys. The ledger's environment state says which
recorded deployment is current, and `status`, `pin` and `rollback` act on it. The two drift apart when

* a write after the commit failed: the state update was throttled, or the invocation died before it
  recorded the deployment at all;
* someone changed the file outside tagrelay (by hand, or another tool).

``EnvironmentHealer.heal`` reads the file's tag (or takes the version the caller already read) and
compares it with the state's current tag. Equal: nothing to do (one ledger read). Otherwise it walks
the file's commits, newest first (one GitHub request for up to ``HISTORY_DEPTH``), for the commit that
set the tag:

1. a commit tagrelay recorded (its commit guard): the state is pointed at that record;
2. a commit tagrelay made but never recorded (its own message, parsed): the record is written now,
   from the message, then made current (with ``gitops.write: pull_request``, with the URL of the pull
   request the commit came through: one more request);
3. any other commit that changed the tag (seen by reading the file at the next older commit, one
   request each): an ``external_change`` deployment is recorded with the GitOps commit, its author and
   its subject, and made current. A commit that changed other keys only is passed over.

Every record goes through the commit guard, so each GitOps commit is recorded once however many
paths heal at the same time. The state is set on condition that it still names the GitOps commit it
named when read, so a promotion that lands meanwhile is never overwritten by an older truth; heal then
starts once more from fresh reads.

Called by every path that finds a deployment already committed: the promoter (the values file already
holds the release's tag), the operator requests (what an operator's change is computed against), and
the reconcile sweep (every environment, every run).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Literal

from tagrelay.config import App, Config
from tagrelay.domain.commit_message import parse_commit_message
from tagrelay.domain.decision import Outcome, Reason
from tagrelay.domain.facts import CommitRef, FileVersion
from tagrelay.domain.outcome import DeploymentState
from tagrelay.domain.records import DecisionRecord, EnvironmentState, new_decision_id, timestamp
from tagrelay.domain.tags import parse_release_tag
from tagrelay.domain.values_patch import ValuesFileError
from tagrelay.errors import FileNotFound
from tagrelay.ports import DeploymentLedger, GitOpsStore, PullRequestHost

logger = logging.getLogger(__name__)

# How far back heal looks for the commit that set the tag (one GitHub page).
HISTORY_DEPTH = 10
# Attempts when a concurrent writer changes the state between heal's read and its write.
_ATTEMPTS = 2
_UNREADABLE = "<unreadable>"

HealKind = Literal["in_sync", "advanced", "recovered", "external_change", "unexplained"]


@dataclass(frozen=True)
class Healed:
    """What heal found and did. ``record`` is the deployment that is now current (not for in_sync)."""

    kind: HealKind
    tag: str | None  # the values file's tag
    state: EnvironmentState | None
    record: DecisionRecord | None = None


class EnvironmentHealer:
    def __init__(
        self,
        config: Config,
        ledger: DeploymentLedger,
        github: GitOpsStore,
        clock: Callable[[], datetime],
        pull_requests: PullRequestHost | None = None,
    ) -> None:
        self.config = config
        self.ledger = ledger
        self.github = github
        self.clock = clock
        self.pull_requests = pull_requests  # asked only for apps with gitops.write: pull_request

    def heal(self, app_name: str, env: str, *, file: FileVersion | None = None) -> Healed:
        """Make the ledger's state of ``app_name``/``env`` say what its values file says.

        ``file`` is the values file as the caller just read it (saves a request). Raises FileNotFound
        and ValuesFileError for a file that is missing or not one tagrelay can read.
        """
        app = self.config.apps[app_name]
        healed: Healed | None = None
        for attempt in range(_ATTEMPTS):
            state = self.ledger.environment_state(app_name, env)
            if file is None or attempt:
                file = self.github.read_file(app.gitops.repo, app.gitops.values_path(env), app.gitops.branch)
            tag = app.gitops_format.read(file.content.decode("utf-8")).tag
            if state is not None and state.current_tag == tag and state.current_decision_id:
                return Healed("in_sync", tag, state)
            kind, record = self._explain(app_name, app, env, tag)
            if record is None:
                logger.warning(
                    "the values file's tag is not explained by its history",
                    extra={"app": app_name, "env": env, "tag": tag, "depth": HISTORY_DEPTH},
                )
                return Healed(kind, tag, state)
            healed = Healed(kind, tag, _with_current(app_name, env, state, record), record)
            if self.ledger.set_current(record, expected_gitops_commit=state.gitops_commit if state else None):
                logger.info(
                    "environment state healed",
                    extra={
                        "app": app_name,
                        "env": env,
                        "kind": kind,
                        "tag": tag,
                        "gitops_commit": record.gitops_commit,
                    },
                )
                return healed
            logger.info("environment state changed while healing; reading again", extra={"env": env})
        assert healed is not None
        return healed

    # --- who set the tag ---

    def _explain(self, app_name: str, app: App, env: str, tag: str | None) -> tuple[HealKind, DecisionRecord | None]:
        repo, path = app.gitops.repo, app.gitops.values_path(env)
        commits = self.github.commits_touching(repo, path, app.gitops.branch, limit=HISTORY_DEPTH)
        for index, commit in enumerate(commits):
            recorded = self.ledger.deployment_for_commit(app_name, env, repo, commit.sha)
            if recorded is not None and recorded.tag == tag:
                return "advanced", recorded
            parsed = parse_commit_message(commit.message)
            if recorded is None and parsed is not None and (parsed.env, parsed.tag) == (env, tag):
                pull_request_url = self._pull_request_url(app, commit.sha)
                return "recovered", self._record(repo, self._recovered(app_name, app, env, commit, pull_request_url))
            older = commits[index + 1] if index + 1 < len(commits) else None
            before = self._tag_at(app, env, older.sha) if older else None
            if before != tag or older is None:
                return "external_change", self._record(repo, self._external(app_name, app, env, commit, tag, before))
        return "unexplained", None

    def _tag_at(self, app: App, env: str, commit_sha: str) -> str | None:
        """The tag in the values file as of ``commit_sha`` (None: no file or no value then)."""
        try:
            older = self.github.read_file(app.gitops.repo, app.gitops.values_path(env), commit_sha)
            return app.gitops_format.read(older.content.decode("utf-8")).tag
        except FileNotFound:
            return None
        except (UnicodeDecodeError, ValuesFileError):
            return _UNREADABLE

    def _pull_request_url(self, app: App, commit_sha: str) -> str | None:
        """The pull request our commit came through (``gitops.write: pull_request``: a merge whose answer
        was lost), so the recovered record links it as the promoter's own would. One request, and none
        for an app that commits directly."""
        if app.gitops.write != "pull_request" or self.pull_requests is None:
            return None
        pull = self.pull_requests.pull_request_for_commit(app.gitops.repo, commit_sha)
        return pull.url if pull is not None else None

    def _record(self, repo: str, record: DecisionRecord) -> DecisionRecord:
        """Write the deployment record once per GitOps commit; the one already there wins a race."""
        if self.ledger.record_deployment(record, repo, make_current=False):
            return record
        assert record.gitops_commit is not None
        return self.ledger.deployment_for_commit(record.app, record.env, repo, record.gitops_commit) or record

    # --- the records heal writes ---

    def _recovered(
        self, app_name: str, app: App, env: str, commit: CommitRef, pull_request_url: str | None
    ) -> DecisionRecord:
        parsed = parse_commit_message(commit.message)
        assert parsed is not None
        now = timestamp(self.clock())
        release = parse_release_tag(parsed.tag, app.tag_regex)
        return DecisionRecord(
            decision_id=new_decision_id(),
            app=app_name,
            env=env,
            outcome=Outcome.COMMITTED,
            reason=Reason.COMMITTED,
            message=f"recovered the record of commit {commit.sha[:12]}: the invocation that made it ended "
            "before recording it",
            created_at=now,
            trigger=parsed.trigger,
            tag=parsed.tag,
            sha=release.sha if release else (parsed.full_sha or "")[:7] or None,
            full_sha=parsed.full_sha,
            source_branch=parsed.source_branch,
            actor=parsed.actor,
            digests=parsed.digests,
            signature_policy="required" if app.signature_required else "none",
            gitops_commit=commit.sha,
            gitops_url=commit.url,
            pull_request_url=pull_request_url,
            event_ids=(parsed.event_id,) if parsed.event_id else (),
            request_id=parsed.request_id,
            status=DeploymentState.COMMITTED,
            committed_at=now,
        )

    def _external(
        self, app_name: str, app: App, env: str, commit: CommitRef, tag: str | None, before: str | None
    ) -> DecisionRecord:
        now = timestamp(self.clock())
        release = parse_release_tag(tag, app.tag_regex) if tag else None
        path = app.gitops.values_path(env)
        shown_before = "" if before in (None, _UNREADABLE) else f" (was {before!r})"
        return DecisionRecord(
            decision_id=new_decision_id(),
            app=app_name,
            env=env,
            outcome=Outcome.COMMITTED,
            reason=Reason.EXTERNAL_CHANGE,
            message=f"{path} set {app.gitops_format.describe()} to {tag!r}{shown_before} outside tagrelay: commit "
            f"{commit.sha[:12]} by {commit.author or 'unknown'}: {commit.subject!r}",
            created_at=now,
            trigger="external",
            tag=tag,
            sha=release.sha if release else None,
            actor=commit.author or None,
            previous_tag=None if before == _UNREADABLE else before,
            gitops_commit=commit.sha,
            gitops_url=commit.url,
            # Tracked like any deployment: Argo CD deploys a hand edit as it deploys ours.
            status=DeploymentState.COMMITTED,
            committed_at=now,
        )


def _with_current(app: str, env: str, state: EnvironmentState | None, record: DecisionRecord) -> EnvironmentState:
    base = state or EnvironmentState(app=app, env=env)
    return replace(
        base,
        current_decision_id=record.decision_id,
        current_tag=record.tag,
        current_sha=record.full_sha,
        committed_at=record.committed_at or record.created_at,
        gitops_commit=record.gitops_commit,
    )
