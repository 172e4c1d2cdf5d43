"""``/_broker/admin/v1/rooms``: the node's rooms, one room's details, shutting a room down.

``GET /rooms?organisation=&q=&blocked=&from=&limit=`` lists rooms in room ID order
(``organisation``: rooms created by members of its sub-tree; ``q``: part of the room ID, name
or an alias; ``blocked``: ``true`` for the rooms shut down, ``false`` for the others;
``from``: the last room ID of the page before, the answer's ``next_from``).
``POST /rooms/{room_id}/shutdown`` removes at most a batch of local members per call and
says how many remain (see :mod:`broker.admin.rooms`).
"""

from __future__ import annotations

from typing import Any

from broker.admin import permissions
from broker.admin.audit import AuditLog
from broker.admin.rooms import AdminRooms, RoomQuery
from broker.admin_api import ADMIN_PREFIX
from broker.admin_api.calls import AdminEndpoints, page
from broker.http.bodies import JsonObject
from broker.http.endpoint import Access, Call, endpoint

ROOMS = f"{ADMIN_PREFIX}/rooms"
ONE = f"{ROOMS}/(?P<room_id>[^/]+)"
MAX_QUERY = 200


class RoomEndpoints(AdminEndpoints):
    BODY_ACTIONS = {"shutdown": (permissions.ROOMS_SHUTDOWN, "room_id")}

    def __init__(self, rooms: AdminRooms, audit: AuditLog) -> None:
        super().__init__(audit)
        self.rooms = rooms

    @endpoint("GET", ROOMS, access=Access.USER)
    async def list(self, call: Call) -> tuple[int, dict[str, Any]]:
        action = permissions.ROOMS_READ
        limit = await self.query_limit(call, action)
        blocked = await self.query_choice(call, action, "blocked", ("true", "false"))
        query = RoomQuery(call.arg("organisation"),
                          await self.query_text(call, action, "q", MAX_QUERY),
                          call.arg("from") or "", limit,
                          None if blocked is None else blocked == "true")
        return 200, page("rooms", await self.rooms.list_rooms(self.actor(call), query), limit,
                         "room_id")

    @endpoint("GET", ONE, access=Access.USER)
    async def get(self, call: Call, room_id: str) -> tuple[int, dict[str, Any]]:
        return 200, await self.rooms.get(self.actor(call), room_id)

    @endpoint("POST", f"{ONE}/shutdown", access=Access.USER, body=JsonObject,
              body_optional=True)
    async def shutdown(self, call: Call, room_id: str, body: dict[str, Any]
                       ) -> tuple[int, dict[str, Any]]:
        return 200, await self.rooms.shutdown(self.actor(call), room_id, body)
