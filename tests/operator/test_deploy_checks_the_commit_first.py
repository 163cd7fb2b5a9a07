"""`tagrelay deploy` judges the commit the operator named before the images: a typo is
`commit_not_found` and a develop commit for prod is `commit_not_on_branch`, not a missing release or a
security rejection of its signatures; and the ledger records the operator's request as refused, not as
a release rejected.

Keyless, as the seed signs: a develop commit's images are signed by the workflow at refs/heads/develop,
which prod's identity policy refuses; before, that was the refusal the operator saw.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from devstack.scenario import SeedScenario
from devstack.sigstore_testing import (
    GitHubIdentity,
    KeylessSigner,
    TestSigstore,
    demo_sigstore,
    keyless_signature_config,
    sign_image_keyless,
)
from tests.operator.support import Configure, gitops_tag, records, run

pytestmark = pytest.mark.stack


@pytest.fixture(scope="module")
def private_sigstore(tmp_path_factory: pytest.TempPathFactory) -> tuple[TestSigstore, Path]:
    return demo_sigstore(tmp_path_factory.mktemp("sigstore"))


def signed_keyless(scenario: SeedScenario, sigstore: TestSigstore, branch: str) -> str:
    """A commit of ``branch``, its images pushed with the SHA and branch tags and signed keyless by the
    seed's workflow running on ``branch``, as CI does."""
    sha = scenario.commit(branch)
    release = scenario.release(sha, branch=branch, sign=False)
    signer = KeylessSigner(sigstore, GitHubIdentity().for_commit(sha, branch=branch))
    for image, digest in release.digests.items():
        sign_image_keyless(scenario.stack.registry.url, image, digest, signer)
    return sha


def test_a_develop_commit_for_prod_is_not_on_the_branch_not_a_bad_signature(
    scenario: SeedScenario,
    operator_env: Configure,
    private_sigstore: tuple[TestSigstore, Path],
    capsys: pytest.CaptureFixture[str],
) -> None:
    sigstore, trusted_root = private_sigstore
    operator_env(signature=keyless_signature_config(trusted_root))
    develop_sha = signed_keyless(scenario, sigstore, "develop")

    code, out, err = run(capsys, "deploy", develop_sha, "--env", "prod")

    assert code == 1 and out == ""
    assert "refused (commit_not_on_branch)" in err and "is not on branch main" in err
    assert "signature" not in err and "investigate" not in err  # no false security alarm
    assert "merge it first" in err
    assert gitops_tag(scenario, "prod") == "prod-cf3124b"
    # The same commit deploys to staging, whose branch it is on: its signatures were never the problem.
    assert run(capsys, "deploy", develop_sha, "--env", "staging")[0] == 0


def test_a_mistyped_sha_is_not_a_commit_not_an_incomplete_release(
    scenario: SeedScenario,
    operator_env: Configure,
    private_sigstore: tuple[TestSigstore, Path],
    capsys: pytest.CaptureFixture[str],
) -> None:
    _, trusted_root = private_sigstore
    operator_env(signature=keyless_signature_config(trusted_root))
    typo = "0badc0de"

    code, _, err = run(capsys, "deploy", typo, "--env", "prod")

    assert code == 1
    assert "refused (commit_not_found)" in err and "check the SHA" in err
    assert "release_incomplete" not in err


def test_history_shows_an_operators_refused_request_as_refused(
    scenario: SeedScenario,
    operator_env: Configure,
    private_sigstore: tuple[TestSigstore, Path],
    capsys: pytest.CaptureFixture[str],
) -> None:
    sigstore, trusted_root = private_sigstore
    operator_env(signature=keyless_signature_config(trusted_root))
    develop_sha = signed_keyless(scenario, sigstore, "develop")
    run(capsys, "deploy", develop_sha, "--env", "prod")
    run(capsys, "deploy", "0badc0de", "--env", "prod")

    mine = [r for r in records("prod") if r.trigger == "manual"]
    assert sorted((r.outcome, r.reason) for r in mine) == [
        ("refused", "commit_not_found"),
        ("refused", "commit_not_on_branch"),
    ]
    assert not [r for r in records("prod") if r.outcome == "rejected"]  # no release was rejected

    code, out, _ = run(capsys, "history", "--env", "prod")
    assert code == 0
    rows = [line.split() for line in out.splitlines()[1:] if " manual " in line]
    assert len(rows) == 2 and all(row[5] == "refused" for row in rows), out


def test_checking_the_commit_first_still_binds_the_signatures_to_it(
    scenario: SeedScenario,
    operator_env: Configure,
    private_sigstore: tuple[TestSigstore, Path],
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The commit is resolved before the signatures are read; their commit must still be that one. A
    signature for another commit that shares the short SHA passes the tag's prefix check, not this."""
    sigstore, trusted_root = private_sigstore
    operator_env(signature=keyless_signature_config(trusted_root))
    sha = scenario.commit("main")
    impostor = sha[:7] + ("0" if sha[7] != "0" else "1") + sha[8:]
    release = scenario.release(sha, branch="main", sign=False)
    signer = KeylessSigner(sigstore, GitHubIdentity().for_commit(impostor, branch="main"))
    for image, digest in release.digests.items():
        sign_image_keyless(scenario.stack.registry.url, image, digest, signer)

    code, _, err = run(capsys, "deploy", sha, "--env", "prod")

    assert code == 1
    assert "refused (signature_invalid)" in err and f"signed for commit {impostor}" in err
    assert gitops_tag(scenario, "prod") == "prod-cf3124b"
