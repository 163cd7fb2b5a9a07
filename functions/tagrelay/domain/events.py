"""Event intake: parse an EventBridge event and decide, without any network request, what it asks for.

Every ECR push of a configured repository only says "look at this digest now" (level-triggered,
docs/promotion.md). Nothing in the event is trusted as text: the EventBridge envelope is checked first
(``id`` a UUID, ``source`` ``aws.ecr``, ``account`` and ``region`` those of a configured ECR registry,
``time`` an RFC 3339 time no later than ``MAX_CLOCK_SKEW`` ahead), because the promoter can also be
invoked directly and its event id and time end up in GitOps commit messages and the ledger.
Intake turns the event into one of:

- ``MalformedEvent`` (raised): the event is broken; it is rejected and never retried;
- ``Ignored``: not ours or not interesting (a DELETE, ``latest``, an attestation, another repo...);
- ``ReleaseTagPushed``: a tag of the app's grammar (``abc1234`` / ``prod-abc1234``) names a release;
- ``BranchTagPushed`` / ``SignaturePushed``: a branch tag or a cosign signature was pushed, so the
  release(s) of that digest must be re-evaluated;
- ``ReferrerPushed``: an untagged cosign v3 signature (a Sigstore bundle pushed as an OCI 1.1
  referrer); its subject digest is read from the registry, then as for a signature;
- ``StorageClassChanged``: an image of an app was archived (``UPDATE_STORAGE_CLASS`` to ``ARCHIVE``,
  by a lifecycle rule or by hand) or restored (to ``STANDARD``); an archived image cannot be pulled,
  so the promoter raises an alert when it is deployed somewhere.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from tagrelay.config import App, Config
from tagrelay.domain.decision import Reason
from tagrelay.domain.tags import (
    SIGSTORE_BUNDLE_TYPES,
    ReleaseTag,
    is_digest,
    is_repository_name,
    parse_release_tag,
    signed_digest,
)

ECR_SOURCE = "aws.ecr"
IMAGE_ACTION = "ECR Image Action"
# AWS's schema for referrer events (an SBOM, a signature or an attestation that names a subject image)
# has the same detail fields as an image action. AWS publishes a sample of a referrer *restore* only,
# but a referrer push announced this way is a signature push like any other, so it is taken as one.
REFERRER_ACTION = "ECR Referrer Action"
# The detail-types whose pushes reach the promoter; infra/promoter.py's EventBridge rule matches these.
PUSH_DETAIL_TYPES = (IMAGE_ACTION, REFERRER_ACTION)
# The action types the promoter acts on: pushes, and images moving to or from ECR's archive.
PUSH_ACTION = "PUSH"
STORAGE_CLASS_ACTION = "UPDATE_STORAGE_CLASS"
ACTION_TYPES = (PUSH_ACTION, STORAGE_CLASS_ACTION)
ARCHIVE, STANDARD = "ARCHIVE", "STANDARD"
# How far ahead of the promoter's clock an event's time may be (clocks differ a little).
MAX_CLOCK_SKEW = timedelta(minutes=5)
# EventBridge event ids are UUIDs (8-4-4-4-12 hexadecimal digits).
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_ACCOUNT = re.compile(r"^\d{12}$")
_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d$")
# OCI distribution-spec repository name grammar.


class MalformedEvent(ValueError):
    """The event cannot be read. ``code`` is stable (for metrics); the message says what is wrong."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code

    @property
    def reason(self) -> Reason:
        """The decision's reason: ``malformed_event:<code>`` (a Reason member for each code)."""
        return Reason(f"malformed_event:{self.code}")


@dataclass(frozen=True)
class EcrPush:
    """The facts of one ECR Image Action event that tagrelay uses."""

    event_id: str
    time: datetime
    account: str
    region: str
    repository: str
    digest: str
    tag: str | None
    action: str
    result: str
    artifact_media_type: str | None = None
    detail_type: str = IMAGE_ACTION
    target_storage_class: str | None = None  # UPDATE_STORAGE_CLASS only: ARCHIVE or STANDARD


@dataclass(frozen=True)
class Ignored:
    code: Reason
    message: str
    event_id: str | None = None


@dataclass(frozen=True)
class ReleaseTagPushed:
    push: EcrPush
    app_name: str
    release: ReleaseTag


@dataclass(frozen=True)
class BranchTagPushed:
    push: EcrPush
    app_name: str
    branch: str


@dataclass(frozen=True)
class SignaturePushed:
    push: EcrPush
    app_name: str
    signed_digest: str


