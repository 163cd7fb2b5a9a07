"""`tagrelay deploy` end to end: the command signs the caller's identity, invokes the promoter function
on the local Lambda API, and the function runs the promoter's checks, commits and records.

Every test goes through the real entry points: tagrelay.cli.main, boto3's Lambda client, the Lambda
API server, the promoter handler in its own process, the GitHub stand-in, the registry, moto. What
deploy refuses and why, and the commit-first order, are tested on the fakes (tests/services/test_operate.py).
"""

from __future__ import annotations

import pytest

from devstack.scenario import SeedScenario
from tests.operator.support import Configure, gitops_tag, pushed, records, run, subjects

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
