"""Read the GitOps repository the way Argo CD's repo-server would: branch head, then the tag in a values file."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Protocol

# Git must behave the same on every machine: no user or system configuration, no prompts.
_GIT_ENV = {"GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull, "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C"}


@dataclass(frozen=True)
class RenderedTag:
    """The image tag a commit's values file sets, or why manifests could not be generated from it."""

    tag: str | None
    error: str | None = None


def branch_head(repo_path: str, branch: str) -> str | None:
    """The commit SHA the branch points at, or None when the repository or branch does not exist."""
    result = _git(repo_path, "rev-parse", "--verify", "--quiet", f"refs/heads/{branch}^{{commit}}")
    return result.stdout.strip() if result.returncode == 0 else None


@lru_cache(maxsize=1024)
def tag_at(repo_path: str, commit: str, values_file: str, key: str) -> RenderedTag:
    """The value at dotted ``key`` in ``values_file`` at ``commit`` (commits never change, so it is cached)."""
    result = _git(repo_path, "show", f"{commit}:{values_file}")
    return rendered_tag(result.stdout if result.returncode == 0 else None, commit, values_file, key)


def rendered_tag(text: str | None, commit: str, values_file: str, key: str) -> RenderedTag:
    """The value at dotted ``key`` of a values file's ``text`` (None: no such file at ``commit``)."""
    if text is None:
        return RenderedTag(None, f"{values_file}: no such file at {commit[:7]}")
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    yaml = YAML(typ="safe", pure=True)
    yaml.allow_duplicate_keys = False
    try:
        document: Any = yaml.load(text)
    except YAMLError as error:
        return RenderedTag(None, f"{values_file}: YAML parse error: {str(error).splitlines()[0]}")
    node = document
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return RenderedTag(None, f"{values_file}: key {key} not found")
        node = node[part]
    if node is None or node == "" or isinstance(node, dict | list):
        return RenderedTag(None, f"{values_file}: {key} is empty or not a scalar")
    # Helm would render a number (the seed's unquoted 1e07581 incident) as that number's text.
    return RenderedTag(str(node))


class GitOpsReader(Protocol):
    """Where an application reads its GitOps source: the branch head, and the tag a commit renders."""

    def branch_head(self, branch: str) -> str | None: ...

    def tag_at(self, commit: str, values_file: str, key: str) -> RenderedTag: ...


@dataclass(frozen=True)
class BareRepository:
    """The GitOps source in a bare git repository on this machine (the simulator's)."""

    path: str

    def branch_head(self, branch: str) -> str | None:
        return branch_head(self.path, branch)

    def tag_at(self, commit: str, values_file: str, key: str) -> RenderedTag:
        return tag_at(self.path, commit, values_file, key)


def _git(repo_path: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["git", f"--git-dir={repo_path}", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **_GIT_ENV},
        timeout=30,
        check=False,
    )
