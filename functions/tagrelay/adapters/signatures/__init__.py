"""cosign signature verification: is an image digest signed by the configured identity?

``verifier_for(app).verify(registry, repository, digest, release=...)`` returns a ``SignatureVerdict``.
How it is built: a ``SignatureSource`` finds candidate signatures (sources.py: the legacy ``.sig`` tag,
OCI 1.1 referrers), a ``SignerPolicy`` accepts or rejects each one (policies.py for keys, keyless.py
for Fulcio identities, bundles.py for cosign v3 bundles), and pure checks (checks.py, identity.py,
rekor.py, certificates.py) hold the rules. See docs/signatures.md.
"""

from __future__ import annotations

from tagrelay.adapters.signatures.model import (
    Candidate,
    EnvironmentContext,
    Examined,
    PolicyResult,
    ReleaseContext,
    SignatureCheck,
    SignatureSource,
    SignatureVerdict,
    SignatureVerifier,
    SignerIdentity,
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
    "EnvironmentContext",
    "Examined",
    "NotRequiredVerifier",
    "PolicyResult",
    "ReleaseContext",
    "SignatureCheck",
    "SignatureSource",
    "SignatureVerdict",
    "SignatureVerifier",
    "SignerIdentity",
    "SignerPolicy",
    "Unusable",
    "verifier_for",
]
