"""``GET /_matrix/client/v1/rooms/{roomId}/relations/{eventId}[/{relType}[/{eventType}]]``
and ``GET /_matrix/client/v1/rooms/{roomId}/threads``."""

from __future__ import annotations

from typing import Any

from broker.client_api import CLIENT_V1_PREFIX as V1_PREFIX
from broker.errors import InvalidInput
from broker.http.endpoint import Access, Call, Endpoints, endpoint
from broker.http.validation import parse_int_arg, token_arg
from broker.services.relations import Relations, RelationsQuery

ROOM = "(?P<room_id>[^/]+)"
EVENT = "(?P<event_id>[^/]+)"
MAX_LIMIT = 1000


def _query(call: Call, event_id: str, rel_type: str | None, event_type: str | None
           ) -> RelationsQuery:
    direction = call.arg("dir", "b")
    if direction not in ("b", "f"):
        raise InvalidInput("'dir' must be 'b' or 'f'")
    recurse = call.arg("recurse", "false")
    if recurse not in ("true", "false"):
        raise InvalidInput("'recurse' must be 'true' or 'false'")
    from_raw, to_raw = call.arg("from"), call.arg("to")
    return RelationsQuery(
        event_id, rel_type, event_type, direction == "b",
        parse_int_arg(call.arg("limit"), "limit", 50, minimum=1, maximum=MAX_LIMIT),
        token_arg(from_raw, "from").stream if from_raw else None,
        token_arg(to_raw, "to").stream if to_raw else None, recurse == "true")


class RelationEndpoints(Endpoints):
    def __init__(self, relations: Relations) -> None:
        self.relations = relations

    async def _answer(self, call: Call, room_id: str, event_id: str, rel_type: str | None,
                      event_type: str | None) -> tuple[int, dict[str, Any]]:
        history = self.relations.history
        reader = await history.reader(call.user.user_id, call.user.device_id, room_id)
        return 200, await self.relations.relations(
            reader, _query(call, event_id, rel_type, event_type))

    @endpoint("GET", f"{V1_PREFIX}/rooms/{ROOM}/relations/{EVENT}", access=Access.USER)
    async def all_relations(self, call: Call, room_id: str, event_id: str
                            ) -> tuple[int, dict[str, Any]]:
        return await self._answer(call, room_id, event_id, None, None)

    @endpoint("GET", f"{V1_PREFIX}/rooms/{ROOM}/relations/{EVENT}/(?P<rel_type>[^/]+)",
              access=Access.USER)
    async def relations_of_type(self, call: Call, room_id: str, event_id: str, rel_type: str
                                ) -> tuple[int, dict[str, Any]]:
        return await self._answer(call, room_id, event_id, rel_type, None)

    @endpoint("GET", f"{V1_PREFIX}/rooms/{ROOM}/relations/{EVENT}/(?P<rel_type>[^/]+)"
              "/(?P<event_type>[^/]+)", access=Access.USER)
    async def relations_of_type_and_event_type(
            self, call: Call, room_id: str, event_id: str, rel_type: str, event_type: str
    ) -> tuple[int, dict[str, Any]]:
        return await self._answer(call, room_id, event_id, rel_type, event_type)

    @endpoint("GET", f"{V1_PREFIX}/rooms/{ROOM}/threads", access=Access.USER)
    async def threads(self, call: Call, room_id: str) -> tuple[int, dict[str, Any]]:
        include = call.arg("include", "all")
        if include not in ("all", "participated"):
            raise InvalidInput("'include' must be 'all' or 'participated'")
        limit = parse_int_arg(call.arg("limit"), "limit", 50, minimum=1, maximum=MAX_LIMIT)
        from_raw = call.arg("from")
        start = token_arg(from_raw, "from").stream if from_raw else None
        reader = await self.relations.history.reader(call.user.user_id, call.user.device_id,
                                                     room_id)
        return 200, await self.relations.threads(reader, include == "all", start, limit)
