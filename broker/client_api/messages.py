"""History: ``GET /rooms/{roomId}/messages`` (pagination both ways) and
``GET /rooms/{roomId}/context/{eventId}``.

Tokens are stream positions (see broker/sync/tokens.py): paginating backwards from P returns
events at or before P, newest first; forwards from P returns events after P, oldest first.
A user who has left sees history only up to their leave.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from twisted.web.http import Request

from broker.client_api import CLIENT_PREFIX
from broker.filtering import EventFilter, parse_room_event_filter
from broker.http.errors import bad_param, not_found
from broker.http.parsing import query_arg
from broker.http.validation import parse_int_arg, token_arg
from broker.rooms.client_events import serialize_events
from broker.rooms.live_room import LiveRoom
from broker.rooms.visibility import history_filter, readable_until, restricts_history
from broker.sync.tokens import pagination_token
from protocol.events import Event

if TYPE_CHECKING:
    from broker.auth import Requester
    from broker.http.server import Router
    from broker.node import Node

ROOM = "(?P<room_id>[^/]+)"
MAX_LIMIT = 1000
# Filtered-out events are skipped; we read at most this many pages to fill one response.
MAX_PAGES = 5
# Before every position: backfilled history has negative positions.
EARLIEST = -(2**62)


def _stream(event: Event) -> int:
    return int(event.unsigned["stream_ordering"])


def _allowed(flt: EventFilter, event: Event) -> bool:
    return flt.allows(event.type, event.sender, "url" in event.content, event.room_id)


def register_servlets(node: Node, router: Router) -> None:
    async def lazy_members(room: LiveRoom, events: list[Event],
                           requester: Requester) -> list[dict[str, Any]]:
        senders = {e.sender for e in events}
        members = [room.state[("m.room.member", s)] for s in sorted(senders)
                   if ("m.room.member", s) in room.state]
        return await serialize_events(node, members)

    async def read_page(room_id: str, flt: EventFilter, backwards: bool, start: int,
                        to: int | None, bound: int, limit: int,
                        ) -> tuple[list[Event], int, bool]:
        """Up to ``limit`` events passing the filter from ``start``; (events, position after
        them, whether the room has no more in that direction)."""
        chunk: list[Event] = []
        position = start
        for _ in range(MAX_PAGES):
            if backwards:
                page = await node.stores.events.get_room_events(
                    room_id, after=to, up_to=position, limit=limit, backwards=True)
            else:
                upper = min(bound, to) if to is not None else bound
                page = await node.stores.events.get_room_events(
                    room_id, after=position, up_to=upper, limit=limit, backwards=False)
            if page:
                position = _stream(page[-1]) - 1 if backwards else _stream(page[-1])
            chunk.extend(e for e in page if _allowed(flt, e))
            if len(page) < limit:
                return chunk, position, True
            if len(chunk) >= limit:
                break
        return chunk, position, False

    async def messages(request: Request, room_id: str) -> tuple[int, dict[str, Any]]:
        requester = await node.auth.get_requester(request)
        room = await node.rooms.get_room(room_id)
        bound = await readable_until(node, room, requester.user_id)
        direction = query_arg(request, "dir", "b")
        if direction not in ("b", "f"):
            raise bad_param("'dir' must be 'b' or 'f'")
        limit = parse_int_arg(query_arg(request, "limit"), "limit", 10, maximum=MAX_LIMIT)
        from_raw = query_arg(request, "from")
        to_raw = query_arg(request, "to")
        flt = parse_room_event_filter(query_arg(request, "filter"))
        limit = flt.limit_or(limit, MAX_LIMIT)
        backwards = direction == "b"
        if from_raw:
            start = min(token_arg(from_raw, "from").stream, bound)
        else:
            start = bound if backwards else EARLIEST
        to = token_arg(to_raw, "to").stream if to_raw else None

        chunk, position, exhausted = await read_page(room_id, flt, backwards, start, to, bound,
                                                     limit)
        if backwards and exhausted and to is None:
            # Past the oldest event we hold: ask a resident server for older history.
            backfiller = getattr(node, "backfiller", None)
            wanted = limit - len(chunk)
            if backfiller is not None and wanted > 0 and await backfiller.backfill(room, wanted):
                more, position, exhausted = await read_page(
                    room_id, flt, backwards, position, to, bound, wanted)
                chunk.extend(more)
        chunk = chunk[:limit]
        if chunk:
            position = _stream(chunk[-1]) - 1 if backwards else _stream(chunk[-1])
        if restricts_history(room):
            visible = await history_filter(node, room_id, requester.user_id)
            chunk = visible.filter(chunk, requester.user_id)
        device = (requester.user_id, requester.device_id)
        body: dict[str, Any] = {
            "chunk": await serialize_events(node, chunk, device=device),
            "start": pagination_token(start),
        }
        if not exhausted or len(chunk) == limit:
            body["end"] = pagination_token(position)
        if flt.lazy_load_members and chunk:
            body["state"] = await lazy_members(room, chunk, requester)
        return 200, body

    async def context(request: Request, room_id: str, event_id: str) -> tuple[int, Any]:
        requester = await node.auth.get_requester(request)
        room = await node.rooms.get_room(room_id)
        bound = await readable_until(node, room, requester.user_id)
        limit = parse_int_arg(query_arg(request, "limit"), "limit", 10, maximum=100)
        flt = parse_room_event_filter(query_arg(request, "filter"))
        found = await node.stores.events.get_events([event_id])
        event = found.get(event_id)
        if event is None or event.room_id != room_id or _stream(event) > bound:
            raise not_found("Event not found")
        position = _stream(event)
        before_count = limit // 2
        after_count = limit - before_count
        before = [e for e in await node.stores.events.get_room_events(
            room_id, after=None, up_to=position - 1, limit=before_count, backwards=True)
            if _allowed(flt, e)]
        after = [e for e in await node.stores.events.get_room_events(
            room_id, after=position, up_to=bound, limit=after_count, backwards=False)
            if _allowed(flt, e)]
        if restricts_history(room):
            visible = await history_filter(node, room_id, requester.user_id)
            if not visible.allows(event, requester.user_id):
                raise not_found("Event not found")
            before = visible.filter(before, requester.user_id)
            after = visible.filter(after, requester.user_id)
        last = after[-1] if after else event
        state_ids = await node.stores.state.get_state_ids_at_event(last.event_id) or {}
        state_events = list((await node.stores.events.get_events(state_ids.values())).values())
        if flt.lazy_load_members:
            senders = {e.sender for e in [*before, event, *after]}
            state_events = [e for e in state_events
                            if e.type != "m.room.member" or e.state_key in senders]
        device = (requester.user_id, requester.device_id)
        serialized = await serialize_events(node, [*before, event, *after, *state_events],
                                            device=device)
        n_before, n_after = len(before), len(after)
        return 200, {
            "events_before": serialized[:n_before],
            "event": serialized[n_before],
            "events_after": serialized[n_before + 1:n_before + 1 + n_after],
            "state": serialized[n_before + 1 + n_after:],
            "start": pagination_token((_stream(before[-1]) if before else position) - 1),
            "end": pagination_token(_stream(after[-1]) if after else position),
        }

    router.register("GET", f"{CLIENT_PREFIX}/rooms/{ROOM}/messages", messages)
    router.register("GET", f"{CLIENT_PREFIX}/rooms/{ROOM}/context/(?P<event_id>[^/]+)", context)
