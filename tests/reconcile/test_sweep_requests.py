"""What a reconcile run may ask each system: never a repository's tag list (registry ``/tags/list``, ECR
``ListImages``), never a table scan; only reads of the images, commits and items it names. Every request
the run's process makes is recorded at the HTTP client (requests) and the AWS client (botocore), so a
new call anywhere in the sweep is caught, not only one through a counted adapter.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
from botocore.client import BaseClient

from devstack.scenario import BRANCH_OF_ENV, SeedScenario
from devstack.stack import LocalStack
from tests.operator.support import pushed
from tests.reconcile.test_sweep import hand_edit, lost_completion, sweep, sweep_env
from tests.tracking.support import TrackerSetup, deliver

pytestmark = pytest.mark.stack


def test_a_run_reads_only_what_it_names_and_never_lists_tags(
    stack: LocalStack,
    scenario: SeedScenario,
    tracker_env: Callable[..., TrackerSetup],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    setup = sweep_env(tracker_env)
    for env in BRANCH_OF_ENV:
        assert "promote" in deliver(pushed(scenario, env), setup)
    lost = lost_completion(scenario, setup)  # promoted by the run: the most a release costs
    hand_edit(scenario, "staging", "staging-hand01", "hotfix: staging by hand")
    aws: list[tuple[str, str, dict[str, Any]]] = []
    http: list[tuple[str, str]] = []
    make_api_call = getattr(BaseClient, "_make_api_call")  # noqa: B009 - private to botocore, untyped
    send = requests.Session.request

    def recording_aws(self: BaseClient, operation_name: str, api_params: dict[str, Any]) -> Any:
        aws.append((self.meta.service_model.service_name, operation_name, api_params))
        return make_api_call(self, operation_name, api_params)

    def recording_http(self: requests.Session, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        http.append((method, url))
        return send(self, method, url, *args, **kwargs)

    monkeypatch.setattr(BaseClient, "_make_api_call", recording_aws)
    monkeypatch.setattr(requests.Session, "request", recording_http)

    result = sweep()

    assert [(r["tag"], r["decision"]) for r in result["releases"]] == [(lost.tag, "promote")]
    assert [e["env"] for e in result["external_changes"]] == ["staging"]
    registry = urlsplit(stack.registry.url).netloc
    registry_paths = [urlsplit(url).path for _, url in http if urlsplit(url).netloc == registry]
    assert registry_paths, "the run read no image"
    assert not [path for path in registry_paths if "/tags/list" in path or path.rstrip("/") == "/v2/_catalog"]
    # Registry reads name a manifest or blob by tag or digest, or the referrers of a digest.
    assert all(path.split("/")[-2] in ("manifests", "blobs", "referrers") for path in registry_paths), registry_paths
    operations = Counter((service, operation) for service, operation, _ in aws)
    assert {operation for service, operation in operations if service == "ecr"} == {"DescribeImages"}
    assert all(params.get("imageIds") for service, operation, params in aws if operation == "DescribeImages")
    assert {operation for service, operation in operations if service == "dynamodb"} <= {
        "GetItem",
        "Query",
        "PutItem",
        "UpdateItem",
        "TransactWriteItems",
    }, operations
    # The run's own count of its requests is the whole of them.
    budget = result["requests"]
    assert budget["registry"] == len(registry_paths)
    assert budget["ecr"] == operations[("ecr", "DescribeImages")]
    assert budget["dynamodb"] == sum(n for (service, _), n in operations.items() if service == "dynamodb")