@dataclass(frozen=True)
class ReferrerPushed:
    push: EcrPush
    app_name: str


@dataclass(frozen=True)
class StorageClassChanged:
    push: EcrPush
    app_name: str

    @property
    def archived(self) -> bool:
        return self.push.target_storage_class == ARCHIVE


Trigger = ReleaseTagPushed | BranchTagPushed | SignaturePushed | ReferrerPushed
Intake = Trigger | StorageClassChanged | Ignored


def parse_push(event: Any, *, now: datetime | None = None) -> EcrPush | Ignored:
    """Check the envelope; ignore what is not an ECR Image Action, parse what is.

    Raises MalformedEvent for an envelope that EventBridge would never deliver. ``now`` is the
    promoter's clock (default: the system's), against which ``time`` may not be in the future.
    """
    if not isinstance(event, dict):
        raise MalformedEvent("not_an_object", f"the event must be a JSON object, got {type(event).__name__}")
    event_id = _required_string(event, "id", "event")
    if not _UUID.match(event_id):
        # Never echo it: it is exactly the text a forger chose.
        raise MalformedEvent("bad_id", "event.id is not a UUID, so the event did not come from EventBridge")
    source = _required_string(event, "source", "event")
    if source != ECR_SOURCE:
        raise MalformedEvent("bad_source", f"event.source must be {ECR_SOURCE!r}: tagrelay only reads ECR events")
    detail_type = _required_string(event, "detail-type", "event")
    account = _required_string(event, "account", "event")
    region = _required_string(event, "region", "event")
    if not _ACCOUNT.match(account) or not _REGION.match(region):
        raise MalformedEvent("unknown_registry", "event.account/region are not an AWS account id and region")
    time = _event_time(event, now or datetime.now(UTC))
    if detail_type not in PUSH_DETAIL_TYPES:
        expected = " or ".join(map(repr, PUSH_DETAIL_TYPES))
        return Ignored(Reason.OTHER_DETAIL_TYPE, f"detail-type is {detail_type!r}, not {expected}", event_id)
    return _parse_image_action(event, event_id, time=time, account=account, region=region, detail_type=detail_type)


def classify(event: Any, config: Config, *, now: datetime | None = None) -> Intake:
    """Full intake: envelope, then which app and which kind of tag. Raises MalformedEvent."""
    push = parse_push(event, now=now)
    if isinstance(push, Ignored):
        return push
    registries = {app.ecr_registry for app in config.apps.values()}
    if (push.account, push.region) not in registries:
        raise MalformedEvent(
            "unknown_registry",
            f"the event is from account {push.account} in {push.region}, which is no configured app's ECR registry",
        )
    if push.action == STORAGE_CLASS_ACTION:
        return _storage_class_change(push, config)
    if push.action != PUSH_ACTION:
        return Ignored(Reason.NOT_A_PUSH, f"action-type is {push.action!r}; only PUSH promotes", push.event_id)
    if push.result != "SUCCESS":
        return Ignored(Reason.PUSH_FAILED, f"result is {push.result!r}; only SUCCESS promotes", push.event_id)
    owner = config.app_for_repository(push.repository)
    if owner is None:
        return Ignored(
            Reason.UNKNOWN_REPOSITORY,
            f"repository {push.repository} is not an image of any configured app",
            push.event_id,
        )
    app_name, app = owner
    if app.ecr_registry != (push.account, push.region):
        raise MalformedEvent(
            "unknown_registry",
            f"{push.repository} belongs to app {app_name}, whose registry is not account {push.account} in {push.region}",
        )
    return _classify_tag(push, app_name, app)


def _storage_class_change(push: EcrPush, config: Config) -> Intake:
    """An image archived or restored: what the promoter alerts on when that image is deployed somewhere."""
    if push.result != "SUCCESS":
        return Ignored(Reason.STORAGE_CLASS_FAILED, f"result is {push.result!r}", push.event_id)
    if push.detail_type != IMAGE_ACTION:
        return Ignored(
            Reason.REFERRER_STORAGE_CLASS,
            "a referrer (signature, SBOM) was archived or restored: no image changed",
            push.event_id,
        )
    owner = config.app_for_repository(push.repository)
    if owner is None:
        return Ignored(
            Reason.UNKNOWN_REPOSITORY,
            f"repository {push.repository} is not an image of any configured app",
            push.event_id,
        )
    if push.target_storage_class not in (ARCHIVE, STANDARD):
        raise MalformedEvent(
            "bad_storage_class",
            f"detail.target-storage-class must be {ARCHIVE!r} or {STANDARD!r} on {STORAGE_CLASS_ACTION}, "
            f"got {push.target_storage_class!r}",
        )
    return StorageClassChanged(push, owner[0])


