"""How far each user's devices have confirmed receiving the stream.

A device that asks ``/sync`` with ``since=s<P>_...`` has received everything the node numbered
``<= P`` that concerned it: the answer that handed it the token was received, or the device
would not hold the token.  So the highest ``since`` any device of a user sent is the position
the user is known to have received up to: :meth:`SyncProgress.synced_upto`.

Positions are the node's one stream position (:mod:`broker.sync.tokens`): an event's position
is its ``stream_ordering`` on this node (``unsigned.stream_ordering`` of the stored event), so
"a device of U received event E" is ``synced_upto(U) >= position_of(E)``.  Events from other
servers get a position of this node when they are stored, like local ones.

Everything here is memory on the sync path: :meth:`synced` (called by the sync handler with
each request's ``since``) is a dict lookup and, when the position grew, a call to each
listener; the new positions are written to ``sync_progress`` every ``FLUSH_SECONDS`` in one
transaction (:class:`broker.periodic_writes.PeriodicWrites`) and read back at start, so a
restart keeps them (a crash loses at most the last interval, which the next sync restores).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from broker.periodic_writes import PeriodicWrites
from broker.rooms.live_room import LiveRoom
from storage.sync_progress import SyncProgressStore

logger = logging.getLogger(__name__)

FLUSH_SECONDS = 1.0

Listener = Callable[[str, int], None]


class SyncProgress(PeriodicWrites[dict[str, int]]):
    def __init__(self, store: SyncProgressStore,
                 room_of: Callable[[str], LiveRoom | None]) -> None:
        super().__init__(FLUSH_SECONDS, "sync progress")
        self.store = store
        self._room_of = room_of  # a live room, from memory only (None when not loaded)
        self._upto: dict[str, int] = {}
        self._dirty: dict[str, int] = {}
        self._listeners: list[Listener] = []

    async def load(self) -> None:
        """Read the positions kept (at start, before serving)."""
        for user_id, position in (await self.store.load()).items():
            if position > self._upto.get(user_id, 0):
                self._upto[user_id] = position

    def synced_upto(self, user_id: str) -> int:
        """The highest stream position some device of the user has confirmed receiving; 0 if
        none has."""
        return self._upto.get(user_id, 0)

    def add_listener(self, listener: Listener) -> None:
        """``listener(user_id, position)`` is called, synchronously and on the sync path (so it
        must only touch memory), each time a user's position grows."""
        self._listeners.append(listener)

    def synced(self, user_id: str, since: int) -> None:
        """A device of ``user_id`` asked /sync with a token at ``since``."""
        if since <= self._upto.get(user_id, 0):
            return
        self._upto[user_id] = since
        self._dirty[user_id] = since
        for listener in self._listeners:
            try:
                listener(user_id, since)
            except Exception:  # one listener's fault never fails the sync
                logger.exception("a sync progress listener failed")

    def position_of(self, room_id: str, event_id: str) -> int | None:
        """The stream position of an event among its room's newest events in memory (the
        room's recent window); None when the room or the event is not there (ask the event
        store's ``get_stream_ordering`` then, off the sync path)."""
        room = self._room_of(room_id)
        if room is None:
            return None
        for event in reversed(room.recent):
            if event.event_id == event_id:
                return int(event.unsigned["stream_ordering"])
        return None

    # -- batched writes ------------------------------------------------------------------------
    def pending(self) -> dict[str, int] | None:
        return dict(self._dirty) if self._dirty else None

    async def write(self, pending: dict[str, int]) -> None:
        await self.store.write(pending)

    def written(self, pending: dict[str, int]) -> None:
        for user_id, position in pending.items():
            if self._dirty.get(user_id) == position:
                del self._dirty[user_id]
