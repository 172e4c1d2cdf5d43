"""Time, in one place, so tests and benchmarks can reason about it.

Every reading of the time and every timer goes through the reactor the clock was given: the
real reactor in a running node (``reactor.seconds()`` is the wall clock there), and
``twisted.internet.task.Clock`` (or ``MemoryReactorClock``) in tests, where time stands still
until the test calls ``advance``.
"""

from __future__ import annotations

from typing import Any


class Clock:
    def __init__(self, reactor: Any) -> None:
        self.reactor = reactor

    def time(self) -> float:
        """Seconds since the epoch, as the reactor tells them."""
        return float(self.reactor.seconds())

    def time_ms(self) -> int:
        return int(self.reactor.seconds() * 1000)

    def call_later(self, seconds: float, func: Any, *args: Any) -> Any:
        return self.reactor.callLater(seconds, func, *args)


def real_clock() -> Clock:
    """A clock on the global reactor, for command-line entry points that run without a node."""
    from twisted.internet import reactor

    return Clock(reactor)
