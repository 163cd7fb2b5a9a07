"""Errors that cross module boundaries.

The rule that keeps retries honest: a *transient* failure (5xx, throttling, timeouts, an outside
system unreachable) raises ``TransientError`` so that Lambda retries the invocation and, in the end,
dead-letters it. Everything that is a decision about the event (ignored, rejected, waiting) returns
normally, so that a retry never repeats or changes a decision.
"""

from __future__ import annotations


class TagrelayError(Exception):
    """Base class of tagrelay's own errors."""


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
