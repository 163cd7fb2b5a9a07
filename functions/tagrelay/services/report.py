"""The JSON shape of a promotion result: what the promoter returns and `tagrelay explain -o json` prints."""

from __future__ import annotations

from typing import Any

from tagrelay.domain.decision import Evaluation, summary_verdict


def report(evaluations: list[Evaluation]) -> dict[str, Any]:
    """One object whose ``decision`` speaks for the event, with its reason, every check and decision."""
    verdict = summary_verdict([e.verdict for e in evaluations])
    headline = next(e.headline for e in evaluations if e.verdict is verdict)
    several = len(evaluations) > 1
    return {
        "decision": verdict.value,
        "reason": headline.reason,
        "message": headline.message,
        "event_id": evaluations[0].event_id,
        "checks": [
            {"name": f"{e.tag}: {c.name}" if several else c.name, "status": c.status, "detail": c.detail}
            for e in evaluations
            for c in e.checks
        ],
        "evaluations": [_evaluation(e) for e in evaluations],
    }


def _evaluation(evaluation: Evaluation) -> dict[str, Any]:
    return {
        "app": evaluation.app,
        "trigger": evaluation.trigger,
        "tag": evaluation.tag,
        "sha": evaluation.sha,
        "full_sha": evaluation.full_sha,
        "actor": evaluation.actor,
        "digests": evaluation.digests,
        "signers": evaluation.signers,
        "decisions": [
            {
                key: value
                for key, value in {
                    "env": d.env,
                    "decision": d.verdict.value,
                    "reason": d.reason,
                    "message": d.message,
                    "previous_tag": d.previous_tag,
                    "deployed_sha": d.deployed_sha,
                    "gitops_commit": d.gitops_commit,
                    "gitops_url": d.gitops_url,
                }.items()
                if value is not None
            }
            for d in evaluation.decisions
        ],
    }
