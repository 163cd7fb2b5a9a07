"""Argo CD application API client: one GET per application, retried on 5xx and connection errors.

Errors follow the project's retry rule (errors.py):

- 404 → ``AppMissing`` (a value, not an error): with ``?project=`` Argo CD answers 404 when the
  application does not exist in that project;
- 403 → ``AccessDenied`` (a value): the token may not get the application; without ``project`` Argo CD
  also answers 403 for a missing application, on purpose (server/application/application.go,
  ``getAppEnforceRBAC``), which is why environments should name their ``argocd_project``;
- 401 → ``MisconfiguredError``: the token is missing, invalid or expired; an operator must replace it;
- 5xx after the retries, connection errors, timeouts → ``TransientError``.

The bearer token is passed in (the caller reads it from Secrets Manager) and never logged: it lives
only in the session's headers, and no message here includes a header.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Mapping
from typing import Any, TypeVar
from urllib.parse import quote

import requests
from urllib3.util.retry import Retry

from tagrelay.adapters.http import DeadlineExceeded, ResponseTooLarge, bounded_session, deadline, read_capped
from tagrelay.config import ArgoCDConfig
from tagrelay.domain.outcome import (
    AccessDenied,
    ApplicationObservation,
    AppMissing,
    ArgoCDUnreachable,
    MalformedApplication,
    parse_application,
    parse_application_list,
)
from tagrelay.errors import MisconfiguredError, TransientError

SYSTEM = "argocd"
APPLICATIONS_PATH = "/api/v1/applications"
RETRY_STATUSES = (429, 500, 502, 503, 504)

logger = logging.getLogger(__name__)
_T = TypeVar("_T")


class ArgoCDClient:
    """A requests Session bound to one Argo CD server.

    ``request_count`` counts the API calls this client made (one per method call; retries inside a
    call are not counted, the server sees them). The tracker reports it per run.
    """

    def __init__(
        self,
        url: str,
        token: str,
        *,
        ca_bundle: str | None = None,
        insecure: bool = False,
        connect_timeout: float = 3.05,
        read_timeout: float = 10.0,
        retries: int = 3,
        backoff_factor: float = 0.5,
        refresh_timeout: float = 2.0,
        max_response_bytes: int = 8 * 1024 * 1024,
        deadline_seconds: float = 30.0,
    ) -> None:
        if ca_bundle and insecure:
            raise ValueError("give either ca_bundle or insecure=True, not both")
        if not token:
            raise ValueError("an Argo CD API token is required")
        self.url = url.rstrip("/")
        self.timeout = (connect_timeout, read_timeout)
        self.refresh_timeout = refresh_timeout
        # Bounds (limits.argocd_response_max_bytes): an answer is read in chunks and refused past the cap,
        # and a whole request, retries included, ends within the deadline (adapters/http.py).
        self.max_response_bytes = max_response_bytes
        self.deadline_seconds = deadline_seconds
        self.request_count = 0
        if insecure:
            logger.warning("Argo CD TLS verification is off (argocd.insecure: true)")
        self._verify: bool | str = ca_bundle if ca_bundle else not insecure
        verify = self._verify
        retry = Retry(
            total=retries,
            connect=retries,
            read=min(retries, 1),  # a read timeout already cost a whole read_timeout; one more try is enough
            status=retries,
            backoff_factor=backoff_factor,
            status_forcelist=RETRY_STATUSES,
            allowed_methods=frozenset({"GET"}),
            raise_on_status=False,  # hand back the last 5xx response, so its body can be reported
            respect_retry_after_header=True,
        )
        self.session = _session(token, verify, retry)
        # The refresh nudge must be quick and must not repeat: no retries, and read=False so that a
        # read timeout surfaces as ReadTimeout rather than as a wrapped connection error.
        self._nudge_session = _session(token, verify, Retry(total=0, read=False))

    @classmethod
    def from_config(cls, config: ArgoCDConfig, token: str, **overrides: Any) -> ArgoCDClient:
        return cls(
            config.url,
            token,
            ca_bundle=config.ca_bundle,
            insecure=config.insecure,
            read_timeout=config.timeout_seconds,
            **overrides,
        )

    @property
    def verify(self) -> bool | str:
        """What TLS verification uses: True (system CAs), a CA bundle path, or False (insecure)."""
        return self._verify

    def get_application(
        self, name: str, project: str | None = None
    ) -> ApplicationObservation | AppMissing | AccessDenied:
        """``GET /api/v1/applications/{name}[?project=p]``: one request (plus retries on 5xx)."""
        response = self._get(f"{APPLICATIONS_PATH}/{quote(name, safe='')}", {"project": project} if project else None)
        if response.status_code == 403:
            return AccessDenied(name=name, project=project, message=_error_message(response))
        if response.status_code == 404:
            return AppMissing(name=name, status_code=response.status_code, message=_error_message(response))
        return _parse(response, parse_application)

    def observe_application(
        self, name: str, project: str | None = None
    ) -> ApplicationObservation | AppMissing | AccessDenied | ArgoCDUnreachable:
        """Like ``get_application``, but an unreachable Argo CD is a value the state machine ignores.

        ``MisconfiguredError`` (a bad token) still raises: every deployment is stuck until it is fixed.
        """
        try:
            return self.get_application(name, project)
        except TransientError as error:
            return ArgoCDUnreachable(str(error))

    def list_applications(
        self, selector: str | None = None, names: Collection[str] | None = None
    ) -> list[ApplicationObservation]:
        """``GET /api/v1/applications``: one request. Argo CD filters by one ``name`` only, so several
        names are filtered here. Applications the token may not read are silently left out (RBAC)."""
        params: dict[str, str] = {}
        if selector:
            params["selector"] = selector
        wanted = set(names) if names is not None else None
        if wanted is not None and len(wanted) == 1:
            params["name"] = next(iter(wanted))
        response = self._get(APPLICATIONS_PATH, params)
        if response.status_code in (403, 404):
            raise MisconfiguredError(SYSTEM, f"listing applications refused: {_error_message(response)}")
        apps = _parse(response, parse_application_list)
        return [app for app in apps if wanted is None or app.name in wanted]

    def refresh(self, name: str, project: str | None = None) -> bool:
        """Ask Argo CD to reconcile ``name`` now rather than at its next poll. Never raises.

        Argo CD's ``?refresh=normal`` first sets the refresh annotation, then waits for the
        reconcile; a read timeout therefore means "asked, not waited for" and counts as success.
        """
        params: dict[str, str] = {"refresh": "normal"}
        if project:
            params["project"] = project
        self.request_count += 1
        try:
            response = self._nudge_session.get(
                f"{self.url}{APPLICATIONS_PATH}/{quote(name, safe='')}",
                params=params,
                timeout=(self.timeout[0], self.refresh_timeout),
                verify=self._verify,
            )
        except requests.ReadTimeout:
            logger.info("Argo CD refresh of %s requested; not waiting for the reconcile", name)
            return True
        except Exception as error:  # whatever goes wrong, the promotion must not fail because of a nudge
            logger.warning("Argo CD refresh of %s failed: %s", name, type(error).__name__)
            return False
        if response.ok:
            return True
        logger.warning(
            "Argo CD refresh of %s refused: HTTP %s %s", name, response.status_code, _error_message(response)
        )
        return False

    def close(self) -> None:
        self.session.close()
        self._nudge_session.close()

    def __enter__(self) -> ArgoCDClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _get(self, path: str, params: Mapping[str, str] | None) -> requests.Response:
        self.request_count += 1
        try:
            with deadline(self.deadline_seconds):
                # verify per request: requests lets REQUESTS_CA_BUNDLE override a Session's own verify.
                response = self.session.get(
                    f"{self.url}{path}", params=params, timeout=self.timeout, verify=self._verify, stream=True
                )
                # Read now, within the cap; .json() and .text then use these bytes.
                response._content = read_capped(response, self.max_response_bytes)
        except ResponseTooLarge:
            raise TransientError(
                SYSTEM,
                f"the answer to {path} is larger than {self.max_response_bytes} bytes (limits.argocd_response_max_bytes)",
            ) from None
        except DeadlineExceeded:
            raise TransientError(SYSTEM, f"no complete answer to {path} within {self.deadline_seconds:g}s") from None
        except requests.exceptions.SSLError as error:
            raise MisconfiguredError(
                SYSTEM, f"TLS verification failed ({_reason(error)}); check argocd.ca_bundle"
            ) from None
        except (requests.ConnectionError, requests.Timeout) as error:
            raise TransientError(SYSTEM, f"unreachable at {self.url}: {_reason(error)}") from None
        except requests.RequestException as error:
            raise TransientError(SYSTEM, f"request failed: {_reason(error)}") from None
        if response.status_code == 401:
            raise MisconfiguredError(
                SYSTEM, f"the API token is invalid or expired ({_error_message(response)}); replace the secret"
            )
        if response.status_code in RETRY_STATUSES:
            raise TransientError(SYSTEM, f"HTTP {response.status_code} after retries: {_error_message(response)}")
        if response.status_code >= 400 and response.status_code not in (403, 404):
            raise MisconfiguredError(SYSTEM, f"HTTP {response.status_code}: {_error_message(response)}")
        return response


def _session(token: str, verify: bool | str, retry: Retry) -> requests.Session:
    session = bounded_session(retry=retry)  # its connections honour the whole-request deadline
    session.headers["Authorization"] = f"Bearer {token}"
    session.headers["Accept"] = "application/json"
    session.verify = verify
    return session


def _parse(response: requests.Response, parser: Callable[[Any], _T]) -> _T:
    try:
        document = response.json()
    except ValueError:
        raise MisconfiguredError(
            SYSTEM, f"HTTP {response.status_code} answer is not JSON; is argocd.url the API server?"
        ) from None
    try:
        return parser(document)
    except MalformedApplication as error:
        raise MisconfiguredError(SYSTEM, f"unexpected answer: {error}") from None


def _error_message(response: requests.Response) -> str:
    """grpc-gateway's ``{"error", "code", "message"}``, or the start of whatever else came back."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:200].strip() or response.reason
    if isinstance(body, dict):
        message = body.get("message") or body.get("error")
        if isinstance(message, str) and message:
            return message
    return str(body)[:200]


def _reason(error: Exception) -> str:
    # urllib3 wraps the root cause several levels deep; its last line is the useful part.
    return str(error).rsplit(": ", 1)[-1][:200] or type(error).__name__
