"""A throwaway GitOps repository for tests and demos: a bare repository plus a working clone.

The simulator reads the bare repository, as Argo CD's repo-server reads GitHub; tests change the
tag by committing in the clone and pushing, as the seed's CI job did.
"""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

_GIT_ENV = {
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_TERMINAL_PROMPT": "0",
    "LC_ALL": "C",
    "GIT_AUTHOR_NAME": "tagrelay-test",
    "GIT_AUTHOR_EMAIL": "tagrelay-test@example.invalid",
    "GIT_COMMITTER_NAME": "tagrelay-test",
    "GIT_COMMITTER_EMAIL": "tagrelay-test@example.invalid",
}
VALUES_TEMPLATE = """\
# {env} Environment Configuration
# Updated automatically by tagrelay

global:
  imageTag: "{tag}"
  environment: {env}
"""


@dataclass(frozen=True)
class GitOpsRepo:
    bare: Path
    clone: Path
    branch: str = "main"

    @classmethod
    def create(
        cls, root: Path, initial_tags: dict[str, str], branch: str = "main", *, bare: Path | None = None
    ) -> GitOpsRepo:
        """``root/gitops.git`` (or an existing empty bare repository ``bare``, e.g. one the GitHub stand-in
        serves) with ``environments/<env>/values.yaml`` for each ``{env: tag}``, pushed."""
        root.mkdir(parents=True, exist_ok=True)
        bare, clone = bare or root / "gitops.git", root / "gitops"
        _git(root, "init", "--quiet", "--bare", f"--initial-branch={branch}", str(bare))
        _git(root, "clone", "--quiet", str(bare), str(clone))
        _git(clone, "checkout", "--quiet", "-B", branch)
        repo = cls(bare, clone, branch)
        for env, tag in initial_tags.items():
            repo._write(f"environments/{env}/values.yaml", VALUES_TEMPLATE.format(env=env, tag=tag))
        repo._commit_and_push("Initial GitOps layout")
        return repo

    def set_tag(self, env: str, tag: str) -> str:
        """Commit ``global.imageTag: "<tag>"`` for ``env`` (the seed's message convention); returns the SHA."""
        path = f"environments/{env}/values.yaml"
        text = (self.clone / path).read_text()
        updated, count = re.subn(r'(?m)^(  imageTag: )"[^"]*"', rf'\g<1>"{tag}"', text)
        if count != 1:
            raise ValueError(f"{path} has no imageTag line to change")
        self._write(path, updated)
        return self._commit_and_push(f"deploy({env}): update image tag to {tag}")

    def write_file(self, path: str, content: str, message: str) -> str:
        """Commit any file (e.g. a broken values file); returns the SHA."""
        self._write(path, content)
        return self._commit_and_push(message)

    def head(self) -> str:
        return _git(self.clone, "rev-parse", "HEAD").strip()

    def _write(self, path: str, content: str) -> None:
        target = self.clone / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content)
        _git(self.clone, "add", path)

    def _commit_and_push(self, message: str) -> str:
        _git(self.clone, "commit", "--quiet", "--allow-empty", "-m", message)
        _git(self.clone, "push", "--quiet", "origin", f"HEAD:refs/heads/{self.branch}")
        return self.head()


def _git(cwd: Path, *args: str) -> str:
    result = subprocess.run(
        ["git", *args], cwd=cwd, capture_output=True, text=True, env={**os.environ, **_GIT_ENV}, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)} failed: {result.stderr.strip()}")
    return result.stdout
