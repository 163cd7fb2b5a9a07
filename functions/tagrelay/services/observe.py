"""Logs and metrics of promotion decisions (Powertools Logger fields and CloudWatch EMF metrics).

Metric ``Decisions`` (count) has the dimensions ``service`` and ``decision``; ``DecisionReasons`` adds
``reason``. ``service`` is always ``promoter`` (set here, not taken from the environment), so the CDK
alarms can select on these exact dimensions.
"""

from __future__ import annotations

import logging

from tagrelay.domain.decision import Evaluation, Verdict

logger = logging.getLogger("tagrelay.decisions")

METRICS_NAMESPACE = "tagrelay"
SERVICE = "promoter"


def log_decisions(evaluations: list[Evaluation]) -> None:
    for evaluation in evaluations:
        for decided in evaluation.decisions:
            fields = {
                "event_id": evaluation.event_id,
                "app": evaluation.app,
                "env": decided.env,
                "tag": evaluation.tag,
                "sha": evaluation.full_sha or evaluation.sha,
                "decision": decided.verdict.value,
                "reason": decided.reason,
                "gitops_commit": decided.gitops_commit,
                "checks": [f"{c.name}: {c.status}" for c in evaluation.checks],
            }
            level = logging.WARNING if decided.verdict is Verdict.REJECT else logging.INFO
            logger.log(level, decided.message, extra={k: v for k, v in fields.items() if v is not None})


def emit_decision_metrics(evaluations: list[Evaluation]) -> None:
    from aws_lambda_powertools.metrics import MetricUnit, single_metric

    for evaluation in evaluations:
        for decided in evaluation.decisions:
            with single_metric(name="Decisions", unit=MetricUnit.Count, value=1, namespace=METRICS_NAMESPACE) as metric:
                metric.add_dimension(name="service", value=SERVICE)
                metric.add_dimension(name="decision", value=decided.verdict.value)
            with single_metric(
                name="DecisionReasons", unit=MetricUnit.Count, value=1, namespace=METRICS_NAMESPACE
            ) as metric:
                metric.add_dimension(name="service", value=SERVICE)
                metric.add_dimension(name="decision", value=decided.verdict.value)
                metric.add_dimension(name="reason", value=decided.reason.split(":", 1)[0])


NUDGE_FAILURES_METRIC = "RefreshNudgeFailures"


def emit_nudge_failure() -> None:
    """One failed Argo CD refresh nudge (dimension ``service`` only; infra/pipeline_metrics.py)."""
    from aws_lambda_powertools.metrics import MetricUnit, single_metric

    with single_metric(
        name=NUDGE_FAILURES_METRIC, unit=MetricUnit.Count, value=1, namespace=METRICS_NAMESPACE
    ) as metric:
        metric.add_dimension(name="service", value=SERVICE)
