"""Who is calling: the caller's AWS identity, verified by STS rather than asserted.

The technique of HashiCorp Vault's AWS IAM auth method. The CLI signs (SigV4, with the operator's own
credentials) an ``sts:GetCallerIdentity`` request but does not send it; it puts the signed headers and
body into the invocation payload. The promoter replays exactly that request to **its own configured
STS endpoint** and reads the caller's ARN from STS's answer. STS only answers if the signature is
valid, so the ARN is the one of whoever holds the credentials; the promoter never learns a secret
(a signature is not a credential, and it expires after 15 minutes).

Three more bindings, checked here before any request is made:

* the ``Host`` header must be the configured endpoint's host: the request goes only to that endpoint,
  never to a URL taken from the payload, and a proof signed for another endpoint is refused outright;
* the signed header ``X-Tagrelay-Request`` must carry the SHA-256 of the operator request itself
  (domain/operator.py ``request_binding``), so a proof cannot be reused for another request;
* the signed header ``X-Tagrelay-Nonce`` carries a random nonce, bound by the signature to the proof's
  ``X-Amz-Date``. Once STS has verified the proof, its nonce is recorded as used (a conditional put in
  the ledger, expiring a little after the proof could no longer be fresh), so each proof is accepted
  once: a captured payload replayed within the 15 minutes is refused (``identity_replayed``).

Signed headers and signatures are never logged, recorded or put in an error message.

The local stack's STS is moto, which answers GetCallerIdentity from the access key id without
checking the signature; everything else here (shape, host, binding, freshness, where the request
goes) is the same locally and tested there.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit
from xml.etree import ElementTree

from tagrelay.domain.facts import VerifiedCaller
from tagrelay.errors import IdentityError

if TYPE_CHECKING:
    import requests
    from botocore.credentials import ReadOnlyCredentials

GET_CALLER_IDENTITY_BODY = "Action=GetCallerIdentity&Version=2011-06-15"
CONTENT_TYPE = "application/x-www-form-urlencoded; charset=utf-8"
BINDING_HEADER = "X-Tagrelay-Request"
NONCE_HEADER = "X-Tagrelay-Nonce"
# The headers a proof may carry (case-insensitive); anything else is refused.
_ALLOWED_HEADERS = frozenset(
    {
        "authorization",
        "content-type",
        "host",
        "x-amz-date",
        "x-amz-security-token",
        BINDING_HEADER.lower(),
        NONCE_HEADER.lower(),
    }
)
_REQUIRED_HEADERS = ("authorization", "host", "x-amz-date", BINDING_HEADER.lower(), NONCE_HEADER.lower())
_MUST_BE_SIGNED = frozenset({"host", "x-amz-date", BINDING_HEADER.lower(), NONCE_HEADER.lower()})
_NONCE = re.compile(r"^[0-9a-f]{32}$")
_AUTHORIZATION = re.compile(
    r"^AWS4-HMAC-SHA256 Credential=[A-Za-z0-9]{1,128}/\d{8}/[a-z0-9-]+/sts/aws4_request,\s*"
    r"SignedHeaders=(?P<signed>[a-z0-9;-]+),\s*Signature=[0-9a-f]{64}$"
)
_AMZ_DATE = "%Y%m%dT%H%M%SZ"
# STS accepts a signature for 15 minutes; a clock a few minutes fast is tolerated.
MAX_AGE = timedelta(minutes=15)
MAX_SKEW = timedelta(minutes=5)
# A used nonce is kept until its proof could no longer be fresh, and a little longer (clock skew).
NONCE_RETENTION = MAX_AGE + MAX_SKEW
_STS_NS = "{https://sts.amazonaws.com/doc/2011-06-15/}"
_MAX_PROOF_BYTES = 16_384


def default_sts_endpoint(region: str) -> str:
    """The regional STS endpoint, unless the environment sends boto3 elsewhere (the local stack's moto)."""
    configured = os.environ.get("AWS_ENDPOINT_URL_STS") or os.environ.get("AWS_ENDPOINT_URL")
    if configured:
        return configured.rstrip("/")
    suffix = "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"
    return f"https://sts.{region}.{suffix}"


# --------------------------------------------------------------------------------------------------
# The CLI's side: sign, do not send.


def sign_caller_identity(
    credentials: ReadOnlyCredentials, *, endpoint: str, region: str, binding: str, nonce: str | None = None
) -> dict[str, Any]:
    """A signed ``GetCallerIdentity`` request for ``endpoint``, as ``{"headers": {...}, "body": "..."}``,
    with a fresh random nonce (or ``nonce``) signed in."""
    import secrets

    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest

    host = urlsplit(endpoint).netloc
    request = AWSRequest(
        method="POST",
        url=f"{endpoint.rstrip('/')}/",
        data=GET_CALLER_IDENTITY_BODY,
        headers={
            "Content-Type": CONTENT_TYPE,
            "Host": host,
            BINDING_HEADER: binding,
            NONCE_HEADER: nonce or secrets.token_hex(16),
        },
    )
    SigV4Auth(credentials, "sts", region).add_auth(request)
    return {"headers": {name: str(value) for name, value in request.headers.items()}, "body": GET_CALLER_IDENTITY_BODY}


# --------------------------------------------------------------------------------------------------
# The promoter's side: check the proof, replay it to the configured endpoint, read the ARN.


class StsIdentityVerifier:
    """``use_nonce(nonce, expires_at) -> bool`` records a proof's nonce as used and says whether it was
    new (the ledger's conditional put, Ledger.use_nonce); without it (tests of the proof alone) a proof
    is not single-use."""

    def __init__(
        self,
        endpoint: str,
        *,
        session: requests.Session | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        timeout_seconds: float = 5.0,
        use_nonce: Callable[[str, datetime], bool] | None = None,
    ) -> None:
        self.endpoint = endpoint.rstrip("/")
        self.host = urlsplit(self.endpoint).netloc
        self._session = session
        self._clock = clock
        self._timeout = timeout_seconds
        self._use_nonce = use_nonce

    def verify(self, proof: Mapping[str, Any] | None, *, binding: str) -> VerifiedCaller:
        headers = self.check(proof, binding=binding)
        caller = self._replay(headers)
        # Only a proof STS accepted uses up its nonce: a forged one cannot block a genuine one.
        if self._use_nonce is not None:
            signed_at = _signed_at(headers["x-amz-date"])
            if not self._use_nonce(headers[NONCE_HEADER.lower()], signed_at + NONCE_RETENTION):
                raise IdentityError(
                    "identity_replayed",
                    "this identity proof was used before: each request carries its own; run the tagrelay "
                    "command again (it signs a new one)",
                )
        return caller

    def check(self, proof: Mapping[str, Any] | None, *, binding: str) -> dict[str, str]:
        """Everything that can be judged without asking STS; returns the headers to replay."""
        if proof is None:
            raise IdentityError("identity_missing", "the request carries no identity proof")
        if set(proof) != {"headers", "body"}:
            raise IdentityError("identity_invalid", "the identity proof must have exactly 'headers' and 'body'")
        raw_headers, body = proof["headers"], proof["body"]
        if not isinstance(body, str) or not isinstance(raw_headers, dict):
            raise IdentityError("identity_invalid", "the identity proof's headers must be an object, its body a string")
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in raw_headers.items()):
            raise IdentityError("identity_invalid", "the identity proof's headers must be strings")
        if sum(len(k) + len(v) for k, v in raw_headers.items()) + len(body) > _MAX_PROOF_BYTES:
            raise IdentityError("identity_invalid", "the identity proof is too large")
        if body != GET_CALLER_IDENTITY_BODY:
            raise IdentityError("identity_invalid", "the identity proof must be an sts:GetCallerIdentity request")
        headers = {name.lower(): value for name, value in raw_headers.items()}
        self._check_headers(headers, raw_headers, binding)
        self._check_fresh(headers["x-amz-date"])
        return headers

    def _check_headers(self, headers: Mapping[str, str], raw_headers: Mapping[str, str], binding: str) -> None:
        """The signed request's headers: exactly the expected ones, for this STS host, this request and
        a fresh nonce."""
        if len(headers) != len(raw_headers):
            raise IdentityError("identity_invalid", "the identity proof repeats a header")
        if extra := set(headers) - _ALLOWED_HEADERS:
            raise IdentityError("identity_invalid", f"the identity proof carries unexpected header(s): {sorted(extra)}")
        if missing := [name for name in _REQUIRED_HEADERS if name not in headers]:
            raise IdentityError("identity_invalid", f"the identity proof lacks the header(s) {missing}")
        if headers["host"] != self.host:
            raise IdentityError(
                "identity_invalid",
                f"the identity proof was signed for {headers['host']!r}, but this promoter verifies callers with "
                f"{self.host!r}: run the command in the function's region, or set operators.sts_endpoint",
            )
        match = _AUTHORIZATION.match(headers["authorization"])
        if match is None:
            raise IdentityError("identity_invalid", "the identity proof's Authorization is not an STS SigV4 signature")
        if not set(match["signed"].split(";")) >= _MUST_BE_SIGNED:
            raise IdentityError("identity_invalid", f"the identity proof must sign {sorted(_MUST_BE_SIGNED)}")
        if headers[BINDING_HEADER.lower()] != binding:
            raise IdentityError("identity_invalid", "the identity proof was made for another request")
        if not _NONCE.match(headers[NONCE_HEADER.lower()]):
            raise IdentityError("identity_invalid", f"the identity proof's {NONCE_HEADER} is not 32 hex digits")

    def _check_fresh(self, amz_date: str) -> None:
        signed_at = _signed_at(amz_date)
        now = self._clock()
        if signed_at < now - MAX_AGE:
            raise IdentityError("identity_invalid", f"the identity proof expired (signed {signed_at:%H:%M:%S} UTC)")
        if signed_at > now + MAX_SKEW:
            raise IdentityError("identity_invalid", "the identity proof is dated in the future: check your clock")

    def _replay(self, headers: Mapping[str, str]) -> VerifiedCaller:
        import requests

        session = self._session or requests.Session()
        try:
            response = session.post(
                f"{self.endpoint}/",
                data=GET_CALLER_IDENTITY_BODY,
                headers={**headers, "accept": "text/xml"},
                timeout=self._timeout,
                allow_redirects=False,
            )
        except requests.RequestException as exc:
            raise IdentityError(
                "identity_unverifiable", f"STS at {self.host} did not answer ({type(exc).__name__})"
            ) from None
        finally:
            if self._session is None:
                session.close()
        if response.status_code != 200:
            # Only STS's error code: its message could quote parts of the request.
            code = _xml_text(response.content, "Code") or f"HTTP {response.status_code}"
            if response.status_code in (400, 403):
                raise IdentityError("identity_refused", f"STS refused the identity proof ({code})")
            raise IdentityError("identity_unverifiable", f"STS at {self.host} failed ({code})")
        arn, account, user_id = (_xml_text(response.content, name) for name in ("Arn", "Account", "UserId"))
        if not arn or not account or not arn.startswith("arn:"):
            raise IdentityError("identity_unverifiable", f"STS at {self.host} gave no caller ARN")
        return VerifiedCaller(arn=arn, account=account, user_id=user_id or "")


def _signed_at(amz_date: str) -> datetime:
    try:
        return datetime.strptime(amz_date, _AMZ_DATE).replace(tzinfo=UTC)
    except ValueError:
        raise IdentityError("identity_invalid", "the identity proof's X-Amz-Date is not a date") from None


def _xml_text(content: bytes, name: str) -> str | None:
    """One element's text from an STS answer (namespaced or not). STS is a configured AWS endpoint, and
    ElementTree expands no external entities; a body that does not parse counts as no answer."""
    try:
        root = ElementTree.fromstring(content)  # noqa: S314 - the configured STS endpoint's answer
    except ElementTree.ParseError:
        return None
    for element in root.iter():
        if element.tag in (f"{_STS_NS}{name}", name) and element.text:
            return element.text.strip()
    return None
