"""Expiry of the outbound federation queue: what a server is owed for longer than the maximum
age (``retention.federation_queue_max_age``) is deleted and counted, never sent late.

The destination loops already leave expired entries out of every batch they send
(:meth:`federation.sender.destination.QueueContext.queued_since`), so a server coming back
between two runs gets nothing late; this job removes them from the database, every
:data:`EXPIRY_INTERVAL_S` on the node's clock, and first when the sender starts (before any
destination resumes).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from twisted.internet import defer, task

from federation.sender.destination import Clock
from storage.federation_queue import FederationQueueStore

logger = logging.getLogger(__name__)

EXPIRY_INTERVAL_S = 3600


@dataclass
class ExpiredCounts:
    """What the expiry deleted since the node started."""

    pdus: int = 0
    edus: int = 0


class QueueExpiry:
    def __init__(self, store: FederationQueueStore, clock: Clock, max_age_ms: int) -> None:
        self.store = store
        self.clock = clock
        self.max_age_ms = max_age_ms
        self.counts = ExpiredCounts()
        self._loop: task.LoopingCall | None = None
        # Told (destination, event ID) of the PDUs about to be deleted unsent (the node marks
        # the application messages they carried failed).
        self.on_dropped: Callable[[list[tuple[str, str]]], None] | None = None

    async def expire(self) -> tuple[int, int]:
        """Delete the entries older than the maximum age now; the (PDUs, EDUs) deleted."""
        now = self.clock.time_ms()
        if self.on_dropped is not None:
            dropped = await self.store.expiring_pdus(now - self.max_age_ms)
            if dropped:
                self.on_dropped(dropped)
        pdus, edus = await self.store.expire_queued(now - self.max_age_ms, now)
        self.counts.pdus += pdus
        self.counts.edus += edus
        if pdus or edus:
            logger.info("federation: deleted %d PDUs and %d EDUs queued for longer than %d ms"
                        " for servers that did not take them", pdus, edus, self.max_age_ms)
        return pdus, edus

    async def _run(self) -> None:
        try:
            await self.expire()
        except Exception:  # the loop must keep running
            logger.exception("federation: expiry of the outbound queue failed")

    def start(self, reactor: Any) -> None:
        if self._loop is None:
            self._loop = task.LoopingCall(lambda: defer.ensureDeferred(self._run()))
            self._loop.clock = reactor
            self._loop.start(EXPIRY_INTERVAL_S, now=False)  # the sender expired at start

    def stop(self) -> None:
        loop, self._loop = self._loop, None
        if loop is not None and loop.running:
            loop.stop()

    def to_json(self) -> dict[str, Any]:
        return {"max_age": self.max_age_ms, "deleted_pdus": self.counts.pdus,
                "deleted_edus": self.counts.edus}
