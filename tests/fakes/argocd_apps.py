"""The world's Argo CD applications: the simulator's own model on the fakes.

Each environment's Application is a ``devstack.argocd_sim`` SimulatedApp, the model the local stack's
simulator serves over HTTP, reading the fake GitOps repository instead of a bare git repository and
moving on the world's clock with the stack's realistic timing (a 180 s poll, a 5 s sync delay, a 20 s
sync...). FakeArgoCD serves what it renders: every request first moves the applications to "now", and
the promoter's refresh nudge makes the application compare the branch head at once, as the
simulator's server does. So the documents the tracker reads on the fakes are the simulator's, Argo CD's
shape (tests/devstack/test_argocd_sim.py holds the simulator to Argo CD's own JSON, tests/argocd_shapes.py), and a test
drives them as a stack test drives the simulator: ``tick``, ``settle``, ``mark``, ``remove``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from devstack.argocd_sim import Mark, SimApp, SimTiming
from devstack.argocd_sim.gitops import RenderedTag, rendered_tag
from devstack.argocd_sim.model import SimulatedApp
from devstack.scenario import BRANCH_OF_ENV
from devstack.stack import ARGOCD_PROJECT, REALISTIC_TIMING
from tests.fakes.github import FakeGitHub
from tests.fakes.world import FakeWorld


@dataclass(frozen=True)
class FakeGitOpsSource:
    """The simulator's GitOpsReader over FakeGitHub: a branch head, and the tag a commit renders."""

    github: FakeGitHub
    repo: str

    def branch_head(self, branch: str) -> str | None:
        branches = self.github.repos[self.repo].branches if self.repo in self.github.repos else {}
        return branches.get(branch)

    def tag_at(self, commit: str, values_file: str, key: str) -> RenderedTag:
        content = self.github.file(self.repo, values_file, commit)
        return rendered_tag(content.decode() if content is not None else None, commit, values_file, key)


@dataclass
class ArgoApps:
    """One application per environment (``mosaic-life-<env>``, project mosaic-life, multi-source like the
    seed's unless told), each synced to the GitOps branch head and Healthy when registered."""

    world: FakeWorld
    timing: SimTiming = REALISTIC_TIMING
    apps: dict[str, SimulatedApp] = field(default_factory=dict)  # by environment
    marks: dict[str, Mark] = field(default_factory=dict)  # tag -> what happens when it is deployed

    @classmethod
    def register(cls, world: FakeWorld, *, timing: SimTiming = REALISTIC_TIMING, multi_source: bool = True) -> ArgoApps:
        apps = cls(world, timing)
        app = world.config().apps["mosaic-life"]
        source = FakeGitOpsSource(world.github, world.gitops_repo)
        for env in BRANCH_OF_ENV:
            name = app.environments[env].argocd_app
            assert name is not None and app.gitops.values_file is not None
            spec = SimApp(
                name=name,
                repo_path=f"fake:{world.gitops_repo}",  # read through ``source``, never as a path
                images=tuple(f"{app.registry_host}/{image}" for image in app.images),
                values_file=app.gitops.values_file.format(env=env),
                key=app.gitops.key,
                branch=app.gitops.branch,
                project=ARGOCD_PROJECT,
                namespace=name,
                labels={"env": env},
                multi_source=multi_source,
                repo_url=f"https://github.com/{world.gitops_repo}.git",
            )
            apps.apps[env] = SimulatedApp.create(spec, timing, apps.marks.get, apps.now(), gitops=source)
        world.argocd.before_request = apps.on_request
        apps.serve()
        return apps

    def now(self) -> float:
        return self.world.clock().timestamp()

    def name(self, env: str) -> str:
        return self.apps[env].spec.name

    # --- what the simulator's control API does ---

    def mark(self, tag: str, mark: Mark) -> None:
        self.marks[tag] = mark

    def tick(self, seconds: float) -> None:
        """Move the world's clock (and so Argo CD's) ``seconds`` ahead."""
        self.world.clock.tick(seconds)
        self.serve()

    def settle(self, max_seconds: float = 3600) -> None:
        """Skip ahead, change by change, until no application has work left (the server's ``settle``)."""
        start = self.now()
        self.serve()
        while busy := [app for app in self.apps.values() if app.present and app.has_pending_work()]:
            due = min(app.next_change_at() for app in busy)
            if due - start > max_seconds:
                raise AssertionError(f"applications still busy after {max_seconds} simulated seconds")
            self.world.clock.tick(max(0.0, due - self.now()))
            self.serve()

    def remove(self, env: str) -> None:
        """Argo CD no longer knows the application (like ``just stage-down``)."""
        self.apps[env].present = False
        self.world.argocd.remove(self.name(env))

    # --- serving ---

    def serve(self) -> None:
        """Every present application moved to now, its document put in FakeArgoCD."""
        now = self.now()
        for app in self.apps.values():
            if app.present:
                app.advance(now)
                self.world.argocd.put(app.render(resource_health=True))

    def on_request(self, method: str, name: str, project: str | None) -> None:
        if method == "refresh":
            app = next((a for a in self.apps.values() if a.spec.name == name and a.present), None)
            if app is not None:
                app.refresh(self.now())
        self.serve()
