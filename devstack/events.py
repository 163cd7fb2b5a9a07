"""EventBridge `ECR Image Action` events exactly as AWS delivers them (the ECR user guide, "Amazon ECR events and EventBridge").

The local registry emits no events, so the tests and the demo build the events ECR would have sent
for each push, and deliver them to the promoter handler.
"""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

MANIFEST_MEDIA_TYPE = "application/vnd.oci.image.manifest.v1+json"
CONFIG_MEDIA_TYPE = "application/vnd.oci.image.config.v1+json"


def digest_of(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def ecr_push_event(
    repository: str = "mosaic-life/web",
    tag: str | None = "abc1234",
    digest: str | None = None,
    *,
    action: str = "PUSH",
    result: str = "SUCCESS",
    event_id: str | None = None,
    account: str = "033691785857",
    region: str = "us-east-1",
    time: str = "2026-11-26T10:00:00Z",
) -> dict[str, Any]:
    """One `ECR Image Action` event (same keys and order as AWS's push sample)."""
    detail: dict[str, Any] = {
        "result": result,
        "repository-name": repository,
        "image-digest": digest or digest_of(f"{repository}:{tag}"),
        "action-type": action,
        "artifact-media-type": CONFIG_MEDIA_TYPE,
        "manifest-media-type": MANIFEST_MEDIA_TYPE,
    }
    if tag is not None:
        detail["image-tag"] = tag
    return _image_action(detail, event_id=event_id, account=account, region=region, time=time)


def _image_action(
    detail: dict[str, Any], *, event_id: str | None, account: str, region: str, time: str
) -> dict[str, Any]:
    """EventBridge's envelope of an `ECR Image Action` (``resources`` is empty for image actions)."""
    return {
        "version": "0",
        "id": event_id or str(uuid.uuid4()),
        "detail-type": "ECR Image Action",
        "source": "aws.ecr",
        "account": account,
        "time": time,
        "region": region,
        "resources": [],
        "detail": detail,
    }


def ecr_storage_class_event(
    repository: str,
    digest: str,
    target: str,
    *,
    event_id: str | None = None,
    account: str = "033691785857",
    region: str = "us-east-1",
    time: str = "2026-11-26T10:00:00Z",
) -> dict[str, Any]:
    """An image archived (``target="ARCHIVE"``) or restored (``"STANDARD"``): the `ECR Image Action` of AWS's
    archive sample (``UPDATE_STORAGE_CLASS``, no tag; a restore adds ``last-activated-at``)."""
    detail: dict[str, Any] = {
        "action-type": "UPDATE_STORAGE_CLASS",
        "target-storage-class": target,
        "image-digest": digest,
        "repository-name": repository,
        "result": "SUCCESS",
        "manifest-media-type": MANIFEST_MEDIA_TYPE,
        "artifact-media-type": CONFIG_MEDIA_TYPE,
    }
    if target == "STANDARD":
        detail["last-activated-at"] = time.replace("Z", ".00Z")
    return _image_action(detail, event_id=event_id, account=account, region=region, time=time)
