"""tagrelay's errors: one hierarchy, each error saying what is wrong and what to do about it.

The rule that keeps retries honest: a *transient* failure (5xx, throttling, timeouts, an outside
system unreachable) raises ``TransientError`` so that Lambda retries the invocation and, in the end,
dead-letters it. Everything that is a decision about the event (ignored, rejected, waiting) returns
normally, so that a retry never repeats or changes a decision.

    TagrelayError
    ├── TransientError        an outside system failed in a way that may pass: retry
    ├── MisconfiguredError    an outside system refused us: an operator must fix something
    ├── InvocationFailed      the promoter function was not reached or gave no answer (the CLI)
    ├── RefreshError          the TUF repository could not be read or did not verify (trust-root refresh)
    ├── InvalidInput          the input is wrong (an event, a request, the configuration, a values
    │                         file): fixed by the sender, never by a retry (also a ValueError)
    ├── Answer                an outside system answered, and the answer decides: the service turns
    │   │                     it into a decision (a missing commit, a stale blob)
    │   ├── CommitNotFound, FileNotFound, FileTooLarge, WriteConflict
    │   └── IdentityError
    └── UnusableAnswer        an outside system answered, but the answer cannot be used (bad JSON, a
        └── RegistryError     digest mismatch, too large): permanent, retrying reads the same answer

Errors are raised with a message that names the thing (repository, path, SHA, setting) and, where
there is one, the fix. Secrets never appear in a message.
"""

from __future__ import annotations


class TagrelayError(Exception):
    """Base class of the errors tagrelay raises on purpose."""


class TransientError(TagrelayError):
    """An outside system failed in a way that may pass: retry the invocation."""

    def __init__(self, system: str, message: str) -> None:
        super().__init__(f"{system}: {message}")
        self.system = system


class MisconfiguredError(TagrelayError):
    """An outside system refused us for a reason an operator must fix (credentials, permissions).

    Raised, not decided: the event is retried and dead-lettered, so it can be redriven after the fix.
    """

    def __init__(self, system: str, message: str) -> None:
        super().__init__(f"{system}: {message}")
        self.system = system


class InvalidInput(TagrelayError, ValueError):
    """The input itself is wrong: the sender must change it (a retry would fail the same way)."""


class InvocationFailed(TagrelayError):
    """The promoter function was not reached, or gave no answer (the `tagrelay` operator commands).

    ``may_have_run``: whether the request may have been carried out (then the same request is sent
    again, never a new one); ``usage``: the caller's own setup is incomplete (no region)."""

    def __init__(self, message: str, *, may_have_run: bool, usage: bool = False) -> None:
        super().__init__(message)
        self.may_have_run = may_have_run
        self.usage = usage


class RefreshError(TagrelayError):
    """The TUF repository could not be read or did not verify (`tagrelay trust-root refresh`); nothing
    was replaced."""


class Answer(TagrelayError):
    """What an outside system answered, when the answer is a fact the caller decides on."""


class CommitNotFound(Answer):
    """The SHA (or ref) names no single commit of the repository: none, or (a short SHA) more than one.

    GitHub answers an ambiguous short SHA as it answers an unknown one (422 ``No commit found for SHA``
    on the commits API): nothing in the answer tells the two apart, so neither does tagrelay.
    """


class FileNotFound(Answer):
    """The values file (or its branch) does not exist."""


class FileTooLarge(Answer):
    """The file is larger than the caller's cap (nothing past the Contents API's metadata was read)."""

    def __init__(self, message: str, size: int) -> None:
        super().__init__(message)
        self.size = size


class WriteConflict(Answer):
    """The file changed since it was read (HTTP 409/422 on the Contents API): re-read and re-apply."""


class IdentityError(Answer):
    """The caller's identity could not be established. ``code`` is one of identity_missing,
    identity_invalid (the proof is malformed or made for something else), identity_refused (STS
    refused it), identity_replayed (the proof was used before) and identity_unverifiable (STS could
    not be reached)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class UnusableAnswer(TagrelayError):
    """An outside system answered, but what it said cannot be used. Permanent."""


class RegistryError(UnusableAnswer):
    """The registry answered, but the answer is unusable (bad JSON, digest mismatch, unexpected status).

    Permanent: retrying the same read returns the same answer.
    """


class RegistryResponseTooLarge(RegistryError):
    """An answer longer than its cap: refused unread past the cap (reason ``response_too_large``)."""
