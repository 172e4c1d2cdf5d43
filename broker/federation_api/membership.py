"""Joining, knocking and leaving through a resident server: make_join / send_join (v2),
make_knock / send_knock (v1) and make_leave / send_leave (v2), as the room's resident server
answers them (the rules are those
of :mod:`broker.services.federation_rooms`)."""

from __future__ import annotations

from typing import Any

from broker.federation_api import FED_V1, FED_V2
from broker.http.bodies import JsonObject
from broker.http.endpoint import Access, Call, Endpoints, endpoint
from broker.http.parsing import query_args
from broker.services.federation_rooms import FederationMembership

ROOM = "(?P<room_id>[^/]+)"
USER = "(?P<user_id>[^/]+)"
EVENT = "(?P<event_id>[^/]+)"


class MembershipEndpoints(Endpoints):
    def __init__(self, membership: FederationMembership) -> None:
        self.membership = membership

    @endpoint("GET", f"{FED_V1}/make_join/{ROOM}/{USER}", access=Access.SERVER)
    async def make_join(self, call: Call, room_id: str, user_id: str) -> tuple[int, Any]:
        room = await self.membership.template_room(call.server, room_id, user_id)
        self.membership.check_version(room, query_args(call.request, "ver") or ["1"])
        event = await self.membership.template(call.server, room, user_id, "join")
        return 200, {"event": event, "room_version": room.room_version.identifier}

    @endpoint("GET", f"{FED_V1}/make_knock/{ROOM}/{USER}", access=Access.SERVER)
    async def make_knock(self, call: Call, room_id: str, user_id: str) -> tuple[int, Any]:
        room = await self.membership.template_room(call.server, room_id, user_id)
        self.membership.check_version(room, query_args(call.request, "ver"))
        event = await self.membership.template(call.server, room, user_id, "knock")
        return 200, {"event": event, "room_version": room.room_version.identifier}

    @endpoint("PUT", f"{FED_V1}/send_knock/{ROOM}/{EVENT}", access=Access.SERVER,
              body=JsonObject)
    async def send_knock(self, call: Call, room_id: str, event_id: str, body: dict[str, Any]
                         ) -> tuple[int, Any]:
        room = await self.membership.room(room_id)
        await self.membership.accept(call.server, room, event_id, body, "knock")
        return 200, self.membership.knock_answer(room)

    @endpoint("GET", f"{FED_V1}/make_leave/{ROOM}/{USER}", access=Access.SERVER)
    async def make_leave(self, call: Call, room_id: str, user_id: str) -> tuple[int, Any]:
        room = await self.membership.template_room(call.server, room_id, user_id)
        event = await self.membership.template(call.server, room, user_id, "leave")
        return 200, {"event": event, "room_version": room.room_version.identifier}

    @endpoint("PUT", f"{FED_V2}/send_join/{ROOM}/{EVENT}", access=Access.SERVER,
              body=JsonObject)
    async def send_join(self, call: Call, room_id: str, event_id: str, body: dict[str, Any]
                        ) -> tuple[int, Any]:
        room = await self.membership.room(room_id)
        state_before, event = await self.membership.accept(
            call.server, room, event_id, body, "join")
        return 200, await self.membership.join_answer(room, state_before, event)

    @endpoint("PUT", f"{FED_V2}/send_leave/{ROOM}/{EVENT}", access=Access.SERVER,
              body=JsonObject)
    async def send_leave(self, call: Call, room_id: str, event_id: str, body: dict[str, Any]
                         ) -> tuple[int, Any]:
        room = await self.membership.room(room_id)
        await self.membership.accept(call.server, room, event_id, body, "leave")
        return 200, {}
