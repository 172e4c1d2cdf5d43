"""One event per send transaction ID: (user, device, room, txn_id).

The key is reserved the moment a request arrives, before anything is awaited, so there is no
check-then-act: concurrent repeats share the first request's answer (or its failure, after which
a later repeat tries afresh).  The first request looks for the key in ``event_txn_ids`` (written in
the same transaction as its event), so a repeat after the answer was given, after a restart too,
gets the stored event.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from twisted.internet import defer

from broker.deferreds import observe
from protocol.events import Event
from storage.events import EventStore

SendKey = tuple[str, str, str, str]  # (user_id, device_id, room_id, txn_id)


class SendTransactions:
    def __init__(self, events: EventStore) -> None:
        self.events = events
        self._pending: dict[SendKey, defer.Deferred[Event]] = {}

    def once(self, key: SendKey, send: Callable[[], Awaitable[Event]]) -> defer.Deferred[Event]:
        """The event of ``key``: the stored one, the one a concurrent request is making, or the
        one ``send`` makes."""
        pending = self._pending.get(key)
        if pending is None:
            pending = defer.ensureDeferred(self._stored_or_new(key, send))
            self._pending[key] = pending
            pending.addBoth(self._done, key)
        return observe(pending)

    def _done(self, result: Any, key: SendKey) -> Any:
        self._pending.pop(key, None)
        return result

    async def _stored_or_new(self, key: SendKey, send: Callable[[], Awaitable[Event]]
                             ) -> Event:
        existing = await self.events.get_txn_event_id(*key)
        if existing is not None:
            return (await self.events.get_events([existing]))[existing]
        return await send()
