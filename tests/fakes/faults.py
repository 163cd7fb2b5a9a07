"""Fault injection for the fakes: make the next call(s) of a method fail, or do its work and then fail.

The faults are those the local stack's servers inject (devstack/github_standin/faults.py,
devstack/dynamodb_faults.py): an error before the call does anything (a 5xx, throttling, a refusal),
and a call whose work is done but whose answer is lost (a timeout after GitHub committed, a DynamoDB
write whose response never arrived). Every fake counts its calls in ``request_count``, as the
adapters do.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from tagrelay.errors import TransientError


@dataclass
class _Fault:
    method: str
    error: Callable[[], Exception]
    times: int
    after: bool  # True: the call does its work, then raises (its answer is lost)


@dataclass
class Faults:
    """Planned failures, by method name. A fake calls ``before(method)`` on entry and ``after(method)``
    once its work is done; either raises when a fault is planned for that moment."""

    system: str
    _planned: list[_Fault] = field(default_factory=list)
    # method -> how many calls failed because of a fault (tests assert the fault was met)
    met: dict[str, int] = field(default_factory=dict)

    def fail(self, method: str, error: Exception | Callable[[], Exception] | None = None, *, times: int = 1) -> None:
        """The next ``times`` calls of ``method`` raise ``error`` (a TransientError by default) before
        doing anything."""
        self._planned.append(_Fault(method, self._maker(method, error), times, after=False))

    def lose_answer(
        self, method: str, error: Exception | Callable[[], Exception] | None = None, *, times: int = 1
    ) -> None:
        """The next ``times`` calls of ``method`` do their work, then raise: the caller cannot tell."""
        self._planned.append(_Fault(method, self._maker(method, error), times, after=True))

    def clear(self) -> None:
        self._planned.clear()

    def before(self, method: str) -> None:
        self._trip(method, after=False)

    def after(self, method: str) -> None:
        self._trip(method, after=True)

    def _trip(self, method: str, *, after: bool) -> None:
        for fault in self._planned:
            if fault.method == method and fault.after is after:
                fault.times -= 1
                if fault.times <= 0:
                    self._planned.remove(fault)
                self.met[method] = self.met.get(method, 0) + 1
                raise fault.error()

    def _maker(self, method: str, error: Exception | Callable[[], Exception] | None) -> Callable[[], Exception]:
        if error is None:
            return lambda: TransientError(self.system, f"{method}: injected fault")
        if isinstance(error, Exception):
            return lambda: error
        return error
