"""Serving room history to other servers: event, state, state_ids, event_auth, backfill and
get_missing_events (the rules are those of :mod:`broker.services.federation_history`)."""

from __future__ import annotations

from typing import Any

from broker.federation_api import FED_V1
from broker.http.bodies import JsonObject
from broker.http.endpoint import Access, Call, Endpoints, endpoint
from broker.http.parsing import query_args
from broker.http.validation import parse_int_arg
from broker.services.federation_history import MAX_BACKFILL, RoomHistory

ROOM = "(?P<room_id>[^/]+)"
EVENT = "(?P<event_id>[^/]+)"


class RoomHistoryEndpoints(Endpoints):
    def __init__(self, history: RoomHistory, server_name: str, clock: Any) -> None:
        self.history = history
        self.server_name = server_name
        self.clock = clock

    def _pdus(self, pdus: list[dict[str, Any]]) -> dict[str, Any]:
        return {"origin": self.server_name, "origin_server_ts": self.clock.time_ms(),
                "pdus": pdus}

    @endpoint("GET", f"{FED_V1}/event/{EVENT}", access=Access.SERVER)
    async def get_event(self, call: Call, event_id: str) -> tuple[int, Any]:
        return 200, self._pdus(await self.history.event(call.server, event_id))

    @endpoint("GET", f"{FED_V1}/state/{ROOM}", access=Access.SERVER)
    async def get_state(self, call: Call, room_id: str) -> tuple[int, Any]:
        room = await self.history.room_for(call.server, room_id)
        state, chain = await self.history.state_at(room, call.arg("event_id") or "")
        return 200, {"pdus": [e.pdu for e in state], "auth_chain": [e.pdu for e in chain]}

    @endpoint("GET", f"{FED_V1}/state_ids/{ROOM}", access=Access.SERVER)
    async def get_state_ids(self, call: Call, room_id: str) -> tuple[int, Any]:
        room = await self.history.room_for(call.server, room_id)
        state, chain = await self.history.state_at(room, call.arg("event_id") or "")
        return 200, {"pdu_ids": [e.event_id for e in state],
                     "auth_chain_ids": [e.event_id for e in chain]}

    @endpoint("GET", f"{FED_V1}/event_auth/{ROOM}/{EVENT}", access=Access.SERVER)
    async def event_auth(self, call: Call, room_id: str, event_id: str) -> tuple[int, Any]:
        await self.history.room_for(call.server, room_id)
        chain = await self.history.auth_chain(room_id, event_id)
        return 200, {"auth_chain": [e.pdu for e in chain]}

    @endpoint("GET", f"{FED_V1}/backfill/{ROOM}", access=Access.SERVER)
    async def backfill(self, call: Call, room_id: str) -> tuple[int, Any]:
        room = await self.history.room_for(call.server, room_id)
        limit = parse_int_arg(call.arg("limit"), "limit", 10, maximum=MAX_BACKFILL)
        pdus = await self.history.backfill(room, call.server, query_args(call.request, "v"),
                                           limit)
        return 200, self._pdus(pdus)

    @endpoint("POST", f"{FED_V1}/get_missing_events/{ROOM}", access=Access.SERVER,
              body=JsonObject)
    async def missing_events(self, call: Call, room_id: str, body: dict[str, Any]
                             ) -> tuple[int, Any]:
        room = await self.history.room_for(call.server, room_id)
        events = await self.history.missing_events(room, call.server, body)
        return 200, {"events": events}
