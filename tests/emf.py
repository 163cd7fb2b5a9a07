"""The tracker's EMF metrics, as the stack's alarms select them: one check shared by the fake and the
stack test of the same promise (tests/services/test_track.py, tests/tracking/test_tracker_handler.py)."""

from __future__ import annotations

import json
from typing import Any

from infra import pipeline_metrics


def emitted_metrics(lines: list[str]) -> list[tuple[str, tuple[str, ...], dict[str, Any]]]:
    """(metric name, its sorted dimension set, the EMF document) for each metric of each EMF line."""
    emitted = [json.loads(line) for line in lines if '"_aws"' in line]
    return [
        (directive["Metrics"][0]["Name"], tuple(sorted(dimension_set)), document)
        for document in emitted
        for directive in document["_aws"]["CloudWatchMetrics"]
        for dimension_set in directive["Dimensions"]
    ]


def assert_one_success_and_one_degraded(lines: list[str]) -> None:
    """The metrics of a SUCCEEDED prod deployment and a DEGRADED staging one carry exactly the
    namespace and dimensions the stack's alarms and dashboard select on."""
    metrics = emitted_metrics(lines)
    assert {document["_aws"]["CloudWatchMetrics"][0]["Namespace"] for _, _, document in metrics} == {
        pipeline_metrics.NAMESPACE
    }
    outcomes = sorted(
        d[pipeline_metrics.OUTCOME_DIMENSION] for n, _, d in metrics if n == pipeline_metrics.OUTCOMES_METRIC
    )
    assert outcomes == ["DEGRADED", "SUCCEEDED"]
    dimensions = {name: dims for name, dims, _ in metrics}
    assert dimensions[pipeline_metrics.OUTCOMES_METRIC] == tuple(
        sorted((pipeline_metrics.OUTCOME_DIMENSION, pipeline_metrics.SERVICE_DIMENSION))
    )
    for name in (pipeline_metrics.LEAD_TIME_METRIC, pipeline_metrics.TIME_TO_SYNC_METRIC):
        assert dimensions[name] == (pipeline_metrics.SERVICE_DIMENSION,)
    assert {d[pipeline_metrics.SERVICE_DIMENSION] for _, _, d in metrics} == {pipeline_metrics.TRACKER_SERVICE}
    lead_times = [d[pipeline_metrics.LEAD_TIME_METRIC] for n, _, d in metrics if n == pipeline_metrics.LEAD_TIME_METRIC]
    assert len(lead_times) == 1 and lead_times[0][0] > 0  # SUCCEEDED only
    assert len([n for n, _, _ in metrics if n == pipeline_metrics.TIME_TO_SYNC_METRIC]) == 2
