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
        self._again = False  # run_soon was asked during a run: one more after it
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

    def run_soon(self) -> None:
        """Run the job now, or once more right after the run under way (which may have passed
        what the caller just wrote)."""
        if self.running:
            self._again = True
        else:
            self.run_now()

    async def _guarded(self) -> None:
        self.running = True
        try:
            while True:
                self._again = False
                try:
                    await self._run()
                except Exception:
                    self.failed_runs += 1
                    logger.exception("%s failed", self.what)
                if not self._again:
                    return
        finally:
            self.running = False
