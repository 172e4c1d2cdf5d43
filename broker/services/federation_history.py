"""Room history for other servers: single events, the state at an event with its auth chain,
an event's auth chain, backfill and missing events.

A server may read a room only while one of its users is joined to it (a server with only
invited users learns the room from the invite's stripped state); everything else is Forbidden.
Events are served as the history visibility at each event lets the server's users read them,
redacted otherwise (``visible_pdus``); start events of other rooms are ignored.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from broker.errors import MalformedContent, NotFound
from broker.rooms.live_room import LiveRoom, RoomRegistry
from broker.rooms.state_loader import StateLoader
from broker.services.federation_rooms import readable_room
from protocol.events import Event
from storage.events import EventStore
from storage.state import StateStore

MAX_BACKFILL = 100
MAX_MISSING = 20

# The events as a server may receive them: (room, server name, events) -> PDUs.
VisiblePdus = Callable[[LiveRoom, str, list[Event]], Awaitable[list[dict[str, Any]]]]


class RoomHistory:
    def __init__(self, registry: RoomRegistry, events: EventStore, state_store: StateStore,
                 state: StateLoader, visible_pdus: VisiblePdus) -> None:
        self.registry = registry
        self.events = events
        self.state_store = state_store
        self.state = state
        self.visible_pdus = visible_pdus

    async def room_for(self, origin: str, room_id: str) -> LiveRoom:
        """The room, if ``origin`` has a joined user in it (NotFound, Forbidden otherwise)."""
        return readable_room(await self.registry.get(room_id), origin, room_id)

    async def event(self, origin: str, event_id: str) -> list[dict[str, Any]]:
        """One event as ``origin`` may read it (in a list: the transaction's ``pdus``)."""
        event = (await self.events.get_events([event_id])).get(event_id)
        if event is None:
            raise NotFound("Event not found")
        room = await self.room_for(origin, event.room_id)
        return await self.visible_pdus(room, origin, [event])

    async def state_at(self, room: LiveRoom, event_id: str) -> tuple[list[Event], list[Event]]:
        """(state before the event, auth chain of that state and of the event)."""
        event = (await self.events.get_events([event_id])).get(event_id)
        if event is None or event.room_id != room.room_id:
            raise NotFound("Event not found")
        after = await self.state_store.get_state_ids_at_event(event_id)
        if after is None:
            raise NotFound("We hold no state at that event")
        key = (event.type, event.state_key or "")
        if event.is_state() and after.get(key) == event_id:
            previous = event.unsigned.get("replaces_state")
            after = {k: v for k, v in after.items() if k != key}
            if isinstance(previous, str):
                after[key] = previous
        chain = await self.state.load_with_auth_chains(set(after.values()) | {event_id})
        state = [chain[eid] for eid in after.values() if eid in chain]
        state_ids = set(after.values()) | {event_id}
        return state, [e for eid, e in chain.items() if eid not in state_ids]

    async def auth_chain(self, room_id: str, event_id: str) -> list[Event]:
        event = (await self.events.get_events([event_id])).get(event_id)
        if event is None or event.room_id != room_id:
            raise NotFound("Event not found")
        chain = await self.state.load_with_auth_chains(set(event.auth_event_ids))
        return list(chain.values())

    async def backfill(self, room: LiveRoom, origin: str, start_ids: list[str],
                       limit: int) -> list[dict[str, Any]]:
        """The start events and those before them, newest first, at most ``limit``."""
        start = await self._room_events(room.room_id, start_ids)
        events = (start + await self._walk_back(room.room_id, start, set(), limit))[:limit]
        return await self.visible_pdus(room, origin, events)

    async def missing_events(self, room: LiveRoom, origin: str,
                             body: dict[str, Any]) -> list[dict[str, Any]]:
        """The events between ``earliest_events`` and ``latest_events``, oldest first."""
        earliest = body.get("earliest_events") or []
        latest = body.get("latest_events") or []
        limit = body.get("limit", 10)
        if not isinstance(earliest, list) or not isinstance(latest, list) or \
                not isinstance(limit, int) or isinstance(limit, bool):
            raise MalformedContent("Malformed get_missing_events request")
        start = await self._room_events(room.room_id, [str(e) for e in latest])
        events = await self._walk_back(room.room_id, start, {str(e) for e in earliest},
                                       max(0, min(limit, MAX_MISSING)))
        events.sort(key=lambda e: e.depth)
        return await self.visible_pdus(room, origin, events)

    async def _room_events(self, room_id: str, event_ids: list[str]) -> list[Event]:
        """The events of ``room_id`` among ``event_ids`` (those of other rooms are ignored)."""
        found = await self.events.get_events(event_ids)
        return [e for e in found.values() if e.room_id == room_id]

    async def _walk_back(self, room_id: str, start: list[Event], stop: set[str], limit: int,
                         ) -> list[Event]:
        """Events of the room reachable backwards through prev_events from ``start``
        (excluded), not going past ``stop``, newest first by depth."""
        seen: set[str] = {e.event_id for e in start} | stop
        current, found = start, list[Event]()
        while current and len(found) < limit:
            prev_ids = [p for e in current for p in e.prev_event_ids if p not in seen]
            seen.update(prev_ids)
            current = await self._room_events(room_id, list(dict.fromkeys(prev_ids)))
            found.extend(current)
        found.sort(key=lambda e: e.depth, reverse=True)
        return found[:limit]
