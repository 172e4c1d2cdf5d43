"""Group commit: events queued in the same moment are written in one transaction.

While one batch is being written, new events wait in the queue; when the write finishes the
next batch (everything queued meanwhile) goes out at once.  Each caller's Deferred fires after
its event is durable and the stream has advanced past it.  An event the database already holds
is not written again (its caller succeeds).

If a batch fails, its entries (each caller's events) are written again one transaction each, so
only the entries the database refuses fail, with :class:`EventNotStored`.  Their rooms are
reloaded from the database on next use, and the entries built on top of a refused event (later
ones of the same room, in the batch or queued) fail with :class:`BuiltOnLostEvent`: they can be
built again on the reloaded room.  Stream ids of everything not written are released.
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
Entry = tuple[list[PersistItem], defer.Deferred[None]]


class EventNotStored(Exception):
    """The database refused these events; nothing of them was written."""


class BuiltOnLostEvent(Exception):
    """These events follow an event of their room that could not be stored; nothing of them
    was written, and they may be built again on the room as the database holds it."""


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
        self._queue: list[Entry] = []
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
        batch: list[Entry] = []
        count = 0
        while self._queue and count < MAX_BATCH:
            entry = self._queue.pop(0)
            batch.append(entry)
            count += len(entry[0])
        items = [item for entry in batch for item in entry[0]]
        self._writing = True
        d = self.events.persist_batch(items)
        d.addCallbacks(self._written, self._batch_failed, callbackArgs=(batch,),
                       errbackArgs=(batch,))

    def _written(self, written: list[PersistItem], batch: list[Entry]) -> None:
        self.batches_written += 1
        self._stored(written, batch)
        self._next()

    def _batch_failed(self, failure: Failure, batch: list[Entry]) -> None:
        if len(batch) == 1:
            self._refused(batch[0], failure.value)
            self._next()
            return
        logger.warning("writing %d events together failed (%s): writing them one by one",
                       sum(len(entry[0]) for entry in batch), failure.getErrorMessage())
        d = defer.ensureDeferred(self._one_by_one(batch))
        d.addErrback(lambda f: logger.error("writing events one by one failed: %s", f))
        d.addBoth(lambda _: self._next())

    async def _one_by_one(self, batch: list[Entry]) -> None:
        lost_rooms: set[str] = set()
        for entry in batch:
            rooms = {item.event.room_id for item in entry[0]}
            if rooms & lost_rooms:
                self._lose([entry])
                continue
            try:
                written = await self.events.persist_batch(entry[0])
            except Exception as e:
                lost_rooms |= rooms
                self._refused(entry, e)
                continue
            self.batches_written += 1
            # At once, while the room in memory is still the one the entry was built on.
            self._stored(written, [entry])

    def _stored(self, written: list[PersistItem], entries: list[Entry]) -> None:
        """Advance the stream past durable entries, run the after-persist hook for what was
        written (not the events held already) and answer the entries' callers."""
        self.stream.finish([item.stream_ordering for entry in entries for item in entry[0]])
        if written:
            try:
                self.after_persist(written)
            except Exception:
                logger.exception("after-persist hook failed")
        for _items, d in entries:
            d.callback(None)

    def _next(self) -> None:
        self._writing = False
        self._write_next()

    def _refused(self, entry: Entry, error: BaseException | None) -> None:
        """The database refused ``entry``: fail it, forget its rooms, and fail the queued
        entries that were built on top of it."""
        items, d = entry
        rooms = {item.event.room_id for item in items}
        logger.error("writing events %s failed: %s",
                     ", ".join(item.event.event_id for item in items), error)
        for room_id in rooms:
            self.registry.invalidate(room_id)
        doomed = [e for e in self._queue if any(i.event.room_id in rooms for i in e[0])]
        doomed_ids = {id(e) for e in doomed}
        self._queue = [e for e in self._queue if id(e) not in doomed_ids]
        self.stream.finish([item.stream_ordering for item in items])
        refused = EventNotStored(f"The event could not be stored: {error}")
        refused.__cause__ = error
        d.errback(Failure(refused))
        self._lose(doomed)

    def _lose(self, entries: list[Entry]) -> None:
        self.stream.finish([item.stream_ordering for entry in entries for item in entry[0]])
        for _items, d in entries:
            d.errback(BuiltOnLostEvent("The event followed one that could not be stored"))
