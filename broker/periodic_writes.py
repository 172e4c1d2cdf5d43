"""Counts kept in memory and written to the database in batches, off the request path.

A subclass says what is waiting to be written (:meth:`PeriodicWrites.pending`), how to write it
in one transaction (:meth:`PeriodicWrites.write`) and what was written once the write succeeded
(:meth:`PeriodicWrites.written`).  This class writes every ``interval`` seconds on the
reactor's clock (a :class:`broker.periodic.Periodic` job, which also writes at start) and once
more at shutdown; one write at a time (a flush asked during another waits for it, then writes
what is left).  A write that fails leaves everything pending, so it
goes with the next one: nothing counted is lost while the node runs, a crash loses at most the
last interval.  Used by :mod:`broker.refusal_counts` and :mod:`broker.statistics`.
"""

from __future__ import annotations

import logging
from typing import Any, Generic, TypeVar

from twisted.internet import defer

from broker.periodic import Periodic

logger = logging.getLogger(__name__)

T = TypeVar("T")


class PeriodicWrites(Generic[T]):
    def __init__(self, interval: float, what: str) -> None:
        self.interval = interval
        self.what = what  # named in the log line of a failed write
        self._job: Periodic | None = None
        self._writing: defer.Deferred[None] | None = None

    def pending(self) -> T | None:
        """What was counted since the last write, None when nothing was."""
        raise NotImplementedError

    async def write(self, pending: T) -> None:
        """Write ``pending`` in one transaction."""
        raise NotImplementedError

    def written(self, pending: T) -> None:
        """``pending`` is in the database now."""
        raise NotImplementedError

    async def write_pending(self) -> T | None:
        """Write what is pending; what was written (None: nothing was pending)."""
        while self._writing is not None:
            await self._writing
        pending = self.pending()
        if pending is None:
            return None
        self._writing = defer.ensureDeferred(self.write(pending))
        try:
            await self._writing
        finally:
            self._writing = None
        self.written(pending)
        return pending

    async def _write_quietly(self) -> None:
        try:
            await self.write_pending()
        except Exception:  # pending still, for the next write
            logger.exception("writing the %s failed", self.what)

    def start(self, reactor: Any) -> None:
        """Write every ``interval`` seconds (and call :meth:`stop` before the database
        closes)."""
        self._job = Periodic(self.write_pending, f"writing the {self.what}")
        self._job.start(reactor, self.interval)

    def stop(self) -> defer.Deferred[None]:
        """Stop writing every ``interval`` seconds, after one last write."""
        if self._job is not None:
            self._job.stop()
        return defer.ensureDeferred(self._write_quietly())
