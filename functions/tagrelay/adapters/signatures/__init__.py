"""cosign signature verification: is an image digest signed by the configured identity?

``verifier_for(app).verify(registry, repository, digest)`` returns a ``SignatureVerdict``. How it is
built: a ``SignatureSource`` finds candidate signatures (sources.py), a ``SignerPolicy`` accepts or
rejects each one (policies.py), and pure checks (checks.py) hold the rules. See docs/signatures.md.
"""

from __future__ import annotations

from tagrelay.adapters.signatures.model import (
    Candidate,
    PolicyResult,
    SignatureSource,
    SignatureVerdict,
    SignatureVerifier,
    SignerPolicy,
    Unusable,
)
from tagrelay.adapters.signatures.verifier import (
    NOT_REQUIRED_SIGNER,
    CosignVerifier,
    NotRequiredVerifier,
    verifier_for,
)

__all__ = [
    "NOT_REQUIRED_SIGNER",
    "Candidate",
    "CosignVerifier",
    "NotRequiredVerifier",
    "PolicyResult",
    "SignatureSource",
    "SignatureVerdict",
    "SignatureVerifier",
    "SignerPolicy",
    "Unusable",
    "verifier_for",
]
