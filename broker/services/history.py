"""A room's history as a user may read it: pages of /messages (both ways) and the context of
one event.  Positions are stream positions; a user who has left reads up to their leave.  When
a backwards page runs past the oldest event held, the backfiller (None without federation)
asks a resident server for older history."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from broker.errors import NotFound
from broker.filtering import EventFilter
from broker.retention import Retention
from broker.rooms.backfill import Backfiller
from broker.rooms.client_events import ClientEvents
from broker.rooms.live_room import LiveRoom
from broker.rooms.service import Rooms
from broker.rooms.visibility import Visibility, restricts_history
from broker.sync.tokens import pagination_token
from protocol.events import Event
from storage.events import EventStore
from storage.state import StateStore

# Filtered-out events are skipped; we read at most this many pages to fill one response.
MAX_PAGES = 5
# Before every position: backfilled history has negative positions.
EARLIEST = -(2**62)


def _stream(event: Event) -> int:
    return int(event.unsigned["stream_ordering"])


def _allowed(flt: EventFilter, event: Event) -> bool:
    return flt.allows(event.type, event.sender, "url" in event.content, event.room_id,
                      event.content)


@dataclass
class PageQuery:
    backwards: bool
    limit: int
    flt: EventFilter
    start: int | None  # the 'from' position, None from the edge
    to: int | None


@dataclass
class Reader:
    """Who reads which room, and the newest position they may read."""

    user_id: str
    device_id: str
    room: LiveRoom
    bound: int

    @property
    def device(self) -> tuple[str, str]:
        return self.user_id, self.device_id


class History:
    def __init__(self, rooms: Rooms, events: EventStore, state: StateStore,
                 visibility: Visibility, client_events: ClientEvents,
                 backfiller: Backfiller | None, retention: Retention) -> None:
        self.rooms = rooms
        self.retention = retention
        self.events = events
        self.state = state
        self.visibility = visibility
        self.client_events = client_events
        self.backfiller = backfiller

    async def reader(self, user_id: str, device_id: str, room_id: str) -> Reader:
        """NotFound for an unknown room, Forbidden for a user who was never in it."""
        room = await self.rooms.get_room(room_id)
        return Reader(user_id, device_id, room,
                      await self.visibility.readable_until(room, user_id))

    async def _read_page(self, room: LiveRoom, q: PageQuery, start: int, bound: int,
                         limit: int) -> tuple[list[Event], int, bool]:
        """Up to ``limit`` events passing the filter (and not expired) from ``start``;
        (events, position after them, whether the room has no more in that direction)."""
        room_id = room.room_id
        chunk: list[Event] = []
        position = start
        since = self.retention.sent_since(room.state)  # expired events: left to the database
        for _ in range(MAX_PAGES):
            if q.backwards:
                page = await self.events.get_room_events(
                    room_id, after=q.to, up_to=position, limit=limit, backwards=True,
                    sent_since=since)
            else:
                upper = min(bound, q.to) if q.to is not None else bound
                page = await self.events.get_room_events(
                    room_id, after=position, up_to=upper, limit=limit, backwards=False,
                    sent_since=since)
            if page:
                position = _stream(page[-1]) - 1 if q.backwards else _stream(page[-1])
            chunk.extend(e for e in self.retention.visible(room.state, page)
                         if _allowed(q.flt, e))
            if len(page) < limit:
                return chunk, position, True
            if len(chunk) >= limit:
                break
        return chunk, position, False

    async def _fill(self, reader: Reader, q: PageQuery, start: int
                    ) -> tuple[list[Event], int, bool]:
        chunk, position, exhausted = await self._read_page(reader.room, q, start, reader.bound,
                                                           q.limit)
        if q.backwards and exhausted and q.to is None:
            # Past the oldest event we hold: ask a resident server for older history.
            wanted = q.limit - len(chunk)
            if self.backfiller is not None and wanted > 0 and \
                    await self.backfiller.backfill(reader.room, wanted):
                more, position, exhausted = await self._read_page(
                    reader.room, q, position, reader.bound, wanted)
                chunk.extend(more)
        return chunk[:q.limit], position, exhausted

    async def messages(self, reader: Reader, q: PageQuery) -> dict[str, Any]:
        if q.start is not None:
            start = min(q.start, reader.bound)
        else:
            start = reader.bound if q.backwards else EARLIEST
        chunk, position, exhausted = await self._fill(reader, q, start)
        if chunk:
            position = _stream(chunk[-1]) - 1 if q.backwards else _stream(chunk[-1])
        room = reader.room
        if restricts_history(room):
            visible = await self.visibility.history_filter(room.room_id, reader.user_id)
            chunk = visible.filter(chunk, reader.user_id)
        body: dict[str, Any] = {
            "chunk": await self.client_events.serialize(chunk, device=reader.device,
                                                        aggregate=True),
            "start": pagination_token(start),
        }
        if not exhausted or len(chunk) == q.limit:
            body["end"] = pagination_token(position)
        if q.flt.lazy_load_members and chunk:
            senders = {e.sender for e in chunk}
            members = [room.state[("m.room.member", s)] for s in sorted(senders)
                       if ("m.room.member", s) in room.state]
            body["state"] = await self.client_events.serialize(members)
        return body

    async def _around(self, reader: Reader, event: Event, limit: int, flt: EventFilter
                      ) -> tuple[list[Event], list[Event]]:
        room_id, position = reader.room.room_id, _stream(event)
        before_count = limit // 2
        before = [e for e in await self.events.get_room_events(
            room_id, after=None, up_to=position - 1, limit=before_count, backwards=True)
            if _allowed(flt, e)]
        after = [e for e in await self.events.get_room_events(
            room_id, after=position, up_to=reader.bound, limit=limit - before_count,
            backwards=False) if _allowed(flt, e)]
        before = self.retention.visible(reader.room.state, before)
        after = self.retention.visible(reader.room.state, after)
        if restricts_history(reader.room):
            visible = await self.visibility.history_filter(room_id, reader.user_id)
            if not visible.allows(event, reader.user_id):
                raise NotFound("Event not found")
            before = visible.filter(before, reader.user_id)
            after = visible.filter(after, reader.user_id)
        return before, after

    async def _state_at(self, last: Event, senders: set[str] | None) -> list[Event]:
        state_ids = await self.state.get_state_ids_at_event(last.event_id) or {}
        state_events = list((await self.events.get_events(state_ids.values())).values())
        if senders is not None:
            state_events = [e for e in state_events
                            if e.type != "m.room.member" or e.state_key in senders]
        return state_events

    async def context(self, reader: Reader, event_id: str, limit: int, flt: EventFilter
                      ) -> dict[str, Any]:
        event = (await self.events.get_events([event_id])).get(event_id)
        if event is None or event.room_id != reader.room.room_id or \
                _stream(event) > reader.bound or \
                self.retention.expired(reader.room.state, event):
            raise NotFound("Event not found")
        position = _stream(event)
        before, after = await self._around(reader, event, limit, flt)
        senders = ({e.sender for e in [*before, event, *after]}
                   if flt.lazy_load_members else None)
        state_events = await self._state_at(after[-1] if after else event, senders)
        serialized = await self.client_events.serialize(
            [*before, event, *after, *state_events], device=reader.device, aggregate=True)
        n_before, n_after = len(before), len(after)
        return {
            "events_before": serialized[:n_before],
            "event": serialized[n_before],
            "events_after": serialized[n_before + 1:n_before + 1 + n_after],
            "state": serialized[n_before + 1 + n_after:],
            "start": pagination_token((_stream(before[-1]) if before else position) - 1),
            "end": pagination_token(_stream(after[-1]) if after else position),
        }
