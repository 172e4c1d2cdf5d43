"""Serving room history to other servers: event, state, state_ids, event_auth, backfill and
get_missing_events.

A server may read a room only while one of its users is joined to it (a server with only
invited users learns the room from the invite's stripped state); everything else is 403.
Events are served as the history visibility at each event lets the server's users read them,
redacted otherwise (``broker.rooms.visibility.pdus_for_server``); start events of other rooms
are ignored.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from twisted.web.http import Request

from broker.federation_api import FED_V1
from broker.federation_api.authentication import authenticate
from broker.http.errors import MatrixError, forbidden, not_found
from broker.http.parsing import parse_json_body, query_arg, query_args
from broker.http.validation import parse_int_arg
from broker.rooms.live_room import LiveRoom
from broker.rooms.visibility import pdus_for_server
from protocol.events import Event
from protocol.signing import server_name_of

if TYPE_CHECKING:
    from broker.http.server import Router
    from broker.node import Node

MAX_BACKFILL = 100
MAX_MISSING = 20


def register_servlets(node: Node, router: Router) -> None:
    events_store = node.stores.events

    async def room_for(origin: str, room_id: str) -> LiveRoom:
        room = await node.rooms.registry.get(room_id)
        if room is None:
            raise not_found(f"Unknown room {room_id}")
        if not any(server_name_of(u) == origin for u in room.members_with("join")):
            raise forbidden(f"{origin} has no user in {room_id}")
        return room

    async def state_at(room: LiveRoom, event_id: str) -> tuple[list[Event], list[Event]]:
        """(state before the event, auth chain of that state and of the event)."""
        found = await events_store.get_events([event_id])
        event = found.get(event_id)
        if event is None or event.room_id != room.room_id:
            raise not_found("Event not found")
        after = await node.stores.state.get_state_ids_at_event(event_id)
        if after is None:
            raise not_found("We hold no state at that event")
        key = (event.type, event.state_key or "")
        if event.is_state() and after.get(key) == event_id:
            previous = event.unsigned.get("replaces_state")
            after = {k: v for k, v in after.items() if k != key}
            if isinstance(previous, str):
                after[key] = previous
        chain = await node.remote_events.state.load_with_auth_chains(
            set(after.values()) | {event_id})
        state = [chain[eid] for eid in after.values() if eid in chain]
        state_ids = set(after.values()) | {event_id}
        return state, [e for eid, e in chain.items() if eid not in state_ids]

    async def get_event(request: Request, event_id: str) -> tuple[int, Any]:
        origin = await authenticate(node, request)
        event = (await events_store.get_events([event_id])).get(event_id)
        if event is None:
            raise not_found("Event not found")
        room = await room_for(origin, event.room_id)
        return 200, {"origin": node.server_name, "origin_server_ts": node.clock.time_ms(),
                     "pdus": await pdus_for_server(node, room, origin, [event])}

    async def get_state(request: Request, room_id: str) -> tuple[int, Any]:
        origin = await authenticate(node, request)
        room = await room_for(origin, room_id)
        state, chain = await state_at(room, query_arg(request, "event_id") or "")
        return 200, {"pdus": [e.pdu for e in state], "auth_chain": [e.pdu for e in chain]}

    async def get_state_ids(request: Request, room_id: str) -> tuple[int, Any]:
        origin = await authenticate(node, request)
        room = await room_for(origin, room_id)
        state, chain = await state_at(room, query_arg(request, "event_id") or "")
        return 200, {"pdu_ids": [e.event_id for e in state],
                     "auth_chain_ids": [e.event_id for e in chain]}

    async def event_auth(request: Request, room_id: str, event_id: str) -> tuple[int, Any]:
        origin = await authenticate(node, request)
        await room_for(origin, room_id)
        event = (await events_store.get_events([event_id])).get(event_id)
        if event is None or event.room_id != room_id:
            raise not_found("Event not found")
        chain = await node.remote_events.state.load_with_auth_chains(set(event.auth_event_ids))
        return 200, {"auth_chain": [e.pdu for e in chain.values()]}

    async def room_events(room_id: str, event_ids: list[str]) -> list[Event]:
        """The events of ``room_id`` among ``event_ids`` (those of other rooms are ignored)."""
        found = await events_store.get_events(event_ids)
        return [e for e in found.values() if e.room_id == room_id]

    async def walk_back(room_id: str, start: list[Event], stop: set[str], limit: int,
                        ) -> list[Event]:
        """Events of the room reachable backwards through prev_events from ``start``
        (excluded), not going past ``stop``, newest first by depth."""
        seen: set[str] = {e.event_id for e in start} | stop
        current, found = start, list[Event]()
        while current and len(found) < limit:
            prev_ids = [p for e in current for p in e.prev_event_ids if p not in seen]
            seen.update(prev_ids)
            current = await room_events(room_id, list(dict.fromkeys(prev_ids)))
            found.extend(current)
        found.sort(key=lambda e: e.depth, reverse=True)
        return found[:limit]

    async def backfill(request: Request, room_id: str) -> tuple[int, Any]:
        origin = await authenticate(node, request)
        room = await room_for(origin, room_id)
        limit = parse_int_arg(query_arg(request, "limit"), "limit", 10, maximum=MAX_BACKFILL)
        start = await room_events(room_id, query_args(request, "v"))
        events = (start + await walk_back(room_id, start, set(), limit))[:limit]
        return 200, {"origin": node.server_name, "origin_server_ts": node.clock.time_ms(),
                     "pdus": await pdus_for_server(node, room, origin, events)}

    async def missing_events(request: Request, room_id: str) -> tuple[int, Any]:
        origin = await authenticate(node, request)
        room = await room_for(origin, room_id)
        body = parse_json_body(request)
        earliest = body.get("earliest_events") or []
        latest = body.get("latest_events") or []
        limit = body.get("limit", 10)
        if not isinstance(earliest, list) or not isinstance(latest, list) or \
                not isinstance(limit, int) or isinstance(limit, bool):
            raise MatrixError(400, "M_BAD_JSON", "Malformed get_missing_events request")
        start = await room_events(room_id, [str(e) for e in latest])
        events = await walk_back(room_id, start, {str(e) for e in earliest},
                                 max(0, min(limit, MAX_MISSING)))
        events.sort(key=lambda e: e.depth)
        return 200, {"events": await pdus_for_server(node, room, origin, events)}

    room = "(?P<room_id>[^/]+)"
    router.register("GET", f"{FED_V1}/event/(?P<event_id>[^/]+)", get_event)
    router.register("GET", f"{FED_V1}/state/{room}", get_state)
    router.register("GET", f"{FED_V1}/state_ids/{room}", get_state_ids)
    router.register("GET", f"{FED_V1}/event_auth/{room}/(?P<event_id>[^/]+)", event_auth)
    router.register("GET", f"{FED_V1}/backfill/{room}", backfill)
    router.register("POST", f"{FED_V1}/get_missing_events/{room}", missing_events)
