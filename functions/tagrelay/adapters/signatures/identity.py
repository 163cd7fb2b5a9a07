"""The keyless identity policy: does a certificate's identity match what an app's configuration asks?

Pure rules over ``CertificateClaims``. The OIDC issuer is compared exactly; the SAN exactly or with a
regular expression that must match all of it; the optional GitHub claims (repository, ref, trigger,
workflow) exactly. ``{branch}`` and ``{env}`` in any of them are filled in per target environment, so
one policy says "built by our workflow on the branch this environment deploys from".

Independent of the configuration, the commit binding: the certificate's source-repository digest must
start with the release tag's short SHA, so that a tag can only promote the commit it names.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from tagrelay.adapters.signatures.fulcio import CertificateClaims
from tagrelay.adapters.signatures.model import EnvironmentContext, ReleaseContext, SignatureCheck, SignerIdentity

_PLACEHOLDER = re.compile(r"\{(branch|env)\}")


@dataclass(frozen=True)
class IdentityRule:
    """An app's ``signature.keyless`` identity fields, before placeholders are filled in."""

    issuer: str
    identity: str | None = None
    identity_regexp: str | None = None
    repository: str | None = None
    ref: str | None = None
    trigger: str | None = None
    workflow: str | None = None

    @property
    def uses_placeholders(self) -> bool:
        fields = (self.issuer, self.identity, self.identity_regexp, self.repository, self.ref, self.trigger)
        return any(value is not None and _PLACEHOLDER.search(value) for value in (*fields, self.workflow))

    def describe(self) -> str:
        """The expected signer, for messages: ``keyless <SAN> from <issuer>``."""
        subject = self.identity if self.identity is not None else f"SAN matching /{self.identity_regexp}/"
        return f"keyless {subject} (issuer {self.issuer})"


def check_identity(
    claims: CertificateClaims, rule: IdentityRule, environments: Sequence[EnvironmentContext]
) -> list[SignatureCheck]:
    """The identity checks, for every target environment; they stop at the first that fails.

    With no environment (a digest checked outside a promotion), a policy that uses placeholders cannot
    be evaluated and fails; one without placeholders is checked once.
    """
    if not environments:
        if rule.uses_placeholders:
            return [
                SignatureCheck(
                    "identity",
                    "fail",
                    "the policy uses {branch}/{env}, but no environment was given to fill them in",
                )
            ]
        return _check_one(claims, rule, None, label="")
    checks: list[SignatureCheck] = []
    for environment in environments:
        label = f" [{environment.name}]" if len(environments) > 1 else ""
        checks.extend(_check_one(claims, rule, environment, label=label))
        if checks and checks[-1].status == "fail":
            break
    return checks


def check_commit(claims: CertificateClaims, release: ReleaseContext | None) -> SignatureCheck:
    """The certificate's commit (Fulcio .13, or .3 in older certificates) must start with the tag's SHA."""
    sha = release.sha if release is not None else None
    if not sha:
        return SignatureCheck(
            "commit",
            "fail",
            "no release SHA to bind the certificate's commit to: verify the image by its release tag",
        )
    if claims.commit is None:
        return SignatureCheck(
            "commit", "fail", "the certificate names no commit (no source repository digest extension)"
        )
    if not re.fullmatch(r"[0-9a-f]{40}", claims.commit):
        return SignatureCheck("commit", "fail", f"the certificate's commit {claims.commit!r} is not a 40-hex SHA")
    if not claims.commit.startswith(sha.lower()):
        return SignatureCheck(
            "commit", "fail", f"the certificate was issued for commit {claims.commit}, but the tag names {sha}"
        )
    return SignatureCheck("commit", "pass", f"{claims.commit} starts with the tag's {sha}")


def signer_identity(claims: CertificateClaims) -> SignerIdentity:
    return SignerIdentity(
        subject=claims.sans[0] if claims.sans else "(no SAN)",
        issuer=claims.issuer or "(no issuer)",
        repository=claims.repository,
        ref=claims.ref,
        commit=claims.commit,
        trigger=claims.trigger,
        workflow=claims.workflow,
    )


def _check_one(
    claims: CertificateClaims, rule: IdentityRule, environment: EnvironmentContext | None, *, label: str
) -> list[SignatureCheck]:
    checks: list[SignatureCheck] = []

    def exact(name: str, expected: str | None, actual: str | None) -> bool:
        if expected is None:
            return True
        wanted = _fill(expected, environment)
        if actual != wanted:
            shown = repr(actual) if actual is not None else "nothing"
            checks.append(
                SignatureCheck(f"{name}{label}", "fail", f"the certificate's {name} is {shown}, not {wanted!r}")
            )
            return False
        checks.append(SignatureCheck(f"{name}{label}", "pass", wanted))
        return True

    if not exact("issuer", rule.issuer, claims.issuer):
        return checks
    if not _check_san(claims, rule, environment, label, checks):
        return checks
    for name, expected, actual in (
        ("repository", rule.repository, claims.repository),
        ("ref", rule.ref, claims.ref),
        ("trigger", rule.trigger, claims.trigger),
        ("workflow", rule.workflow, claims.workflow),
    ):
        if not exact(name, expected, actual):
            break
    return checks


def _check_san(
    claims: CertificateClaims,
    rule: IdentityRule,
    environment: EnvironmentContext | None,
    label: str,
    checks: list[SignatureCheck],
) -> bool:
    name = f"identity{label}"
    sans = ", ".join(claims.sans) or "no SAN"
    if rule.identity is not None:
        wanted = _fill(rule.identity, environment)
        if wanted in claims.sans:
            checks.append(SignatureCheck(name, "pass", wanted))
            return True
        checks.append(SignatureCheck(name, "fail", f"the certificate's SAN is {sans}, not {wanted}"))
        return False
    pattern = _fill(rule.identity_regexp or "", environment, escape=True)
    matching = next((san for san in claims.sans if re.fullmatch(pattern, san)), None)
    if matching is not None:
        checks.append(SignatureCheck(name, "pass", f"{matching} matches /{pattern}/"))
        return True
    checks.append(SignatureCheck(name, "fail", f"the certificate's SAN {sans} does not match /{pattern}/ as a whole"))
    return False


def _fill(template: str, environment: EnvironmentContext | None, *, escape: bool = False) -> str:
    if environment is None:
        return template
    values = {"branch": environment.branch, "env": environment.name}
    return _PLACEHOLDER.sub(lambda m: re.escape(values[m[1]]) if escape else values[m[1]], template)
