"""Operator commands on the fakes: `tagrelay deploy`, `rollback`, `pin` and `unpin` through the command's
own code (plan, request id, precondition, pending requests) and the operator service, with the world
installed in runtime.py. The caller's identity is proved to FakeIdentity; deployments' outcomes are
recorded as the tracker records them. The same commands end to end, through boto3's Lambda client,
the local Lambda API, STS and the promoter function in its own process, are in tests/operator/.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

from devstack.images import CosignKeySigner
from devstack.scenario import Release
from devstack.sigstore_testing import (
    GitHubIdentity,
    KeylessSigner,
    TestSigstore,
    demo_sigstore,
    keyless_signature_config,
    sign_image_keyless,
)
from tagrelay.domain.decision import OPERATOR_CHECK_ORDER, PUSH_CHECK_ORDER
from tagrelay.errors import TransientError
from tests.fakes.world import OPERATOR_ARN, FakeWorld
from tests.operator.test_check_order import follows, generic
from tests.services.support import (
    cli,
    cli_json,
    deliver_installed,
    deployed,
    deployment,
    gitops_tag,
    history,
    pushed,
    state,
)

Install = Callable[..., Path]


@pytest.fixture
def installed(install: Install) -> Path:
    return install()


def subjects(world: FakeWorld, limit: int = 20) -> list[str]:
    return world.gitops_subjects(limit)


def records(world: FakeWorld, env: str) -> list[Any]:
    return history(world, env)


def three_releases(world: FakeWorld) -> tuple[Release, Release, Release]:
    """A and B reached SUCCEEDED in prod; C, running now, is DEGRADED."""
    return deployed(world), deployed(world), deployed(world, outcome="DEGRADED")


# --- deploy ---


def test_deploy_commits_with_the_manual_subject_and_records_the_verified_actor(
    world: FakeWorld, installed: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    release = pushed(world, "prod")
    code, out, err = cli(capsys, "deploy", release.sha, "--env", "prod")
    assert (code, err) == (0, ""), err
    assert f"mosaic-life/prod: {release.tag} (was prod-cf3124b) committed as" in out
    assert f"by {OPERATOR_ARN}" in out
    assert subjects(world)[0] == f"deploy(prod): manual update to image tag {release.tag}"
    [record] = [r for r in records(world, "prod") if r.outcome == "committed" and r.trigger != "external"]
    assert (record.trigger, record.actor, record.tag, record.full_sha, record.status) == (
        "manual",
        OPERATOR_ARN,
        release.tag,
        release.sha,
        "COMMITTED",
    )


def test_a_full_sha_is_taken_as_given_not_cut_to_seven_characters(
    world: FakeWorld, installed: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    release = pushed(world, "prod")
    typo = release.sha[:7] + ("1" if release.sha[7] == "0" else "0") + release.sha[8:]
    code, answer, _ = cli_json(capsys, "deploy", typo, "--env", "prod")
    assert code != 0 and (answer["ok"], answer["reason"]) == (False, "commit_not_found")
    assert typo in answer["message"]
    assert gitops_tag(world, "prod") == "prod-cf3124b"
    code, answer, _ = cli_json(capsys, "deploy", release.sha[:12], "--env", "prod")  # a longer prefix is fine
    assert code == 0 and answer["outcome"] == "committed" and answer["sha"] == release.sha


def test_deploy_json_carries_the_checks_and_a_second_run_changes_nothing(
    world: FakeWorld, installed: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    release = pushed(world, "staging")
    code, answer, _ = cli_json(capsys, "deploy", release.sha[:7], "--env", "staging")
    assert code == 0 and answer["ok"] is True and answer["outcome"] == "committed" and answer["actor"] == OPERATOR_ARN
    assert {c["name"]: c["status"] for c in answer["checks"]} == {
        "readiness": "pass",
        "tag immutability": "pass",
        "environment": "pass",
        "signatures": "pass",
        "commit": "pass",
        "staging: branch": "pass",
        "staging: archive": "pass",
        "staging: commit": "pass",  # no order check: the seed's tag (staging-545ef16) names no commit
    }
    code, again, _ = cli_json(capsys, "deploy", release.sha[:7], "--env", "staging")
    assert code == 0 and again["outcome"] == "noop" and "already runs" in again["message"]


def test_deploy_refuses_what_a_push_would_not_promote_and_records_each_refusal(
    world: FakeWorld, installed: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    seeded = subjects(world)
    unknown = world.release("deadbee" + "0" * 33, branch="main")
    develop_only = pushed(world, "staging")
    one_image = pushed(world, "prod", images=world.images[:1])
    unsigned = pushed(world, "prod", sign=False)
    forged = pushed(world, "prod", signer=CosignKeySigner.generate())
    never_built = world.commit("main")
    cases = {
        "unknown SHA": (unknown.sha, "commit_not_found", f"{unknown.tag} is not a commit of"),
        "not on the branch": (develop_only.sha, "commit_not_on_branch", "is not on branch main"),
        "an image missing": (one_image.sha, "release_incomplete", f"{world.images[1]} has no tag {one_image.tag}"),
        "never pushed": (never_built, "release_incomplete", f"have no tag {never_built[:7]}"),
        "unsigned": (unsigned.sha, "signature_missing", "no signature"),
        "signed by someone else": (forged.sha, "signature_invalid", "signature"),
    }
    for case, (sha, reason, detail) in cases.items():
        code, out, err = cli(capsys, "deploy", sha, "--env", "prod")
        assert code == 1 and out == "", case
        assert err.startswith(f"tagrelay: deploy of {sha[:7]} to mosaic-life/prod refused ({reason}): "), (case, err)
        assert detail in err and "what to do: " in err, (case, err)
    assert subjects(world) == seeded
    [found] = [r for r in records(world, "prod") if r.trigger == "external"]
    assert (found.reason, found.tag) == ("external_change", "prod-cf3124b")
    refused = [r for r in records(world, "prod") if r.trigger != "external"]
    assert sorted(r.reason for r in refused) == sorted(reason for _, reason, _ in cases.values())
    assert {(r.trigger, r.actor, r.outcome) for r in refused} == {("manual", OPERATOR_ARN, "refused")}


def test_deploy_never_goes_back_and_points_to_rollback(
    world: FakeWorld, installed: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    older, newer = pushed(world, "prod"), pushed(world, "prod")
    assert cli(capsys, "deploy", newer.sha, "--env", "prod")[0] == 0
    code, answer, err = cli_json(capsys, "deploy", older.sha, "--env", "prod")
    assert code == 1 and (answer["outcome"], answer["reason"]) == ("refused", "newer_commit_deployed")
    assert "refused (newer_commit_deployed)" in err
    assert answer["hint"] == f"to go back on purpose, run: tagrelay rollback --env prod --to {older.sha}"
    assert gitops_tag(world, "prod") == newer.tag
    [superseded] = [r for r in records(world, "prod") if r.outcome == "superseded"]
    assert (superseded.trigger, superseded.deployed_sha) == ("manual", newer.sha[:7])


def test_deploy_to_a_pinned_environment_is_refused_until_unpinned(
    world: FakeWorld, installed: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    release = pushed(world, "prod")
    assert cli(capsys, "pin", "--env", "prod", "--reason", "incident 4711")[0] == 0
    code, _, err = cli(capsys, "deploy", release.sha, "--env", "prod")
    assert code == 1 and "refused (environment_pinned): prod is pinned (incident 4711)" in err
    assert "tagrelay unpin --env prod" in err
    assert cli(capsys, "unpin", "--env", "prod")[0] == 0
    assert cli(capsys, "deploy", release.sha, "--env", "prod")[0] == 0
    assert gitops_tag(world, "prod") == release.tag


def test_deploy_with_an_env_prefixed_grammar_derives_the_prefixed_tag(
    world: FakeWorld, install: Install, capsys: pytest.CaptureFixture[str]
) -> None:
    install(tag_pattern="^(?P<env>prod|staging)-(?P<sha>[0-9a-f]{7})$")
    sha = world.commit("main")
    release = world.release(sha, branch=None, tag=f"prod-{sha[:7]}")
    code, _, err = cli(capsys, "deploy", sha, "--env", "prod")
    assert code == 0, err
    assert subjects(world)[0] == f"deploy(prod): manual update to image tag {release.tag}"


def test_a_refusal_names_each_digest_once_and_says_it_once(
    world: FakeWorld, installed: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    forged = pushed(world, "prod", signer=CosignKeySigner.generate())
    code, out, err = cli(capsys, "deploy", forged.sha, "--env", "prod")
    assert code == 1 and out == ""
    digests = re.findall(r"[0-9a-f]{64}", err)
    assert len(digests) == len(set(digests)) == len(world.images) + 1  # each image, and the key, once
    assert all(f"{image}@{digest}" in err for image, digest in forged.digests.items())
    assert err.count("none of the 1 signature(s)") == len(world.images)
    assert len(err) < 1500
    code, answer, _ = cli_json(capsys, "deploy", forged.sha, "--env", "prod")
    assert code == 1 and all(d.removeprefix("sha256:") in answer["message"] for d in forged.digests.values())


# --- the commit first (issue #14), keyless as the seed signs ---


@pytest.fixture(scope="module")
def private_sigstore(tmp_path_factory: pytest.TempPathFactory) -> tuple[TestSigstore, Path]:
    return demo_sigstore(tmp_path_factory.mktemp("sigstore"))


def signed_keyless(world: FakeWorld, sigstore: TestSigstore, branch: str) -> str:
    """A commit of ``branch`` released and signed keyless by the seed's workflow running on ``branch``."""
    sha = world.commit(branch)
    release = world.release(sha, branch=branch, sign=False)
    signer = KeylessSigner(sigstore, GitHubIdentity().for_commit(sha, branch=branch))
    for image, digest in release.digests.items():
        sign_image_keyless(world.registry, image, digest, signer)
    return sha


