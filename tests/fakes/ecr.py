"""FakeEcr: the RegistryControlPlane port (ECR's DescribeRepositories and DescribeImages) in memory.

Repositories are created as the seed's are (release tags immutable, branch and signature tags
exempt) unless a test sets other settings; an unknown repository is refused as ECR's
RepositoryNotFoundException is (MisconfiguredError).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from tagrelay.domain.facts import ImageDetail, RepositorySettings
from tagrelay.errors import MisconfiguredError
from tests.fakes.faults import Faults


@dataclass
class FakeEcr:
    account: str = "033691785857"
    region: str = "us-east-1"
    repositories: dict[str, RepositorySettings] = field(default_factory=dict)
    images: dict[tuple[str, str], ImageDetail] = field(default_factory=dict)
    request_count: int = 0
    faults: Faults = field(default_factory=lambda: Faults("ecr"))

    def set_mutability(self, name: str, mutability: str, exclusions: Sequence[str] = ()) -> None:
        self.repositories[name] = RepositorySettings(name, mutability, tuple(exclusions))

    def set_image(self, repository: str, detail: ImageDetail) -> None:
        self.images[(repository, detail.digest)] = detail

    def repository_settings(self, names: Sequence[str]) -> dict[str, RepositorySettings]:
        self._call("repository_settings")
        absent = [name for name in names if name not in self.repositories]
        if absent:
            raise MisconfiguredError("ecr", f"DescribeRepositories did not describe {', '.join(absent)}")
        return {name: self.repositories[name] for name in names}

    def describe_images(
        self, repository: str, *, digests: Sequence[str] = (), tags: Sequence[str] = ()
    ) -> list[ImageDetail]:
        self._call("describe_images")
        if repository not in self.repositories:
            raise MisconfiguredError(
                "ecr",
                f"ecr:DescribeImages on {repository} (account {self.account}, {self.region}) was refused "
                "(RepositoryNotFoundException)",
            )
        mine = [detail for (name, _), detail in self.images.items() if name == repository]
        return [d for d in mine if d.digest in digests or any(tag in d.tags for tag in tags)]

    def _call(self, method: str) -> None:
        self.request_count += 1
        self.faults.before(method)
