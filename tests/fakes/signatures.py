"""FakeSignatures: the SignatureVerifier port from a table of what is signed, for tests whose subject
is not the cryptography.

``sign(repository, digest, commit)`` makes a digest signed for a commit by ``signer``;
``forge(repository, digest, reason)`` makes its signatures invalid. Anything else is missing, as an
image cosign has not signed yet. (The real verifier, adapters/signatures, also runs on FakeRegistry:
tests that care about layouts and keys use it with devstack.images' signatures.)
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tagrelay.domain.decision import Reason
from tagrelay.domain.facts import ReleaseContext, SignatureVerdict
from tagrelay.ports import ImageRegistry


@dataclass
class FakeSignatures:
    signer: str = "key fake-cosign-key"
    verdicts: dict[tuple[str, str], SignatureVerdict] = field(default_factory=dict)
    calls: list[tuple[str, str]] = field(default_factory=list)

    def sign(self, repository: str, digest: str, commit: str) -> None:
        self.verdicts[(repository, digest)] = SignatureVerdict("verified", self.signer, None, commit=commit)

    def forge(
        self,
        repository: str,
        digest: str,
        reason: str = "no signature verifies with the key",
        code: Reason | None = None,
    ) -> None:
        self.verdicts[(repository, digest)] = SignatureVerdict("invalid", None, reason, code=code)

    def verify(
        self, registry: ImageRegistry, repository: str, digest: str, *, release: ReleaseContext | None = None
    ) -> SignatureVerdict:
        self.calls.append((repository, digest))
        verdict = self.verdicts.get((repository, digest))
        if verdict is None:
            return SignatureVerdict("missing", None, f"no signature for {repository}@{digest} yet")
        sha = release.sha if release is not None else None
        if verdict.status == "verified" and sha and verdict.commit and not verdict.commit.startswith(sha):
            return SignatureVerdict("invalid", None, f"signed for commit {verdict.commit}, not {sha}")
        return verdict
