"""A background job run at start and then at an interval on the reactor: a failed run is
logged and counted, and the loop goes on (what is left waits for the next run)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from twisted.internet import defer, task

logger = logging.getLogger(__name__)


class Periodic:
    def __init__(self, run: Callable[[], Awaitable[Any]], what: str) -> None:
        self._run = run
        self.what = what  # names the job in the log
        self.failed_runs = 0
        self.running = False  # a run is under way
        self._loop: task.LoopingCall | None = None

    def start(self, reactor: Any, interval_s: float) -> None:
        self._loop = task.LoopingCall(self.run_now)
        self._loop.clock = reactor
        self._loop.start(interval_s, now=True)

    def stop(self) -> None:
        if self._loop is not None and self._loop.running:
            self._loop.stop()

    def run_now(self) -> defer.Deferred[None]:
        """Run the job now, off the caller (nothing if a run is under way)."""
        if self.running:
            return defer.succeed(None)
        return defer.ensureDeferred(self._guarded())

    async def _guarded(self) -> None:
        self.running = True
        try:
            await self._run()
        except Exception:
            self.failed_runs += 1
            logger.exception("%s failed", self.what)
        finally:
            self.running = False
