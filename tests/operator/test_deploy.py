"""`tagrelay deploy` end to end: the command signs the caller's identity, invokes the promoter function
on the local Lambda API, and the function runs the promoter's checks, commits and records.

Every test goes through the real entry points: tagrelay.cli.main, boto3's Lambda client, the Lambda
API server, the promoter handler in its own process, the GitHub stand-in, the registry, moto.
"""

from __future__ import annotations

import pytest

from devstack.images import CosignKeySigner
from devstack.scenario import SeedScenario
from tests.operator.support import Configure, gitops_tag, pushed, records, run, run_json, subjects

pytestmark = pytest.mark.stack

MOTO_CALLER = "arn:aws:sts::123456789012:user/moto"  # what moto's STS answers for the stack's credentials


def test_deploy_commits_the_release_with_the_manual_subject_and_records_the_verified_actor(
    scenario: SeedScenario, operator_env: Configure, capsys: pytest.CaptureFixture[str]
) -> None:
    operator_env()
    release = pushed(scenario, "prod")

    code, out, err = run(capsys, "deploy", release.sha, "--env", "prod")

    assert (code, err) == (0, ""), err
    assert f"mosaic-life/prod: {release.tag} (was prod-cf3124b) committed as" in out
    assert f"by {MOTO_CALLER}" in out
    assert subjects(scenario)[0] == f"deploy(prod): manual update to image tag {release.tag}"
    assert gitops_tag(scenario, "prod") == release.tag
    [record] = [r for r in records("prod") if r.outcome == "committed" and r.trigger != "external"]
    assert (record.trigger, record.actor, record.tag, record.full_sha) == (
        "manual",
        MOTO_CALLER,
        release.tag,
        release.sha,
    )
    assert record.status == "COMMITTED"  # tracked like any deployment


def test_a_full_sha_is_taken_as_given_not_cut_to_seven_characters(
    scenario: SeedScenario, operator_env: Configure, capsys: pytest.CaptureFixture[str]
) -> None:
    operator_env()
    release = pushed(scenario, "prod")
    # A mistyped full SHA that shares the release's first seven characters.
    typo = release.sha[:7] + ("1" if release.sha[7] == "0" else "0") + release.sha[8:]

    code, answer, _ = run_json(capsys, "deploy", typo, "--env", "prod")

    assert code != 0 and answer["ok"] is False
    assert answer["reason"] == "commit_not_found"
    assert typo in answer["message"]
    assert gitops_tag(scenario, "prod") == "prod-cf3124b"
    code, answer, _ = run_json(capsys, "deploy", release.sha[:12], "--env", "prod")  # a longer prefix is fine
    assert code == 0 and answer["outcome"] == "committed" and answer["sha"] == release.sha


def test_deploy_json_carries_the_checks_and_a_second_run_changes_nothing(
    scenario: SeedScenario, operator_env: Configure, capsys: pytest.CaptureFixture[str]
) -> None:
    operator_env()
    release = pushed(scenario, "staging")

    code, answer, _ = run_json(capsys, "deploy", release.sha[:7], "--env", "staging")

    assert code == 0
    assert answer["ok"] is True and answer["outcome"] == "committed" and answer["actor"] == MOTO_CALLER
    checks = {c["name"]: c["status"] for c in answer["checks"]}
    assert checks == {
        "readiness": "pass",
        "tag immutability": "pass",
        "environment": "pass",
        "signatures": "pass",
        "commit": "pass",
        "staging: branch": "pass",
        "staging: archive": "pass",
        "staging: commit": "pass",  # no order check: the seed's tag (staging-545ef16) names no commit
    }
    code, again, _ = run_json(capsys, "deploy", release.sha[:7], "--env", "staging")
    assert code == 0 and again["outcome"] == "noop" and "already runs" in again["message"]


def test_deploy_refuses_what_a_push_would_not_promote_and_commits_nothing(
    scenario: SeedScenario, operator_env: Configure, capsys: pytest.CaptureFixture[str]
) -> None:
    operator_env()
    seeded = subjects(scenario)
    not_a_commit = "deadbee" + "0" * 33
    unknown = scenario.release(not_a_commit, branch="main")
    develop_only = pushed(scenario, "staging")
    one_image = pushed(scenario, "prod", images=scenario.images[:1])
    unsigned = pushed(scenario, "prod", sign=False)
    forged = pushed(scenario, "prod", signer=CosignKeySigner.generate())
    never_built = scenario.commit("main")
    cases = {
        "unknown SHA": (unknown.sha, "commit_not_found", f"{unknown.tag} is not a commit of"),
        "not on the branch": (develop_only.sha, "commit_not_on_branch", "is not on branch main"),
        "an image missing": (one_image.sha, "release_incomplete", f"{scenario.images[1]} has no tag {one_image.tag}"),
        "never pushed": (never_built, "release_incomplete", f"have no tag {never_built[:7]}"),
        "unsigned": (unsigned.sha, "signature_missing", "no signature"),
        "signed by someone else": (forged.sha, "signature_invalid", "signature"),
    }
    for case, (sha, reason, detail) in cases.items():
        code, out, err = run(capsys, "deploy", sha, "--env", "prod")

        assert code == 1 and out == "", case
        assert err.startswith(f"tagrelay: deploy of {sha[:7]} to mosaic-life/prod refused ({reason}): "), (case, err)
        assert detail in err, (case, err)
        assert "what to do: " in err, (case, err)

    assert subjects(scenario) == seeded
    assert gitops_tag(scenario, "prod") == "prod-cf3124b"
    # Each refusal is in the ledger for audit, with the actor; none expires (an operator's wait is a refusal).
    # (Beside them: what prod ran when tagrelay first looked, recorded by the first command's plan.)
    [found] = [r for r in records("prod") if r.trigger == "external"]
    assert (found.reason, found.tag) == ("external_change", "prod-cf3124b")
    refused = [r for r in records("prod") if r.trigger != "external"]
    assert sorted(r.reason for r in refused) == sorted(reason for _, reason, _ in cases.values())
    assert {(r.trigger, r.actor, r.outcome) for r in refused} == {("manual", MOTO_CALLER, "refused")}