def _classify_tag(push: EcrPush, app_name: str, app: App) -> Intake:  # noqa: PLR0911 - one return per kind of tag in the event grammar
    tag = push.tag
    if not tag:
        if push.artifact_media_type in SIGSTORE_BUNDLE_TYPES:
            return ReferrerPushed(push, app_name)
        return Ignored(Reason.UNTAGGED_PUSH, "the push has no tag (pushed by digest)", push.event_id)
    release = parse_release_tag(tag, app.tag_regex)
    if release is not None:
        if release.env is not None and release.env not in app.environments:
            return Ignored(
                Reason.UNKNOWN_ENVIRONMENT,
                f"tag {tag} names environment {release.env!r}, which app {app_name} does not configure",
                push.event_id,
            )
        return ReleaseTagPushed(push, app_name, release)
    if app.env_for_branch(tag) is not None:
        return BranchTagPushed(push, app_name, tag)
    subject = signed_digest(tag)
    if subject is not None:
        return SignaturePushed(push, app_name, subject)
    return Ignored(
        Reason.TAG_OUTSIDE_GRAMMAR,
        f"tag {tag!r} is neither a release tag ({app.tag_pattern}), a branch tag of an environment, "
        "nor a cosign signature (sha256-<digest>.sig, or the sha256-<digest> referrers index)",
        push.event_id,
    )


def _parse_image_action(
    event: dict[str, Any], event_id: str, *, time: datetime, account: str, region: str, detail_type: str
) -> EcrPush:
    detail = event.get("detail")
    if not isinstance(detail, dict):
        raise MalformedEvent("bad_detail", "event.detail must be an object")
    repository = _required_string(detail, "repository-name", "detail")
    if not is_repository_name(repository):
        raise MalformedEvent("bad_repository", f"detail.repository-name {repository!r} is not a repository name")
    digest = _required_string(detail, "image-digest", "detail")
    if not is_digest(digest):
        raise MalformedEvent("bad_digest", f"detail.image-digest {digest!r} is not sha256:<64 lower-case hex>")
    tag = detail.get("image-tag")
    if tag is not None and not isinstance(tag, str):
        raise MalformedEvent("bad_field_type", f"detail.image-tag must be a string, got {type(tag).__name__}")
    artifact_type = detail.get("artifact-media-type")
    if artifact_type is not None and not isinstance(artifact_type, str):
        raise MalformedEvent(
            "bad_field_type", f"detail.artifact-media-type must be a string, got {type(artifact_type).__name__}"
        )
    storage_class = detail.get("target-storage-class")
    if storage_class is not None and not isinstance(storage_class, str):
        raise MalformedEvent(
            "bad_field_type", f"detail.target-storage-class must be a string, got {type(storage_class).__name__}"
        )
    return EcrPush(
        event_id=event_id,
        time=time,
        account=account,
        region=region,
        repository=repository,
        digest=digest,
        tag=tag or None,
        action=_required_string(detail, "action-type", "detail"),
        result=_required_string(detail, "result", "detail"),
        artifact_media_type=artifact_type,
        detail_type=detail_type,
        target_storage_class=storage_class,
    )


def _required_string(mapping: dict[str, Any], key: str, where: str) -> str:
    if key not in mapping:
        raise MalformedEvent("missing_field", f"{where}.{key} is missing")
    value = mapping[key]
    if not isinstance(value, str):
        raise MalformedEvent("bad_field_type", f"{where}.{key} must be a string, got {type(value).__name__}")
    if not value:
        raise MalformedEvent("empty_field", f"{where}.{key} is empty")
    return value


def _event_time(event: dict[str, Any], now: datetime) -> datetime:
    value = _required_string(event, "time", "event")
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise MalformedEvent("bad_time", "event.time is not an RFC 3339 timestamp") from None
    if moment.tzinfo is None:
        raise MalformedEvent("bad_time", "event.time has no time zone (EventBridge writes UTC, ending in Z)")
    if moment > now + MAX_CLOCK_SKEW:
        raise MalformedEvent(
            "future_time",
            f"event.time is {moment - now} ahead of the promoter's clock (more than {MAX_CLOCK_SKEW} is not a real event)",
        )
    return moment
