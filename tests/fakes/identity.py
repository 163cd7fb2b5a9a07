"""FakeIdentity: the IdentityVerifier port without STS.

A proof is ``FakeIdentity.proof(arn, binding)``: who signs, for which request, with a fresh nonce. The
checks are the adapter's in the same order: a proof must be there (identity_missing), be made for
this request (identity_invalid), name a caller STS knows (identity_refused), and be used once
(identity_replayed, through the ledger's nonce record as in runtime.build_operator).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

from tagrelay.domain.facts import VerifiedCaller
from tagrelay.errors import IdentityError


class FakeIdentity:
    def __init__(
        self,
        callers: Mapping[str, VerifiedCaller] | None = None,
        *,
        use_nonce: Callable[[str, datetime], bool] | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.callers = dict(callers or {})
        self.use_nonce = use_nonce
        self.clock = clock
        self.request_count = 0

    def known(self, arn: str) -> VerifiedCaller:
        """Make ``arn`` a caller STS would answer for."""
        caller = VerifiedCaller(arn=arn, account=arn.split(":")[4], user_id=f"AIDA{abs(hash(arn)) % 10**12:012d}")
        self.callers[arn] = caller
        return caller

    @staticmethod
    def proof(arn: str, binding: str) -> dict[str, Any]:
        return {"arn": arn, "binding": binding, "nonce": secrets.token_hex(16)}

    def verify(self, proof: Mapping[str, Any] | None, *, binding: str) -> VerifiedCaller:
        if proof is None:
            raise IdentityError("identity_missing", "the request carries no identity proof")
        if set(proof) != {"arn", "binding", "nonce"}:
            raise IdentityError("identity_invalid", "the identity proof must have exactly 'arn', 'binding' and 'nonce'")
        if proof["binding"] != binding:
            raise IdentityError("identity_invalid", "the identity proof was made for another request")
        self.request_count += 1  # the replay to STS
        caller = self.callers.get(str(proof["arn"]))
        if caller is None:
            raise IdentityError("identity_refused", "STS refused the identity proof (InvalidClientTokenId)")
        used_before = (
            self.use_nonce is not None
            and self.clock is not None
            and not self.use_nonce(str(proof["nonce"]), self.clock() + timedelta(minutes=20))
        )
        if used_before:
            raise IdentityError("identity_replayed", "this identity proof was used before")
        return caller
