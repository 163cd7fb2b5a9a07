"""Configuration: the example loads, and every error names the field and the problem."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tagrelay.config import ConfigError, load_config, parse_config
from tests.factories import app_config

REPO = Path(__file__).resolve().parent.parent


def _parse(app: dict[str, Any], **top: Any) -> None:
    parse_config({"apps": {"mosaic-life": app}, "github": {"auth": {"token_secret": "t"}}, **top}, source="t.yaml")


def test_the_seed_example_loads() -> None:
    config = load_config(REPO / "examples" / "mosaic-life.yaml")
    app = config.apps["mosaic-life"]
    assert app.images == ["mosaic-life/web", "mosaic-life/core-api"]
    assert {env: e.branch for env, e in app.environments.items()} == {"prod": "main", "staging": "develop"}
    assert app.ecr_registry == ("033691785857", "us-east-1")
    assert app.signature_required
    assert config.app_for_repository("mosaic-life/core-api") == ("mosaic-life", app)
    assert config.app_for_repository("mosaic-life/docs") is None


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            {"tag_pattern": "^(?P<commit>[0-9a-f]{7})$"},
            "apps.mosaic-life.tag_pattern: must contain a named group 'sha'",
        ),
        ({"tag_pattern": "(?P<sha>[0-9a-f]{7})"}, "apps.mosaic-life.tag_pattern: must be anchored"),
        ({"tag_pattern": "^(?P<sha>[0-9a-f]{7}$"}, "apps.mosaic-life.tag_pattern: is not a valid regular expression"),
        ({"tag_pattern": "^(?P<sha>[0-9a-f]{7})(?P<x>.)$"}, "may only name the groups 'sha' and 'env'"),
        ({"images": []}, "apps.mosaic-life.images"),
        ({"images": ["mosaic-life/Web"]}, "'mosaic-life/Web' is not a registry repository name"),
        ({"images": ["a/web", "a/web"]}, "lists the same image twice"),
        ({"source_repo": "mosaic-life"}, "apps.mosaic-life.source_repo: must be a GitHub repository as owner/name"),
        ({"signature": "off"}, "apps.mosaic-life.signature: got 'off'; expected 'none' or a mapping"),
        ({"signature": {}}, "apps.mosaic-life.signature: give exactly one of key or keyless"),
        ({"signature": {"key": {}}}, "apps.mosaic-life.signature.key: give exactly one of public_key_pem"),
        ({"signature": {"key": {"public_key_pem": "not a key"}}}, "must be a PEM public key"),
        ({"environments": {"Prod": {"branch": "main"}}}, "environment name 'Prod'"),
        ({"gitops": {"repo": "o/g", "brnach": "main"}}, "apps.mosaic-life.gitops.brnach: unknown field"),
        ({"gitops": {"repo": "o/g", "values_file": "../x.yaml"}}, "must be a path inside the repository"),
        ({"registry": "ftp://registry"}, "apps.mosaic-life.registry: scheme must be http or https"),
    ],
)
def test_each_error_names_the_field_and_the_problem(change: dict[str, Any], expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        _parse(app_config(**change))
    assert expected in str(caught.value)
    assert str(caught.value).startswith("t.yaml: invalid configuration:")


def test_signature_is_required_there_is_no_default() -> None:
    app = app_config()
    del app["signature"]
    with pytest.raises(ConfigError, match=r"apps\.mosaic-life\.signature: required field is missing"):
        _parse(app)


def test_all_problems_are_reported_at_once() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config({"apps": {"mosaic-life": app_config(images=[], source_repo="x")}, "github": {"auth": {}}})
    message = str(caught.value)
    assert "apps.mosaic-life.images" in message
    assert "apps.mosaic-life.source_repo" in message
    assert "github.auth: give exactly one of token_secret or app" in message


def test_an_image_may_belong_to_one_app_only() -> None:
    with pytest.raises(ConfigError, match="listed by both apps one and two"):
        parse_config({"apps": {"one": app_config(), "two": app_config()}, "github": {"auth": {"token_secret": "t"}}})


def test_yaml_errors_name_the_line(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("apps:\n  mosaic-life:\n    images: [a\n")
    with pytest.raises(ConfigError, match=r"broken\.yaml: line \d+, column \d+: not valid YAML"):
        load_config(broken)


def test_duplicate_keys_in_the_configuration_are_refused(tmp_path: Path) -> None:
    duplicated = tmp_path / "dup.yaml"
    duplicated.write_text("apps: {}\napps: {}\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(duplicated)


def test_a_missing_file_says_how_to_give_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TAGRELAY_CONFIG", raising=False)
    with pytest.raises(ConfigError, match="pass --config FILE or set TAGRELAY_CONFIG"):
        load_config()
    with pytest.raises(ConfigError, match="cannot read the configuration file"):
        load_config("/nonexistent/tagrelay.yaml")


def _with_deploy(deploy: dict[str, Any]) -> dict[str, Any]:
    return {"apps": {"mosaic-life": app_config()}, "github": {"auth": {"token_secret": "t"}}, "deploy": deploy}


@pytest.mark.parametrize("placement", ["tracker_vpc", "promoter_vpc"])
def test_a_removed_setting_says_to_remove_it_not_that_it_is_unknown(tmp_path: Path, placement: str) -> None:
    """deploy.*_vpc.vpc_id was accepted once (and never used): a file written then names it and says what to do."""
    vpc = {"vpc_id": "vpc-0123456789abcdef0", "subnet_ids": ["subnet-0a1"], "security_group_ids": ["sg-0b2"]}
    old = tmp_path / "old.yaml"
    old.write_text(json.dumps(_with_deploy({placement: vpc})), encoding="utf-8")  # JSON is YAML
    with pytest.raises(ConfigError) as caught:
        load_config(old)
    assert str(caught.value) == (
        f"{old}: invalid configuration:\n"
        f"  deploy.{placement}.vpc_id: no longer read: the subnets (subnet_ids) determine the VPC; remove it"
    )
    del vpc["vpc_id"]
    old.write_text(json.dumps(_with_deploy({placement: vpc})), encoding="utf-8")
    assert getattr(load_config(old).deploy, placement).subnet_ids == ["subnet-0a1"]


def test_an_unknown_setting_of_the_same_section_is_still_unknown() -> None:
    vpc = {"vpc": "vpc-0123456789abcdef0", "subnet_ids": ["subnet-0a1"], "security_group_ids": ["sg-0b2"]}
    with pytest.raises(ConfigError, match=r"deploy\.tracker_vpc\.vpc: unknown field"):
        parse_config(_with_deploy({"tracker_vpc": vpc}))
