"""Release-tag immutability (pure): ECR exclusion filters against the app's release-tag grammar."""

from __future__ import annotations

import re

import pytest

from tagrelay.domain.mutability import (
    IMMUTABLE,
    IMMUTABLE_WITH_EXCLUSION,
    MUTABLE,
    MUTABLE_WITH_EXCLUSION,
    assess,
    exposed_release_tag,
    filter_matches,
    fix_command,
    safe_exclusions,
)

BARE = re.compile(r"^(?P<sha>[0-9a-f]{7})$")
PREFIXED = re.compile(r"^(?P<env>prod|staging)-(?P<sha>[0-9a-f]{7})$")


@pytest.mark.parametrize(
    ("pattern", "tag", "matches"),
    [
        ("sha256-*", "sha256-" + "a" * 64 + ".sig", True),
        ("sha256-*", "sha256-" + "a" * 64, True),
        ("prod*", "prod", True),  # * is zero or more characters (lifecycle tagPatternList's reading)
        ("prod*", "xprod", False),
        ("*prod", "repo-prod", True),
        ("prod*repo", "prod-x-repo", True),
        ("main", "main", True),
        ("main", "mainline", True),  # a filter without * may match any tag containing it (scanning's reading)
        ("MAIN", "main", True),  # case is ignored: it can only make tagrelay refuse more
        ("latest", "abc1234", False),
    ],
)
def test_an_exclusion_filter_matches_as_the_union_of_ecrs_documented_readings(
    pattern: str, tag: str, matches: bool
) -> None:
    assert filter_matches(pattern, tag) is matches


@pytest.mark.parametrize("pattern", ["sha256-*", "*.sig", "main", "develop", "latest", "v*", "dev-*", "pr-*"])
def test_the_usual_exclusions_exempt_no_short_sha_tag(pattern: str) -> None:
    assert exposed_release_tag(BARE, [pattern]) is None
    assert exposed_release_tag(PREFIXED, [pattern]) is None


@pytest.mark.parametrize(
    ("pattern", "grammar", "example"),
    [
        ("*", BARE, "0000000"),
        ("a*", BARE, "a000000"),
        ("*1", BARE, "0000001"),
        ("dead", BARE, "000dead"),
        ("ABC*", BARE, "abc0000"),
        ("b*e*", BARE, "b00000e"),
        ("prod-*", PREFIXED, "prod-0000000"),
        ("*-*", PREFIXED, "prod-0000000"),
    ],
)
def test_a_filter_that_exempts_a_release_tag_is_found_with_an_example(
    pattern: str, grammar: re.Pattern[str], example: str
) -> None:
    exposure = exposed_release_tag(grammar, ["sha256-*", pattern])
    assert exposure is not None
    assert (exposure.filter, exposure.example_tag) == (pattern, example)
    assert grammar.match(exposure.example_tag)
    assert filter_matches(pattern, exposure.example_tag)


def test_re_match_reads_an_unanchored_end_as_any_suffix() -> None:
    # Without $, `re.match` also accepts 0000000z: a filter *z* then exempts a release tag.
    exposure = exposed_release_tag(re.compile(r"^(?P<sha>[0-9a-f]{7,40})"), ["*z*"])
    assert exposure is not None and exposure.example_tag == "0000000z"
    # An alternative outside the anchors is part of the grammar too.
    exposure = exposed_release_tag(re.compile(r"^(?P<sha>[0-9a-f]{7})$|^x"), ["xy*"])
    assert exposure is not None and exposure.example_tag == "xy"


def test_immutable_protects_and_the_mutable_settings_do_not() -> None:
    assert assess(IMMUTABLE, [], BARE).protected
    assert assess(IMMUTABLE_WITH_EXCLUSION, ["sha256-*", "main", "develop"], BARE).protected
    mutable = assess(MUTABLE, [], BARE)
    assert not mutable.protected and "MUTABLE" in (mutable.problem or "")
    assert not assess(MUTABLE_WITH_EXCLUSION, ["*"], BARE).protected
    exposed = assess(IMMUTABLE_WITH_EXCLUSION, ["sha256-*", "a*"], BARE)
    assert not exposed.protected
    assert "'a*'" in (exposed.problem or "") and "'a000000'" in (exposed.problem or "")


def test_a_grammar_tagrelay_cannot_analyse_fails_closed() -> None:
    lookahead = re.compile(r"^(?P<sha>[0-9a-f]{7})(?=x)$")
    verdict = assess(IMMUTABLE_WITH_EXCLUSION, ["latest"], lookahead)
    assert not verdict.protected
    assert "cannot prove" in (verdict.problem or "")
    assert assess(IMMUTABLE, [], lookahead).protected  # no filter: nothing to analyse


def test_the_fix_keeps_the_safe_exclusions_and_adds_the_ones_tagrelay_needs() -> None:
    kept = safe_exclusions(["latest", "a*"], BARE, ["sha256-*", "main", "develop"])
    assert kept == ["latest", "sha256-*", "main", "develop"]
    command = fix_command("team/web", account="123456789012", region="eu-west-1", exclusions=kept)
    assert command == (
        "aws ecr put-image-tag-mutability --registry-id 123456789012 --region eu-west-1 "
        "--repository-name team/web --image-tag-mutability IMMUTABLE_WITH_EXCLUSION "
        "--image-tag-mutability-exclusion-filters filterType=WILDCARD,filter=latest "
        "'filterType=WILDCARD,filter=sha256-*' filterType=WILDCARD,filter=main filterType=WILDCARD,filter=develop"
    )
    assert fix_command("web", account="1", region="r", exclusions=[]).endswith("--image-tag-mutability IMMUTABLE")