def test_deploy_never_goes_back_and_points_to_rollback(
    scenario: SeedScenario, operator_env: Configure, capsys: pytest.CaptureFixture[str]
) -> None:
    operator_env()
    older = pushed(scenario, "prod")
    newer = pushed(scenario, "prod")
    assert run(capsys, "deploy", newer.sha, "--env", "prod")[0] == 0

    code, answer, err = run_json(capsys, "deploy", older.sha, "--env", "prod")

    assert code == 1
    assert (answer["outcome"], answer["reason"]) == ("refused", "newer_commit_deployed")
    assert answer["hint"] == f"to go back on purpose, run: tagrelay rollback --env prod --to {older.sha}"
    assert "refused (newer_commit_deployed)" in err
    assert gitops_tag(scenario, "prod") == newer.tag
    [superseded] = [r for r in records("prod") if r.outcome == "superseded"]
    assert (superseded.trigger, superseded.deployed_sha) == ("manual", newer.sha[:7])


def test_deploy_to_a_pinned_environment_is_refused_until_unpinned(
    scenario: SeedScenario, operator_env: Configure, capsys: pytest.CaptureFixture[str]
) -> None:
    operator_env()
    release = pushed(scenario, "prod")
    assert run(capsys, "pin", "--env", "prod", "--reason", "incident 4711")[0] == 0

    code, _, err = run(capsys, "deploy", release.sha, "--env", "prod")

    assert code == 1
    assert "refused (environment_pinned): prod is pinned (incident 4711)" in err
    assert "tagrelay unpin --env prod" in err
    assert gitops_tag(scenario, "prod") == "prod-cf3124b"
    assert run(capsys, "unpin", "--env", "prod")[0] == 0
    assert run(capsys, "deploy", release.sha, "--env", "prod")[0] == 0
    assert gitops_tag(scenario, "prod") == release.tag


def test_deploy_with_an_env_prefixed_grammar_derives_the_prefixed_tag(
    scenario: SeedScenario, operator_env: Configure, capsys: pytest.CaptureFixture[str]
) -> None:
    operator_env(tag_pattern="^(?P<env>prod|staging)-(?P<sha>[0-9a-f]{7})$")
    sha = scenario.commit("main")
    release = scenario.release(sha, branch=None, tag=f"prod-{sha[:7]}")

    code, _, err = run(capsys, "deploy", sha, "--env", "prod")

    assert code == 0, err
    assert subjects(scenario)[0] == f"deploy(prod): manual update to image tag {release.tag}"


def test_options_the_command_can_judge_itself_exit_2_before_invoking_anything(
    scenario: SeedScenario, operator_env: Configure, capsys: pytest.CaptureFixture[str]
) -> None:
    operator_env()

    assert run(capsys, "deploy", "abc1234", "--env", "qa")[0:3:2] == (
        2,
        "tagrelay: mosaic-life has no environment 'qa'; configured: prod, staging\n",
    )
    assert run(capsys, "deploy", "abc1234", "--env", "prod", "--app", "shop")[0] == 2
    assert run(capsys, "deploy", "xyz", "--env", "prod")[0:3:2] == (
        2,
        "tagrelay: SHA must be 7 to 40 hexadecimal characters, got 'xyz'\n",
    )
    assert records("prod") == []


def test_an_unknown_function_is_named_with_what_to_pass(
    scenario: SeedScenario, operator_env: Configure, capsys: pytest.CaptureFixture[str]
) -> None:
    operator_env()

    code, _, err = run(capsys, "deploy", "abc1234", "--env", "prod", "--function", "nope")

    assert code == 1
    assert "no function 'nope' at http://127.0.0.1:" in err and "--lambda-endpoint" in err


def test_a_refusal_names_each_digest_once_and_says_it_once(
    scenario: SeedScenario, operator_env: Configure, capsys: pytest.CaptureFixture[str]
) -> None:
    """The refusal was 2.5 KB: each digest four times, and the deciding check repeated the message."""
    import re

    operator_env()
    forged = pushed(scenario, "prod", signer=CosignKeySigner.generate())
    code, out, err = run(capsys, "deploy", forged.sha, "--env", "prod")
    assert code == 1 and out == ""
    digests = re.findall(r"[0-9a-f]{64}", err)
    assert len(digests) == len(set(digests)) == len(scenario.images) + 1  # each image, and the key, once
    for image, digest in forged.digests.items():
        assert f"{image}@{digest}" in err
    assert err.count("none of the 1 signature(s)") == len(scenario.images)
    assert len(err) < 1500
    # The JSON answer keeps every detail in full.
    code, answer, _ = run_json(capsys, "deploy", forged.sha, "--env", "prod")
    assert code == 1 and all(digest.removeprefix("sha256:") in answer["message"] for digest in forged.digests.values())
