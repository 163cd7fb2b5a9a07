"""Event intake: every ignore and malformed case, decided from the event and configuration alone."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tagrelay.config import parse_config
from tagrelay.domain.events import (
    BranchTagPushed,
    Ignored,
    MalformedEvent,
    ReferrerPushed,
    ReleaseTagPushed,
    SignaturePushed,
    StorageClassChanged,
    classify,
)
from tests.factories import ENV_PREFIXED_PATTERN, app_config, config, digest_of, ecr_push_event

CONFIG = config()
HEX64 = "a" * 64


def test_a_release_tag_push_names_the_release() -> None:
    intake = classify(ecr_push_event(tag="abc1234"), CONFIG)
    assert isinstance(intake, ReleaseTagPushed)
    assert (intake.app_name, intake.release.sha, intake.release.env) == ("mosaic-life", "abc1234", None)
    assert intake.push.repository == "mosaic-life/web"


def test_branch_tags_trigger_re_evaluation_of_their_digest() -> None:
    intake = classify(ecr_push_event(tag="develop"), CONFIG)
    assert isinstance(intake, BranchTagPushed)
    assert intake.branch == "develop"


def test_a_cosign_signature_tag_names_the_signed_digest() -> None:
    signature_manifest = digest_of("signature manifest")
    intake = classify(ecr_push_event(tag=f"sha256-{HEX64}.sig", digest=signature_manifest), CONFIG)
    assert isinstance(intake, SignaturePushed)
    assert intake.signed_digest == f"sha256:{HEX64}"
    assert intake.push.digest == signature_manifest


def test_cosign_v3_bundle_pushes_are_signature_events() -> None:
    # Without the referrers API, cosign v3 keeps bundles in an index tagged sha256-<hex> (no suffix).
    fallback = classify(ecr_push_event(tag=f"sha256-{HEX64}", digest=digest_of("index")), CONFIG)
    assert isinstance(fallback, SignaturePushed)
    assert fallback.signed_digest == f"sha256:{HEX64}"
    # With it, the bundle is pushed by digest only, typed by its artifact media type.
    untagged = ecr_push_event(tag=None, digest=digest_of("bundle"))
    untagged["detail"]["artifact-media-type"] = "application/vnd.dev.sigstore.bundle.v0.3+json"
    assert isinstance(classify(untagged, CONFIG), ReferrerPushed)
    # The same push, should ECR announce it as a referrer action (its schema has the same fields).
    assert isinstance(classify({**untagged, "detail-type": "ECR Referrer Action"}, CONFIG), ReferrerPushed)


def test_env_prefixed_grammar_works_by_configuration_alone() -> None:
    prefixed = config(tag_pattern=ENV_PREFIXED_PATTERN)
    intake = classify(ecr_push_event(tag="prod-abc1234"), prefixed)
    assert isinstance(intake, ReleaseTagPushed)
    assert (intake.release.env, intake.release.sha) == ("prod", "abc1234")
    # With that grammar a bare SHA is not a release tag.
    assert isinstance(classify(ecr_push_event(tag="abc1234"), prefixed), Ignored)


@pytest.mark.parametrize(
    ("event_change", "code"),
    [
        ({"detail-type": "ECR Image Scan"}, "other_detail_type"),
        ({"detail-type": "ECR Artifact Action"}, "other_detail_type"),
        (
            {
                "detail-type": "ECR Referrer Action",
                "detail": {"action-type": "UPDATE_STORAGE_CLASS", "target-storage-class": "STANDARD"},
            },
            "referrer_storage_class",
        ),
        ({"detail": {"action-type": "DELETE"}}, "not_a_push"),
        ({"detail": {"action-type": "UPDATE_STORAGE_CLASS", "result": "FAILED"}}, "storage_class_failed"),
        (
            {"detail": {"action-type": "UPDATE_STORAGE_CLASS", "repository-name": "mosaic-life/docs"}},
            "unknown_repository",
        ),
        ({"detail": {"result": "FAILED"}}, "push_failed"),
        ({"detail": {"repository-name": "mosaic-life/docs"}}, "unknown_repository"),
        ({"detail": {"image-tag": None}}, "untagged_push"),
        ({"detail": {"image-tag": ""}}, "untagged_push"),
        ({"detail": {"image-tag": "latest"}}, "tag_outside_grammar"),
        ({"detail": {"image-tag": "1.4.2"}}, "tag_outside_grammar"),
        ({"detail": {"image-tag": "v1.4.2"}}, "tag_outside_grammar"),
        ({"detail": {"image-tag": "pr-12345678"}}, "tag_outside_grammar"),
        ({"detail": {"image-tag": "feature-abc1234"}}, "tag_outside_grammar"),
        ({"detail": {"image-tag": f"sha256-{HEX64}.att"}}, "tag_outside_grammar"),
        ({"detail": {"image-tag": f"sha256-{HEX64}.sbom"}}, "tag_outside_grammar"),
        ({"detail": {"image-tag": "abc1234" + "0" * 33}}, "tag_outside_grammar"),  # 40-char SHA
        ({"detail": {"image-tag": "abc12345"}}, "tag_outside_grammar"),  # 8 chars
        ({"detail": {"image-tag": "ABC1234"}}, "tag_outside_grammar"),  # upper case
        ({"detail": {"image-tag": "feature-x"}}, "tag_outside_grammar"),  # a branch with no environment
    ],
)
def test_ignored_events_say_why(event_change: dict[str, Any], code: str) -> None:
    event = _changed(ecr_push_event(), event_change)
    intake = classify(event, CONFIG)
    assert isinstance(intake, Ignored), intake
    assert intake.code == code
    assert intake.message


def test_an_image_archived_or_restored_is_a_storage_class_change_of_its_app() -> None:
    archived = _changed(
        ecr_push_event(tag=None), {"detail": {"action-type": "UPDATE_STORAGE_CLASS", "target-storage-class": "ARCHIVE"}}
    )
    intake = classify(archived, CONFIG)
    assert isinstance(intake, StorageClassChanged) and intake.archived and intake.app_name == "mosaic-life"
    restored = _changed(archived, {"detail": {"target-storage-class": "STANDARD"}})
    intake = classify(restored, CONFIG)
    assert isinstance(intake, StorageClassChanged) and not intake.archived
    for target in (None, "GLACIER", 3):
        with pytest.raises(MalformedEvent) as caught:
            classify(_changed(archived, {"detail": {"target-storage-class": target}}), CONFIG)
        assert caught.value.code in ("bad_storage_class", "bad_field_type")


def test_an_env_prefix_the_app_does_not_configure_is_ignored() -> None:
    prefixed = config(tag_pattern=r"^(?P<env>prod|staging|qa)-(?P<sha>[0-9a-f]{7})$")
    intake = classify(ecr_push_event(tag="qa-abc1234"), prefixed)
    assert isinstance(intake, Ignored)
    assert intake.code == "unknown_environment"


@pytest.mark.parametrize(
    ("event", "code", "names"),
    [
        ([1, 2], "not_an_object", "JSON object"),
        ({}, "missing_field", "event.id"),
        ("id", "missing_field", "event.id"),
        ({"id": 7, "source": "aws.ecr", "detail-type": "ECR Image Action", "detail": {}}, "bad_field_type", "event.id"),
        ("detail:missing", "bad_detail", "event.detail"),
        ("detail:string", "bad_detail", "event.detail"),
        ("repository-name:missing", "missing_field", "detail.repository-name"),
        ("repository-name:number", "bad_field_type", "detail.repository-name"),
        ("repository-name:Upper/Case", "bad_repository", "detail.repository-name"),
        ("image-digest:missing", "missing_field", "detail.image-digest"),
        (
            "image-digest:sha256:7f5b2640fe6fb4f46592dfd3410c4a79dac4f89e4782432e0378abcd1234",
            "bad_digest",
            "image-digest",
        ),
        ("image-digest:md5:abc", "bad_digest", "image-digest"),
        ("image-tag:number", "bad_field_type", "detail.image-tag"),
        ("action-type:missing", "missing_field", "detail.action-type"),
        ("result:list", "bad_field_type", "detail.result"),
        ("time:yesterday", "bad_time", "event.time"),
        ("time:2026-11-26T10:00:00", "bad_time", "event.time"),
        ("time:missing", "missing_field", "event.time"),
        ("id:13cde686\nReviewed-by: x", "bad_id", "not a UUID"),
        ("id:8c9gd6f7-6fg6-9ccf-c268-EXAMPLE", "bad_id", "not a UUID"),  # AWS's own sample id is no UUID
        ("source:aws.s3", "bad_source", "aws.ecr"),
        ("account:missing", "missing_field", "event.account"),
        ("account:12345", "unknown_registry", "account"),
        ("account:111111111111", "unknown_registry", "111111111111"),
        ("region:eu-west-1", "unknown_registry", "eu-west-1"),
    ],
)
def test_malformed_events_are_rejected_with_what_is_wrong(event: Any, code: str, names: str) -> None:
    if isinstance(event, str):
        event = _broken(event)
    with pytest.raises(MalformedEvent) as caught:
        classify(event, CONFIG)
    assert caught.value.code == code
    assert caught.value.reason == f"malformed_event:{code}"  # a Reason member: the decision's stable code
    assert names in str(caught.value)


def test_awss_own_sample_with_a_60_hex_digest_is_malformed() -> None:
    # The ECR user guide's samples: AWS's much-copied sample digest has only 60 hex digits.
    event = ecr_push_event(digest="sha256:7f5b2640fe6fb4f46592dfd3410c4a79dac4f89e4782432e0378abcd1234")
    with pytest.raises(MalformedEvent, match="image-digest"):
        classify(event, CONFIG)


# --- property-based: the parser is total and faithful ---

_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=5),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(_json)
def test_any_json_is_classified_or_rejected_as_malformed(event: Any) -> None:
    try:
        classify(event, CONFIG)
    except MalformedEvent as exc:
        assert exc.code and str(exc)


_field_values = st.one_of(st.none(), st.integers(), st.text(max_size=80), st.lists(st.text(max_size=5), max_size=2))


@settings(max_examples=300, deadline=None)
@given(
    field=st.sampled_from(["repository-name", "image-digest", "image-tag", "action-type", "result"]),
    value=_field_values,
)
def test_a_mutated_detail_field_is_classified_or_rejected(field: str, value: Any) -> None:
    event = ecr_push_event()
    event["detail"][field] = value
    try:
        classify(event, CONFIG)
    except MalformedEvent as exc:
        assert field in str(exc)
        return
    # Accepted: the field held a string (only the tag may be absent).
    assert isinstance(value, str) or (field == "image-tag" and value is None)


@settings(max_examples=200, deadline=None)
@given(sha=st.from_regex(r"\A[0-9a-f]{7}\Z"), repo=st.sampled_from(["mosaic-life/web", "mosaic-life/core-api"]))
def test_every_short_sha_push_of_a_configured_image_is_a_release(sha: str, repo: str) -> None:
    digest = digest_of(sha + repo)
    intake = classify(ecr_push_event(repository=repo, tag=sha, digest=digest), CONFIG)
    assert isinstance(intake, ReleaseTagPushed)
    assert (intake.release.sha, intake.push.digest, intake.push.repository) == (sha, digest, repo)


def _changed(event: dict[str, Any], change: dict[str, Any]) -> dict[str, Any]:
    event = copy.deepcopy(event)
    for key, value in change.items():
        if key == "detail":
            for detail_key, detail_value in value.items():
                if detail_value is None:
                    event["detail"].pop(detail_key, None)
                else:
                    event["detail"][detail_key] = detail_value
        else:
            event[key] = value
    return event


def _broken(spec: str) -> dict[str, Any]:
    event = ecr_push_event()
    if spec == "id":
        del event["id"]
        return event
    field, _, value = spec.partition(":")
    target = event if field in ("detail", "time", "id", "source", "account", "region") else event["detail"]
    replacements: dict[str, Any] = {"missing": ..., "string": "text", "number": 42, "list": ["SUCCESS"]}
    new_value = replacements.get(value, value)
    if new_value is ...:
        del target[field]
    else:
        target[field] = new_value
    return event


def test_an_event_from_the_future_is_malformed_and_a_late_one_is_not() -> None:
    now = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
    ahead = _changed(ecr_push_event(), {"time": "2026-11-26T10:06:00Z"})
    with pytest.raises(MalformedEvent) as caught:
        classify(ahead, CONFIG, now=now)
    assert caught.value.code == "future_time"
    skewed = _changed(ecr_push_event(), {"time": "2026-11-26T10:04:00Z"})
    assert isinstance(classify(skewed, CONFIG, now=now), ReleaseTagPushed)
    redriven = _changed(ecr_push_event(), {"time": "2026-11-20T10:00:00Z"})  # a dead-letter redrive days later
    assert isinstance(classify(redriven, CONFIG, now=now), ReleaseTagPushed)


def test_an_event_of_another_apps_registry_is_malformed() -> None:
    two = parse_config(
        {
            "apps": {
                "mosaic-life": app_config(),
                "other": app_config(registry="111111111111.dkr.ecr.eu-west-1.amazonaws.com", images=["other/web"]),
            },
            "github": {"auth": {"token_secret": "github-token"}},
        }
    )
    event = _changed(ecr_push_event(repository="other/web"), {})
    with pytest.raises(MalformedEvent) as caught:
        classify(event, two)
    assert caught.value.code == "unknown_registry"
    assert "other/web belongs to app other" in str(caught.value)
