"""Just what a :class:`broker.bounded_pool.BoundedPool` needs from a reactor, for tests that
run its real threads: calls handed over from pool threads, run when the test says, and
shutdown triggers (noted, not run)."""

from __future__ import annotations

import queue
from collections.abc import Callable
from typing import Any

WAIT_S = 10.0  # a generous bound on a thread handing over, never a timing assumption


class ThreadCallsReactor:
    def __init__(self) -> None:
        self.calls: queue.Queue[tuple[Callable[..., Any], tuple[Any, ...]]] = queue.Queue()

    def callFromThread(self, f: Callable[..., Any], *args: Any) -> None:  # noqa: N802
        self.calls.put((f, args))

    def addSystemEventTrigger(self, *args: Any) -> None:  # noqa: N802
        pass

    def run_one(self) -> None:
        """Run the next call a pool thread handed over (waiting for it)."""
        f, args = self.calls.get(timeout=WAIT_S)
        f(*args)
