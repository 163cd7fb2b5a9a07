"""Contract of the ArgoCD port: FakeArgoCD, serving an Application document, and the Argo CD adapter
against the simulator serving the same application answer alike: the observation, a wrong project
(404), an unknown application without a project (403, Argo CD's RBAC rule), a lost permission, an
unreachable server, and the refresh nudge."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from devstack.argocd_sim import SimApp
from devstack.gitrepo import GitWorkspace
from devstack.process import free_port
from devstack.stack import LocalStack
from tagrelay.domain.outcome import (
    AccessDenied,
    ApplicationObservation,
    AppMissing,
    ArgoCDUnreachable,
    parse_application,
)
from tagrelay.ports import ArgoCD
from tests.fakes.argocd import FakeArgoCD

PROJECT = "mosaic-life"


@dataclass
class Side:
    argocd: ArgoCD
    name: str
    document: dict[str, Any]
    deny: Any  # () -> None: the token loses access to the application
    unreachable: Any  # () -> ArgoCD: a client of an Argo CD that does not answer


@pytest.fixture(params=["fake", pytest.param("stack", marks=pytest.mark.stack)])
def side(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Side]:
    from tagrelay.adapters.argocd import ArgoCDClient

    if request.param == "fake":
        # The same kind of document the simulator serves: taken from an argocd_shapes fixture.
        from tests.argocd_shapes import fixture

        document = fixture("multi-source-synced.json")
        document["spec"]["project"] = PROJECT
        fake = FakeArgoCD()
        fake.put(document)
        name = document["metadata"]["name"]
        yield Side(fake, name, document, lambda: fake.denied.add(name), lambda: FakeArgoCD(unreachable=True))
        return
    stack: LocalStack = request.getfixturevalue("stack")
    name = "contract-" + re.sub(r"[^a-z0-9]+", "-", request.node.name.lower())[:40].strip("-")
    repo = f"contract/{name}"
    workspace = GitWorkspace.create(stack.github_control.repo_path(repo), tmp_path_factory.mktemp("gitops"))
    workspace.commit_files({"environments/prod/values.yaml": 'global:\n  imageTag: "abc1234"\n'}, "seed")
    control = stack.argocd_control
    control.add_app(
        SimApp(
            name=name,
            repo_path=str(stack.github_control.repo_path(repo)),
            images=("registry.example/web",),
            project=PROJECT,
            multi_source=True,
        )
    )
    token = stack.argocd.extra["token"]
    client = ArgoCDClient(stack.argocd.url, token, retries=0)
    import requests

    answer = requests.get(
        f"{stack.argocd.url}/api/v1/applications/{name}", headers={"Authorization": f"Bearer {token}"}, timeout=10
    )
    document = answer.json()
    yield Side(
        client,
        name,
        document,
        lambda: control.set_permission(name, False),
        lambda: ArgoCDClient(f"http://127.0.0.1:{free_port()}", token, retries=0, connect_timeout=0.5),
    )
    control.set_permission(name, True)
    control.forget_app(name)
    control.close()
    client.close()


def test_an_application_is_observed_as_its_document_says(side: Side) -> None:
    observed = side.argocd.get_application(side.name, PROJECT)
    assert isinstance(observed, ApplicationObservation)
    assert (observed.name, observed.project) == (side.name, PROJECT)
    assert observed == parse_application(side.document)
    assert side.argocd.get_application(side.name) == observed


def test_a_missing_application_is_404_in_a_project_and_403_without_one(side: Side) -> None:
    assert isinstance(side.argocd.get_application(side.name, "another-project"), AppMissing)
    assert isinstance(side.argocd.get_application("no-such-app", PROJECT), AppMissing)
    assert isinstance(side.argocd.get_application("no-such-app"), AccessDenied)


def test_a_lost_permission_is_403(side: Side) -> None:
    side.deny()
    assert isinstance(side.argocd.get_application(side.name, PROJECT), AccessDenied)


def test_an_unreachable_argo_cd_raises_and_is_observed_as_unreachable(side: Side) -> None:
    from tagrelay.errors import TransientError

    with side.unreachable() as gone:
        with pytest.raises(TransientError):
            gone.get_application(side.name, PROJECT)
        assert isinstance(gone.observe_application(side.name, PROJECT), ArgoCDUnreachable)
        assert gone.refresh(side.name, PROJECT) is False


def test_a_refresh_is_one_request_and_never_raises(side: Side) -> None:
    before = side.argocd.request_count
    assert side.argocd.refresh(side.name, PROJECT) is True
    assert side.argocd.request_count - before == 1
