"""Signer policies: who may have signed a candidate signature.

Here: one cosign key pair (ECDSA P-256), from configuration or AWS KMS. The keyless policy (Fulcio
certificate, Rekor, identity and commit binding) is ``keyless.KeylessPolicy``, with the same methods.

A key binds a digest, not a commit: an old signed digest pushed under a newer commit's tag would
verify. So a key signature must also carry the release commit in a signed annotation of the
simple-signing payload's ``optional`` map, as ``cosign sign --key ... -a git-sha=<full SHA>`` writes
it (the annotation name is ``signature.key.commit_annotation``). Its value is the full SHA, or a prefix
of it at least as long as the tag's SHA; the promoter checks it against the resolved commit.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable

from tagrelay.adapters.signatures.checks import check_ecdsa_p256_signature
from tagrelay.adapters.signatures.keys import VerificationKey
from tagrelay.adapters.signatures.model import Candidate, PolicyResult, ReleaseContext, SignatureCheck
from tagrelay.domain.decision import Reason


class PublicKeyPolicy:
    """Accepts a signature that verifies with one public key (what ``cosign verify --key`` does).

    ``key`` is called on the first check, so that a KMS key is only fetched when a signature exists.
    Certificates and Rekor bundles in the annotations are ignored, as ``cosign verify --key`` ignores them.
    """

    def __init__(self, key: Callable[[], VerificationKey], *, label: str, commit_annotation: str = "git-sha") -> None:
        self._key = key
        self._label = label
        self.commit_annotation = commit_annotation

    @classmethod
    def of(cls, key: VerificationKey, *, commit_annotation: str = "git-sha") -> PublicKeyPolicy:
        return cls(lambda: key, label=key.label, commit_annotation=commit_annotation)

    def describe(self) -> str:
        return self._label

    def check(self, candidate: Candidate, release: ReleaseContext | None = None) -> PolicyResult:
        key = self._key()
        problem = check_ecdsa_p256_signature(key.public_key, candidate.signature, candidate.payload)
        if problem is not None:
            why = f"{problem} (checked with {key.label})"
            return PolicyResult(
                accepted=False, signer=None, reason=why, checks=(SignatureCheck("signature", "fail", why),)
            )
        checks = (SignatureCheck("signature", "pass", f"verifies with {key.label}"),)
        return PolicyResult(accepted=True, signer=key.label, reason="", checks=checks)

    def check_binding(self, payload_type: str, payload: bytes, release: ReleaseContext | None) -> PolicyResult:
        name = self.commit_annotation
        how = f"sign with `cosign sign --key <key> -a {name}=<full commit SHA> <image>@<digest>`"
        problem = commit_annotation_problem(payload, name, release.sha if release else None)
        if problem is None:
            commit = _annotation(payload, name)
            check = SignatureCheck("commit", "pass", f"signed annotation {name}={commit} starts with the tag's SHA")
            return PolicyResult(accepted=True, signer=None, reason="", checks=(check,), commit=commit)
        unbound = problem.startswith("the signature names no commit")
        why = f"{problem}; {how}" if unbound else problem
        return PolicyResult(
            accepted=False,
            signer=None,
            reason=why,
            checks=(SignatureCheck("commit", "fail", why),),
            code=Reason.SIGNATURE_COMMIT_UNBOUND if unbound else None,
        )


_SHA = re.compile(r"^[0-9a-f]{7,40}$")


def commit_annotation_problem(payload: bytes, name: str, tag_sha: str | None) -> str | None:
    """None when the signed payload's ``optional[name]`` is a commit SHA starting with the tag's SHA."""
    if not tag_sha:
        return "no release SHA to bind the signature's commit to: verify the image by its release tag"
    value = _annotation(payload, name)
    if value is None:
        return f"the signature names no commit (no signed annotation {name!r})"
    if not _SHA.match(value) or len(value) < len(tag_sha):
        return f"the signed annotation {name}={value!r} is not a commit SHA at least as long as the tag's {tag_sha}"
    if not value.startswith(tag_sha.lower()):
        return f"the signature was made for commit {value}, but the tag names {tag_sha}"
    return None


def _annotation(payload: bytes, name: str) -> str | None:
    try:
        document = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    optional = document.get("optional") if isinstance(document, dict) else None
    value = optional.get(name) if isinstance(optional, dict) else None
    return value if isinstance(value, str) else None
