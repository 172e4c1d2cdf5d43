"""Group commit: events queued in the same moment are written in one transaction.

While one batch is being written, new events wait in the queue; when the write finishes the
next batch (everything queued meanwhile) goes out at once.  Each caller's Deferred fires after
its event is durable and the stream has advanced past it.  On a failed write every event of the
batch fails, its rooms are reloaded from the database, and the stream ids are released.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from twisted.internet import defer
from twisted.python.failure import Failure

from broker.rooms.live_room import RoomRegistry
from storage.events import EventStore, PersistItem
from storage.stream import StreamIdGenerator

logger = logging.getLogger(__name__)

MAX_BATCH = 500

AfterPersist = Callable[[list[PersistItem]], None]


class EventPersister:
    def __init__(
        self, events: EventStore, stream: StreamIdGenerator, registry: RoomRegistry,
        reactor: Any, after_persist: AfterPersist,
    ) -> None:
        self.events = events
        self.stream = stream
        self.registry = registry
        self.reactor = reactor
        self.after_persist = after_persist
        self._queue: list[tuple[list[PersistItem], defer.Deferred[None]]] = []
        self._writing = False
        self._scheduled = False
        self.batches_written = 0

    def persist(self, items: list[PersistItem]) -> defer.Deferred[None]:
        """Queue events (already holding their stream ids) and fire once they are durable."""
        d: defer.Deferred[None] = defer.Deferred()
        self._queue.append((items, d))
        if not self._writing and not self._scheduled:
            self._scheduled = True
            # Let every request handled in this reactor turn join the batch.
            self.reactor.callLater(0, self._write_next)
        return d

    def _write_next(self) -> None:
        self._scheduled = False
        if self._writing or not self._queue:
            return
        batch: list[tuple[list[PersistItem], defer.Deferred[None]]] = []
        count = 0
        while self._queue and count < MAX_BATCH:
            entry = self._queue.pop(0)
            batch.append(entry)
            count += len(entry[0])
        items = [item for entry in batch for item in entry[0]]
        self._writing = True
        d = self.events.persist_batch(items)
        d.addCallbacks(self._written, self._failed, callbackArgs=(batch, items),
                       errbackArgs=(batch, items))

    def _written(self, _: Any, batch: list[tuple[list[PersistItem], defer.Deferred[None]]],
                 items: list[PersistItem]) -> None:
        self.batches_written += 1
        self.stream.finish([item.stream_ordering for item in items])
        try:
            self.after_persist(items)
        except Exception:
            logger.exception("after-persist hook failed")
        self._writing = False
        for _items, d in batch:
            d.callback(None)
        self._write_next()

    def _failed(self, failure: Failure,
                batch: list[tuple[list[PersistItem], defer.Deferred[None]]],
                items: list[PersistItem]) -> None:
        logger.error("writing %d events failed: %s", len(items), failure.getErrorMessage())
        rooms = {item.event.room_id for item in items}
        for room_id in rooms:
            self.registry.invalidate(room_id)
        # Queued events of those rooms were built on top of the lost ones: fail them too.
        doomed = [e for e in self._queue if any(i.event.room_id in rooms for i in e[0])]
        self._queue = [e for e in self._queue if e not in doomed]
        failed_items = items + [item for entry in doomed for item in entry[0]]
        self.stream.finish([item.stream_ordering for item in failed_items])
        self._writing = False
        for _items, d in batch + doomed:
            d.errback(failure)
        self._write_next()
