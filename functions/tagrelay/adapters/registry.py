"""OCI distribution API client: what tagrelay reads from ECR (or the local registry).

Four reads, one HTTP request each, so that the requests per event stay bounded and countable:
``resolve_tag`` (HEAD a manifest), ``get_manifest`` (GET a manifest), ``get_blob`` (GET a blob) and
``list_referrers`` (GET the OCI 1.1 referrers of a manifest, for cosign v3 signatures).
Nothing here lists tags: every event has a bounded number of registry requests (docs/promotion.md).

Every read is bounded (adapters/http.py, configured by ``limits:``): a connect timeout, a deadline on
the whole request (retries and the blob redirect included), and a cap on every body it reads (error
bodies included: only their first ``error_body_max_bytes`` are read, for the error codes).

Errors follow tagrelay.errors: network failures, timeouts, a missed deadline, 429 and 5xx are retried
twice inside (urllib3 ``Retry``) and then raise ``TransientError``; 401/403 raise ``MisconfiguredError``
naming the credential or permission to check; an answer that is wrong (bad JSON, digest mismatch, other
4xx) raises ``RegistryError``, and one over its size cap ``RegistryResponseTooLarge`` (a RegistryError). A 404 on a manifest is an answer, not an error: ``None``. That
holds for ``MANIFEST_UNKNOWN`` (tag or digest unknown) and for ``NAME_UNKNOWN`` (repository unknown,
e.g. an image of the app that was never pushed): for a readiness check both mean "not there (yet)";
the latter is logged as a warning because it may also be a misspelt repository in the configuration.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import quote, urljoin

import requests
import urllib3
from urllib3.util.retry import Retry

from tagrelay.adapters.http import (
    DeadlineExceeded,
    ResponseTooLarge,
    bounded_session,
    deadline,
    read_capped,
    read_prefix,
)
from tagrelay.domain.facts import Manifest
from tagrelay.domain.tags import is_digest, is_repository_name, is_valid_image_tag
from tagrelay.errors import (
    MisconfiguredError,
    RegistryError,
    RegistryResponseTooLarge,
    TransientError,
)

if TYPE_CHECKING:
    from mypy_boto3_ecr import ECRClient

    from tagrelay.config import App

logger = logging.getLogger(__name__)

SYSTEM = "registry"

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
# Sent on every manifest request: distribution 2.8 answers 404 for an OCI manifest unless the Accept
# header lists the OCI type, and ECR would otherwise translate or refuse what it stored.
MANIFEST_ACCEPT = ", ".join((OCI_MANIFEST, DOCKER_MANIFEST, OCI_INDEX, DOCKER_MANIFEST_LIST))

# ECR's manifest size limit is 4 MiB; nothing tagrelay reads (manifests, signature payloads, bundles)
# comes near these, so a bigger answer is a broken or hostile registry, not data to buffer.
MAX_MANIFEST_BYTES = 4 * 1024 * 1024
MAX_BLOB_BYTES = 8 * 1024 * 1024


@dataclass(frozen=True)
class RegistryLimits:
    """The bounds of every registry read (``limits:`` in the configuration, docs/configuration.md)."""

    connect_timeout: float = 3.0
    deadline: float = 10.0
    manifest_max_bytes: int = MAX_MANIFEST_BYTES
    error_body_max_bytes: int = 64 * 1024


USER_AGENT = "tagrelay (registry adapter)"
RETRIES = 2  # per read, for connection failures, 429 and 5xx: after ~0 s and ~0.4 s
_RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})

# OCI distribution-spec repository name grammar; anything else could alter the request path.
_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})


class RegistryAuth(Protocol):
    """Supplies the Authorization header for registry requests."""

    def authorization(self) -> str:
        """The Authorization header value, e.g. ``Basic <token>``."""
        ...

    def invalidate(self) -> None:
        """Forget a cached credential after the registry refused it."""
        ...

    def describe(self) -> str:
        """What credential this is, for error messages (never the credential itself)."""
        ...


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def retrying_session() -> requests.Session:
    """A bounded session that retries idempotent reads a little: twice, after 0 s and ~0.4 s.

    Small on purpose: a Lambda invocation has a deadline, and the invocation itself is retried when
    the registry stays unavailable (TransientError). The whole-request deadline covers the retries.
    """
    # Connection failures only: urllib3 drains a 5xx body before retrying (a 200 MB error body would be
    # read in full), so 429/5xx answers are retried by Registry._send, which closes them unread.
    retry = Retry(
        total=RETRIES,
        backoff_factor=0.2,
        backoff_jitter=0.1,
        status_forcelist=(),
        allowed_methods=frozenset({"GET", "HEAD"}),
        raise_on_status=False,
        respect_retry_after_header=False,  # a throttled registry's Retry-After can exceed the deadline
    )
    return bounded_session(retry=retry, user_agent=USER_AGENT)


class Registry:
    """A read-only OCI distribution API client for one registry (ECR or the local stand-in)."""

    def __init__(
        self,
        base_url: str,
        *,
        auth: RegistryAuth | None = None,
        limits: RegistryLimits = RegistryLimits(),
        session: requests.Session | None = None,
    ) -> None:
        """``session``: share one between clients to reuse connections; it must be a bounded session
        (``retrying_session()``, with the retry policy described above, or ``http.bounded_session()``)."""
        self.base_url = base_url.rstrip("/")
        self._auth = auth
        self.limits = limits
        # Connect timeout; the read timeout is the whole deadline (the deadline itself cuts it short).
        self._timeout = (limits.connect_timeout, limits.deadline)
        self._session = session if session is not None else retrying_session()
        self._request_count = 0

    @property
    def auth(self) -> RegistryAuth | None:
        """The credentials this client sends (None: anonymous)."""
        return self._auth

    @property
    def request_count(self) -> int:
        """Registry API requests sent by this client: one per read. Transport-level retries and the
        hop from a blob redirect to its storage URL are part of the read that caused them."""
        return self._request_count

    def resolve_tag(self, repository: str, tag: str) -> str | None:
        """The digest a tag points to (one HEAD request), or None when the tag does not exist."""
        if not is_valid_image_tag(tag):
            raise ValueError(f"not a valid tag: {tag!r}")
        what = f"{repository}:{tag}"
        with self._bounded("HEAD", what):
            response = self._send("HEAD", repository, f"manifests/{tag}", what=what)
            with response:
                if response.status_code == 404:
                    # HEAD answers carry no error body, so an unknown repository looks like an unknown tag.
                    return None
                digest = response.headers.get("Docker-Content-Digest", "")
        if not is_digest(digest):
            raise RegistryError(f"HEAD {what} answered without a sha256 Docker-Content-Digest (got {digest!r})")
        return digest

    def get_manifest(self, repository: str, reference: str) -> Manifest | None:
        """A manifest by tag or digest (one GET), or None when unknown (404).

        By digest, the body must hash to that digest; by tag, it must hash to the digest the registry
        announces in Docker-Content-Digest. Either way ``Manifest.digest`` is computed from the bytes.
        """
        by_digest = is_digest(reference)
        if not by_digest and not is_valid_image_tag(reference):
            raise ValueError(f"not a valid tag or sha256 digest: {reference!r}")
        what = f"{repository}@{reference}" if by_digest else f"{repository}:{reference}"
        with self._bounded("GET", f"manifest {what}"):
            response = self._send("GET", repository, f"manifests/{reference}", what=what)
            with response:
                if response.status_code == 404:
                    self._note_unknown(response, what)
                    return None
                raw = self._read(response, self.limits.manifest_max_bytes, what=f"manifest {what}")
                announced = response.headers.get("Docker-Content-Digest")
                content_type = response.headers.get("Content-Type", "").split(";", 1)[0].strip()
        digest = sha256_digest(raw)
        if by_digest and digest != reference:
            raise RegistryError(f"manifest {what} does not match its digest: the body hashes to {digest}")
        if announced and announced != digest:
            raise RegistryError(f"manifest {what}: the registry announced {announced} but the body hashes to {digest}")
        manifest = Manifest(digest=digest, media_type=content_type, raw=raw)
        document = manifest.document()  # refuse non-JSON here rather than in every caller
        if not manifest.media_type or manifest.media_type == "application/json":
            declared = document.get("mediaType")
            manifest = Manifest(digest=digest, media_type=declared if isinstance(declared, str) else "", raw=raw)
        return manifest

    def get_blob(self, repository: str, digest: str, *, max_bytes: int = MAX_BLOB_BYTES) -> bytes:
        """A blob's content (one GET), verified against its digest.

        ECR answers with a redirect to a pre-signed S3 URL; it is followed without the registry's
        Authorization header, because the URL carries its own credentials and S3 refuses two.
        """
        if not is_digest(digest):
            raise ValueError(f"not a sha256 digest: {digest!r}")
        what = f"blob {repository}@{digest}"
        with self._bounded("GET", what):
            response = self._send("GET", repository, f"blobs/{digest}", what=what)
            if response.status_code in _REDIRECT_STATUSES:
                location = response.headers.get("Location")
                response.close()
                if not location:
                    raise RegistryError(f"{what}: redirect without a Location header")
                response = self._follow_blob_redirect(urljoin(response.url, location), what=what)
            with response:
                if response.status_code == 404:
                    raise RegistryError(f"{what} is unknown to the registry (404), although a manifest refers to it")
                body = self._read(response, max_bytes, what=what)
        actual = sha256_digest(body)
        if actual != digest:
            raise RegistryError(f"{what} does not match its digest: the body hashes to {actual}")
        return body

    def list_referrers(
        self, repository: str, digest: str, *, artifact_type: str | None = None
    ) -> list[dict[str, Any]] | None:
        """The descriptors of the manifests whose ``subject`` is ``digest`` (one GET of the OCI 1.1
        referrers API), or None when the registry does not offer the API (404).

        ``artifact_type`` asks the registry to filter; registries may ignore that, so the caller filters
        too. Only the first page is read: a signature is among the first referrers of an image unless
        the registry lists hundreds. Registries without the API (distribution 2.8) are read through the
        referrers tag schema instead: ``get_manifest(repository, "sha256-<hex>")``.
        """
        if not is_digest(digest):
            raise ValueError(f"not a sha256 digest: {digest!r}")
        query = f"?artifactType={quote(artifact_type, safe='')}" if artifact_type else ""
        what = f"referrers of {repository}@{digest}"
        with self._bounded("GET", what):
            response = self._send("GET", repository, f"referrers/{digest}{query}", what=what)
            with response:
                if response.status_code == 404:
                    return None
                raw = self._read(response, self.limits.manifest_max_bytes, what=what)
        try:
            document = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise RegistryError(f"{what}: the answer is not JSON") from None
        manifests = document.get("manifests") if isinstance(document, dict) else None
        if not isinstance(manifests, list):
            raise RegistryError(f"{what}: the answer is not an image index with a 'manifests' list")
        return [descriptor for descriptor in manifests if isinstance(descriptor, dict)]

    @contextmanager
    def _bounded(self, method: str, what: str) -> Iterator[None]:
        """One read within the whole-request deadline (limits.http_deadline_seconds)."""
        try:
            with deadline(self.limits.deadline):
                yield
        except DeadlineExceeded:
            raise TransientError(
                SYSTEM,
                f"{method} {what}: {self.base_url} gave no complete answer within {self.limits.deadline:g}s "
                "(limits.http_deadline_seconds); retrying the event",
            ) from None

    def _read(self, response: requests.Response, limit: int, *, what: str) -> bytes:
        try:
            return read_capped(response, limit)
        except ResponseTooLarge:
            response.close()
            raise RegistryResponseTooLarge(
                f"{what} is more than the {limit} bytes tagrelay accepts (limits in docs/configuration.md)"
            ) from None
        except requests.RequestException as exc:
            raise TransientError(SYSTEM, f"{what}: the answer was cut off ({type(exc).__name__})") from None

    def _send(self, method: str, repository: str, path: str, *, what: str) -> requests.Response:
        if not is_repository_name(repository):
            raise ValueError(f"not a valid repository name: {repository!r}")
        headers = {"Accept": MANIFEST_ACCEPT} if path.startswith("manifests/") else {}
        if self._auth is not None:
            headers["Authorization"] = self._auth.authorization()
        url = f"{self.base_url}/v2/{repository}/{path}"
        self._request_count += 1
        try:
            for attempt in range(RETRIES + 1):
                response = self._session.request(
                    method, url, headers=headers, timeout=self._timeout, allow_redirects=False, stream=True
                )
                if response.status_code not in _RETRY_STATUSES or attempt == RETRIES:
                    break
                response.close()  # unread: an error body is never drained
                time.sleep(0.2 * 2**attempt * (0.5 + random.random()))  # noqa: S311 - jitter, not a secret
        except requests.RequestException as exc:
            if _timed_out(exc):
                raise TransientError(
                    SYSTEM, f"{method} {what}: no answer from {self.base_url} within {self._timeout}s"
                ) from None
            raise TransientError(
                SYSTEM, f"{method} {what}: cannot reach {self.base_url} ({type(exc).__name__})"
            ) from None
        self._raise_for_refusal(response, method=method, what=what, repository=repository)
        return response

    def _raise_for_refusal(self, response: requests.Response, *, method: str, what: str, repository: str) -> None:
        status = response.status_code
        if status < 300 or status == 404 or status in _REDIRECT_STATUSES:
            return
        codes = self._error_codes(response) if method != "HEAD" else []
        response.close()
        detail = f" ({', '.join(codes)})" if codes else ""
        if status == 401:
            if self._auth is not None:
                self._auth.invalidate()  # a fresh token is fetched on the next invocation's first request
            credential = self._auth.describe() if self._auth is not None else "no credentials (anonymous)"
            raise MisconfiguredError(
                SYSTEM,
                f"{method} {what}: {self.base_url} refused the credentials (401{detail}); tagrelay used "
                f"{credential}. Check that the registry in the configuration is the right account and region.",
            )
        if status == 403:
            raise MisconfiguredError(
                SYSTEM,
                f"{method} {what}: access denied (403{detail}). Allow the function's role to read repository "
                f"{repository} (ecr:BatchGetImage, ecr:GetDownloadUrlForLayer), in IAM and in the repository policy.",
            )
        if status == 429 or status >= 500:
            raise TransientError(SYSTEM, f"{method} {what}: {self.base_url} answered {status}{detail} after retries")
        raise RegistryError(f"{method} {what}: unexpected answer {status}{detail} from {self.base_url}")

    def _follow_blob_redirect(self, location: str, *, what: str) -> requests.Response:
        # Deliberately no Authorization header (see get_blob), and no further redirects.
        try:
            response = self._session.get(location, timeout=self._timeout, allow_redirects=False, stream=True)
        except requests.RequestException as exc:
            if _timed_out(exc):
                raise TransientError(
                    SYSTEM, f"{what}: the blob storage did not answer within {self._timeout}s"
                ) from None
            raise TransientError(SYSTEM, f"{what}: cannot reach the blob storage ({type(exc).__name__})") from None
        status = response.status_code
        if status == 429 or status >= 500:
            response.close()
            raise TransientError(SYSTEM, f"{what}: the blob storage answered {status} after retries")
        if status >= 300:
            response.close()
            raise RegistryError(f"{what}: the blob storage answered {status} to the registry's redirect")
        return response

    def _note_unknown(self, response: requests.Response, what: str) -> None:
        if "NAME_UNKNOWN" in self._error_codes(response):
            logger.warning("registry repository unknown", extra={"registry": self.base_url, "reference": what})

    def _error_codes(self, response: requests.Response) -> list[str]:
        """The ``errors[].code`` values of an OCI error body, from its first bytes only (never the rest)."""
        return _error_codes(read_prefix(response, self.limits.error_body_max_bytes))


def _timed_out(exc: requests.RequestException) -> bool:
    # Once the retries are spent, requests reports a timeout as ConnectionError(MaxRetryError(<timeout>)).
    if isinstance(exc, requests.Timeout):
        return True
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    # urllib3 derives "connection refused" (NewConnectionError) from ConnectTimeoutError; it is not a timeout.
    return isinstance(reason, urllib3.exceptions.TimeoutError) and not isinstance(
        reason, urllib3.exceptions.NewConnectionError
    )


def _error_codes(prefix: bytes) -> list[str]:
    """The ``errors[].code`` values of an OCI error body, or [] when there is none (or it was cut)."""
    try:
        body = json.loads(prefix)
    except ValueError:
        return []
    errors = body.get("errors") if isinstance(body, dict) else None
    if not isinstance(errors, list):
        return []
    return [str(error["code"]) for error in errors if isinstance(error, dict) and "code" in error]


def _utc_now() -> datetime:
    return datetime.now(UTC)


class EcrAuth:
    """ECR registry credentials: ``ecr:GetAuthorizationToken`` → ``Basic <token>``.

    Lazy (the first registry request fetches the token) and cached until ``expiresAt`` minus a margin
    (tokens live 12 hours), so a warm Lambda reuses one token across invocations.
    """

    def __init__(
        self,
        account: str,
        region: str,
        *,
        client: ECRClient | None = None,
        clock: Callable[[], datetime] = _utc_now,
        refresh_margin: timedelta = timedelta(minutes=10),
    ) -> None:
        self.account = account
        self.region = region
        self._client = client
        self._clock = clock
        self._refresh_margin = refresh_margin
        self._header: str | None = None
        self._expires_at: datetime | None = None
        self._lock = threading.Lock()

    def describe(self) -> str:
        return f"an ECR token for account {self.account} in {self.region} (ecr:GetAuthorizationToken)"

    def authorization(self) -> str:
        with self._lock:
            if (
                self._header is None
                or self._expires_at is None
                or self._clock() >= self._expires_at - self._refresh_margin
            ):
                self._header, self._expires_at = self._fetch()
            return self._header

    def invalidate(self) -> None:
        with self._lock:
            self._header = None
            self._expires_at = None

    def _fetch(self) -> tuple[str, datetime]:
        from botocore.exceptions import BotoCoreError, ClientError

        from tagrelay.adapters.aws import aws_call_failure

        client = self._client if self._client is not None else self._new_client()
        try:
            answer = client.get_authorization_token(registryIds=[self.account])
        except (ClientError, BotoCoreError) as exc:
            raise aws_call_failure("ecr", f"ecr:GetAuthorizationToken for account {self.account}", exc) from None
        data = answer.get("authorizationData") or []
        if not data or "authorizationToken" not in data[0]:
            raise TransientError("ecr", f"ecr:GetAuthorizationToken for account {self.account} returned no token")
        expires_at = data[0].get("expiresAt") or self._clock()
        if expires_at.tzinfo is None:
            expires_at = expires_at.replace(tzinfo=UTC)
        return f"Basic {data[0]['authorizationToken']}", expires_at

    def _new_client(self) -> ECRClient:
        import boto3
        from botocore.config import Config

        self._client = boto3.client(
            "ecr",
            region_name=self.region,
            config=Config(connect_timeout=3, read_timeout=5, retries={"mode": "standard", "max_attempts": 3}),
        )
        return self._client


def registry_for(
    app: App, *, limits: RegistryLimits = RegistryLimits(), session: requests.Session | None = None
) -> Registry:
    """The registry client for an app: ECR credentials for an ECR host, anonymous otherwise."""
    match = app.registry_host.endswith(".amazonaws.com") or app.registry_host.endswith(".amazonaws.com.cn")
    ecr = app.ecr_registry if match else None
    auth = EcrAuth(account=ecr[0], region=ecr[1]) if ecr else None
    return Registry(app.registry_url, auth=auth, limits=limits, session=session)
