"""Tag grammar: which registry tags name a release, a branch, or a cosign signature."""

from __future__ import annotations

import re
from dataclasses import dataclass

# OCI distribution-spec tag grammar: what any registry accepts as a tag.
_OCI_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$")
# cosign legacy layout: the signature of digest sha256:<hex> lives under tag sha256-<hex>.sig. A registry
# without the OCI 1.1 referrers API keeps cosign v3's bundle referrers in an index tagged sha256-<hex>.
_COSIGN_SIGNATURE_TAG = re.compile(r"^sha256-(?P<hex>[0-9a-f]{64})(?:\.sig)?$")
# Artifact types of cosign v3 signature referrers (Sigstore bundles), as ECR reports them in events.
SIGSTORE_BUNDLE_TYPES = frozenset(
    {"application/vnd.dev.sigstore.bundle.v0.3+json", "application/vnd.dev.sigstore.bundle+json;version=0.3"}
)
DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
# OCI distribution-spec repository name grammar (path components separated by "/").
_OCI_REPOSITORY = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$")


@dataclass(frozen=True)
class ReleaseTag:
    """A tag that names a release: a short commit SHA, and the environment when the grammar has one."""

    tag: str
    sha: str
    env: str | None


def is_valid_image_tag(tag: str) -> bool:
    return bool(_OCI_TAG.match(tag))


def is_digest(value: str) -> bool:
    return bool(DIGEST.match(value))


def is_repository_name(name: str) -> bool:
    """An OCI repository name (what a registry accepts, and what may go into a request path)."""
    return bool(_OCI_REPOSITORY.match(name))


def parse_release_tag(tag: str, pattern: re.Pattern[str]) -> ReleaseTag | None:
    """Match a tag against the app's grammar; None when it is not a release tag."""
    match = pattern.match(tag)
    if not match:
        return None
    env = match.groupdict().get("env")
    return ReleaseTag(tag=tag, sha=match["sha"], env=env or None)


def signed_digest(tag: str) -> str | None:
    """The image digest a cosign signature tag refers to (legacy ``sha256-<hex>.sig``, or the referrers
    fallback index ``sha256-<hex>`` that holds cosign v3 bundles), else None."""
    match = _COSIGN_SIGNATURE_TAG.match(tag)
    return f"sha256:{match['hex']}" if match else None


def signature_tag(digest: str) -> str:
    """The cosign legacy signature tag for an image digest."""
    algorithm, _, hex_digest = digest.partition(":")
    return f"{algorithm}-{hex_digest}.sig"