def test_a_develop_commit_for_prod_is_not_on_the_branch_not_a_bad_signature_and_is_recorded_as_refused(
    world: FakeWorld, install: Install, private_sigstore: tuple[TestSigstore, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    sigstore, trusted_root = private_sigstore
    install(signature=keyless_signature_config(trusted_root))
    develop_sha = signed_keyless(world, sigstore, "develop")
    code, out, err = cli(capsys, "deploy", develop_sha, "--env", "prod")
    assert code == 1 and out == ""
    assert "refused (commit_not_on_branch)" in err and "is not on branch main" in err
    assert "signature" not in err and "investigate" not in err and "merge it first" in err
    code, _, err = cli(capsys, "deploy", "0badc0de", "--env", "prod")
    assert code == 1 and "refused (commit_not_found)" in err and "check the SHA" in err
    assert "release_incomplete" not in err
    mine = [r for r in records(world, "prod") if r.trigger == "manual"]
    assert sorted((r.outcome, r.reason) for r in mine) == [
        ("refused", "commit_not_found"),
        ("refused", "commit_not_on_branch"),
    ]
    assert not [r for r in records(world, "prod") if r.outcome == "rejected"]
    code, out, _ = cli(capsys, "history", "--env", "prod")
    rows = [line.split() for line in out.splitlines()[1:] if " manual " in line]
    assert code == 0 and len(rows) == 2 and all(row[5] == "refused" for row in rows), out
    assert cli(capsys, "deploy", develop_sha, "--env", "staging")[0] == 0  # its signatures were never the problem


def test_checking_the_commit_first_still_binds_the_signatures_to_it(
    world: FakeWorld, install: Install, private_sigstore: tuple[TestSigstore, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """The commit is resolved before the signatures are read; their commit must still be that one. A
    signature for another commit that shares the short SHA passes the tag's prefix check, not this."""
    sigstore, trusted_root = private_sigstore
    install(signature=keyless_signature_config(trusted_root))
    sha = world.commit("main")
    impostor = sha[:7] + ("0" if sha[7] != "0" else "1") + sha[8:]
    release = world.release(sha, branch="main", sign=False)
    signer = KeylessSigner(sigstore, GitHubIdentity().for_commit(impostor, branch="main"))
    for image, digest in release.digests.items():
        sign_image_keyless(world.registry, image, digest, signer)
    code, _, err = cli(capsys, "deploy", sha, "--env", "prod")
    assert code == 1
    assert "refused (signature_invalid)" in err and f"signed for commit {impostor}" in err
    assert gitops_tag(world, "prod") == "prod-cf3124b"


# --- the documented check order (docs/promotion.md) ---


def test_a_push_and_an_operator_request_are_evaluated_in_their_documented_orders(
    world: FakeWorld, installed: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tagrelay import runtime
    from tagrelay.services.report import report

    release = world.release(world.commit("main"), branch="main")
    results = [report(runtime.promoter().process({**e, "time": world.event_time()})) for e in release.events]
    assert "promote" in [r["decision"] for r in results]
    for result in results:
        names = [generic(c["name"]) for c in result["checks"] if c["name"] != "event digest"]
        assert follows(names, PUSH_CHECK_ORDER), names
    staged = pushed(world, "staging")
    code, answer, _ = cli_json(capsys, "deploy", staged.sha[:7], "--env", "staging")
    names = [generic(c["name"]) for c in answer["checks"]]
    assert code == 0 and names[:2] == ["commit", "{env}: branch"]
    assert follows(names, OPERATOR_CHECK_ORDER) and not follows(names, PUSH_CHECK_ORDER), names
    develop_only = pushed(world, "staging")
    code, answer, _ = cli_json(capsys, "deploy", develop_only.sha, "--env", "prod")
    assert code == 1 and answer["reason"] == "commit_not_on_branch"
    assert [generic(c["name"]) for c in answer["checks"]] == ["commit", "{env}: branch"]


# --- rollback and pins ---


def test_rollback_skips_the_release_running_now_and_any_release_already_rolled_back(
    world: FakeWorld, installed: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first, second, third = three_releases(world)
    assert cli(capsys, "rollback", "--env", "prod")[0] == 0
    assert gitops_tag(world, "prod") == second.tag
    # The rollback itself reaches SUCCEEDED.
    rollback = next(r for r in records(world, "prod") if r.trigger == "rollback" and r.outcome == "committed")
    assert world.ledger.record_tracking(rollback, "SUCCEEDED", {"healthy_at": rollback.created_at}, final=True)
    code, answer, _ = cli_json(capsys, "rollback", "--env", "prod")
    assert code == 0 and answer["tag"] == first.tag, answer
    assert subjects(world)[:2] == [f"rollback(prod): revert to {first.tag}", f"rollback(prod): revert to {second.tag}"]
    assert third.tag not in {r.tag for r in records(world, "prod") if r.trigger == "rollback"}


def test_rollback_to_a_named_sha_bypasses_the_downgrade_guard_explicitly_and_no_pin_leaves_it_unpinned(
    world: FakeWorld, installed: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    old = deployed(world)
    deployed(world)
    code, answer, _ = cli_json(capsys, "rollback", "--env", "prod", "--to", old.sha[:10], "--no-pin")
    assert code == 0 and answer["outcome"] == "committed" and answer["tag"] == old.tag
    checks = {c["name"]: (c["status"], c["detail"]) for c in answer["checks"]}
    assert checks["prod: order"] == ("skip", "a rollback: the no-downgrade guard does not apply")
    assert "pin" not in answer
    current = state(world, "prod")
    assert current is not None and not current.pinned
    assert not [r for r in records(world, "prod") if r.outcome == "pinned"]


def test_a_refused_rollback_puts_the_pin_back_as_it_was(
    world: FakeWorld, installed: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    deployed(world)
    gone = pushed(world, "prod", images=world.images[:1])
    assert cli(capsys, "pin", "--env", "prod", "--reason", "release freeze")[0] == 0
    code, out, err = cli(capsys, "rollback", "--env", "prod", "--to", gone.sha)
    assert code == 1 and out == "" and "refused (release_incomplete)" in err and f"has no tag {gone.tag}" in err
    pin = state(world, "prod")
    assert pin is not None and (pin.pinned, pin.pin_reason) == (True, "release freeze")
    cli(capsys, "unpin", "--env", "prod")
    assert cli(capsys, "rollback", "--env", "prod", "--to", gone.sha)[0] == 1
    pin = state(world, "prod")
    assert pin is not None and not pin.pinned


def test_rollback_without_an_earlier_succeeded_deployment_is_refused_and_names_the_alternative(
    world: FakeWorld, installed: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, answer, err = cli_json(capsys, "rollback", "--env", "staging")
    assert code == 1 and answer["reason"] == "no_earlier_success"
    assert "tagrelay rollback --env staging --to SHA" in err
    assert [(r.reason, r.tag) for r in records(world, "staging")] == [("external_change", "staging-545ef16")]
    only = deployed(world, "staging")
    code, answer, _ = cli_json(capsys, "rollback", "--env", "staging")
    assert code == 1 and answer["reason"] == "no_earlier_success"
    assert answer["message"] == f"no deployment of staging reached SUCCEEDED before the current one ({only.tag})"
    pin = state(world, "staging")
    assert pin is not None and not pin.pinned


def test_a_rollback_that_fails_on_the_way_leaves_the_pin_as_it_was_and_can_be_run_again(
    world: FakeWorld, installed: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    old = deployed(world)
    deployed(world)
    world.github.faults.fail("resolve_commit", times=5)
    code, out, err = cli(capsys, "rollback", "--env", "prod", "--to", old.sha)
    assert code == 1 and out == ""
    assert err.startswith("tagrelay: the promoter failed (TransientError: github: ")
    assert "run the command again" in err
    pin = state(world, "prod")
    assert pin is not None and not pin.pinned
    world.github.faults.clear()
    assert cli(capsys, "rollback", "--env", "prod", "--to", old.sha)[0] == 0
    assert gitops_tag(world, "prod") == old.tag


# --- exactly once under faults ---


def test_running_a_rollback_again_after_its_last_ledger_write_failed_does_not_go_back_further(
    world: FakeWorld, installed: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, b, c = three_releases(world)
    world.ledger.faults.fail("record_decision", TransientError("dynamodb", "PutItem failed (ThrottlingException)"))
    pinned_record = world.ledger.faults  # the pin's audit record is the rollback's last write
    code, _, err = cli(capsys, "rollback", "--env", "prod", "--reason", "checkout errors")
    assert code == 1 and "run the same command again" in err, err
    assert pinned_record.met.get("record_decision") == 1
    assert gitops_tag(world, "prod") == b.tag  # the commit happened; a record did not
    code, answer, err = cli_json(capsys, "rollback", "--env", "prod", "--reason", "checkout errors")
    assert code == 0, err
    assert (answer["outcome"], answer["tag"], answer["previous_tag"]) == ("committed", b.tag, c.tag), answer
    assert [s for s in subjects(world, 50) if s.startswith("rollback(prod)")] == [f"rollback(prod): revert to {b.tag}"]
    pinned = state(world, "prod")
    assert pinned is not None and pinned.pinned and pinned.current_tag == b.tag


def test_a_push_that_passed_the_pin_check_just_before_a_rollback_does_not_undo_it(
    world: FakeWorld, installed: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, b, _ = three_releases(world)
    newer = pushed(world, "prod")
    rollbacks: list[int] = []
    # The push has read the values file and passed the pin check; the rollback pins and commits now.
    world.github.before_write.append(lambda: rollbacks.append(cli(capsys, "rollback", "--env", "prod")[0]))
    decisions = deliver_installed(world, newer.events)
    assert rollbacks == [0]
    assert "promote" not in decisions, decisions
    assert gitops_tag(world, "prod") == b.tag
    pinned = state(world, "prod")
    assert pinned is not None and pinned.pinned and pinned.current_tag == b.tag
    skipped = [r for r in records(world, "prod") if r.tag == newer.tag and r.outcome == "skipped"]
    assert skipped and {r.reason for r in skipped} == {"environment_pinned"}


def test_a_failed_environment_state_update_heals_on_the_retry_and_a_rollback_then_goes_one_step_back(
    world: FakeWorld, installed: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tagrelay import runtime

    deployed(world)
    b = deployed(world)
    c = pushed(world, "prod")
    world.ledger.faults.fail("advance_state")
    failed = None
    for event in c.events:  # until the event that completes the release fails after committing
        try:
            runtime.promoter().process({**event, "time": world.event_time()})
        except TransientError:
            failed = event
            break
    assert failed is not None and gitops_tag(world, "prod") == c.tag
    stale = state(world, "prod")
    assert stale is not None and stale.current_tag == b.tag
    runtime.promoter().process({**failed, "time": world.event_time()})  # Lambda retries the invocation
    current = state(world, "prod")
    assert current is not None and current.current_tag == c.tag
    assert current.current_decision_id == deployment(world, "prod", c.tag).decision_id
    code, answer, err = cli_json(capsys, "rollback", "--env", "prod")
    assert code == 0, err
    assert (answer["tag"], answer["previous_tag"]) == (b.tag, c.tag)


def test_an_operator_change_computed_against_a_tag_that_no_longer_holds_is_refused_as_a_conflict(
    world: FakeWorld, installed: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from tagrelay import runtime
    from tagrelay.ports import PromoterFunction

    _, b, c = three_releases(world)
    newer = pushed(world, "prod")
    pushes: list[list[str]] = []
    planned = runtime.promoter_function

    class PushAfterPlanning:
        def __init__(self, function: PromoterFunction) -> None:
            self.function = function

        def call(self, operation: str, fields: Mapping[str, Any]) -> dict[str, Any]:
            if operation != "plan" and not pushes:
                pushes.append(deliver_installed(world, newer.events))  # lands between plan and change
            return self.function.call(operation, fields)

    monkeypatch.setattr(runtime, "promoter_function", lambda *a, **k: PushAfterPlanning(planned(*a, **k)))
    code, answer, err = cli_json(capsys, "rollback", "--env", "prod")
    assert "promote" in pushes[0]
    assert code == 1 and answer["reason"] == "precondition_failed", answer
    assert f"prod now runs {newer.tag}" in answer["message"] and c.tag in answer["message"]
    assert "run the command again" in err
    assert gitops_tag(world, "prod") == newer.tag
    unpinned = state(world, "prod")
    assert unpinned is not None and not unpinned.pinned and unpinned.current_tag == newer.tag
    assert b.tag != newer.tag
