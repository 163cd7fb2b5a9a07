"""Amazon ECR's control-plane API (boto3): repository settings and image details, as tagrelay reads them.

One module for every ECR API call besides the registry token (adapters/registry.py, ``EcrAuth``):

* ``repository_settings(names)``: tag mutability and its exclusion filters (``ecr:DescribeRepositories``),
  cached per process for ``cache_seconds``; the repositories not cached are asked for in one request,
  so the lookup costs at most one request per repository per container per cache period;
* ``describe_images(repository, digests=..., tags=...)``: each image's tags and ``imageStatus``
  (ACTIVE, ARCHIVED, ACTIVATING) (``ecr:DescribeImages``), not cached.

Errors follow tagrelay.errors through ``aws_call_failure``: throttling and 5xx are transient; a refused
permission, or a repository ECR does not know, is for an operator to fix (``MisconfiguredError``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from tagrelay.domain.facts import ImageDetail, RepositorySettings
from tagrelay.errors import MisconfiguredError

if TYPE_CHECKING:
    from mypy_boto3_ecr import ECRClient

SYSTEM = "ecr"
DEFAULT_CACHE_SECONDS = 300.0
_BATCH = 100  # DescribeRepositories takes at most 100 names


class EcrControlPlane:
    """ECR's API for one registry (account and region). One instance per process; the client is lazy."""

    def __init__(
        self,
        account: str,
        region: str,
        *,
        client: ECRClient | None = None,
        cache_seconds: float = DEFAULT_CACHE_SECONDS,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.account = account
        self.region = region
        self._client = client
        self._cache_seconds = cache_seconds
        self._monotonic = monotonic
        self._settings: dict[str, tuple[float, RepositorySettings]] = {}
        self._lock = threading.Lock()
        self.request_count = 0

    def repository_settings(self, names: Sequence[str]) -> dict[str, RepositorySettings]:
        """The settings of each repository; asks ECR (one request per 100) only for those not cached."""
        now = self._monotonic()
        with self._lock:
            fresh = {n: s for n, (at, s) in self._settings.items() if n in names and now - at < self._cache_seconds}
            missing = [name for name in dict.fromkeys(names) if name not in fresh]
            for start in range(0, len(missing), _BATCH):
                for settings in self._describe_repositories(missing[start : start + _BATCH]):
                    self._settings[settings.name] = (now, settings)
                    fresh[settings.name] = settings
        absent = [name for name in names if name not in fresh]
        if absent:
            raise MisconfiguredError(SYSTEM, f"DescribeRepositories did not describe {', '.join(absent)}")
        return {name: fresh[name] for name in names}

    def describe_images(
        self, repository: str, *, digests: Sequence[str] = (), tags: Sequence[str] = ()
    ) -> list[ImageDetail]:
        """The images named by digest or tag, with their status (one request, not cached)."""
        from botocore.exceptions import BotoCoreError, ClientError

        from tagrelay.adapters.aws import aws_call_failure

        image_ids: list[Any] = [{"imageDigest": d} for d in digests] + [{"imageTag": t} for t in tags]
        action = f"ecr:DescribeImages on {repository} (account {self.account}, {self.region})"
        self.request_count += 1
        try:
            answer = self.client.describe_images(
                registryId=self.account, repositoryName=repository, imageIds=image_ids, filter={"imageStatus": "ANY"}
            )
        except (ClientError, BotoCoreError) as exc:
            raise aws_call_failure(SYSTEM, action, exc) from None
        return [
            ImageDetail(
                digest=detail["imageDigest"],
                tags=tuple(detail.get("imageTags") or ()),
                status=detail.get("imageStatus") or "ACTIVE",
                pushed_at=detail.get("imagePushedAt"),
                last_archived_at=detail.get("lastArchivedAt"),
            )
            for detail in answer.get("imageDetails", [])
        ]

    @property
    def client(self) -> ECRClient:
        if self._client is None:
            import boto3
            from botocore.config import Config

            self._client = boto3.client(
                "ecr",
                region_name=self.region,
                config=Config(connect_timeout=3, read_timeout=5, retries={"mode": "standard", "max_attempts": 3}),
            )
        return self._client

    def _describe_repositories(self, names: list[str]) -> list[RepositorySettings]:
        from botocore.exceptions import BotoCoreError, ClientError

        from tagrelay.adapters.aws import aws_call_failure, error_code

        action = f"ecr:DescribeRepositories on {', '.join(names)} (account {self.account}, {self.region})"
        self.request_count += 1
        try:
            answer = self.client.describe_repositories(registryId=self.account, repositoryNames=names)
        except ClientError as exc:
            if error_code(exc) == "RepositoryNotFoundException":
                raise MisconfiguredError(
                    SYSTEM,
                    f"{action}: ECR has no such repository ({exc.response['Error'].get('Message', '')}); check "
                    "the app's images and registry in the configuration",
                ) from None
            raise aws_call_failure(SYSTEM, action, exc) from None
        except BotoCoreError as exc:
            raise aws_call_failure(SYSTEM, action, exc) from None
        return [
            RepositorySettings(
                name=repository["repositoryName"],
                mutability=repository.get("imageTagMutability") or "MUTABLE",
                exclusion_filters=tuple(
                    entry["filter"] for entry in repository.get("imageTagMutabilityExclusionFilters") or ()
                ),
            )
            for repository in answer.get("repositories", [])
        ]
