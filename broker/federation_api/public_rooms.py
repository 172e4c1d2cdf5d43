"""``GET/POST /_matrix/federation/v1/publicRooms``: the rooms this node publishes in its
directory, for users of other servers browsing it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from broker.client_api.directory import MAX_PAGE, PublicRoomsBody, PublicRoomsQuery
from broker.federation_api import FED_V1
from broker.http.endpoint import Access, Call, Endpoints, endpoint
from broker.http.validation import parse_int_arg

# One page of the published rooms (the client directory's listing).
ListPublicRooms = Callable[[PublicRoomsQuery], Awaitable[dict[str, Any]]]


class PublicRoomsEndpoints(Endpoints):
    def __init__(self, list_public_rooms: ListPublicRooms) -> None:
        self.list_public_rooms = list_public_rooms

    @endpoint("GET", f"{FED_V1}/publicRooms", access=Access.SERVER)
    async def public_rooms_get(self, call: Call) -> tuple[int, dict[str, Any]]:
        query = PublicRoomsQuery(
            limit=parse_int_arg(call.arg("limit"), "limit", MAX_PAGE, minimum=1,
                                maximum=MAX_PAGE),
            since=call.arg("since"))
        return 200, await self.list_public_rooms(query)

    @endpoint("POST", f"{FED_V1}/publicRooms", access=Access.SERVER, body=PublicRoomsBody,
              body_optional=True)
    async def public_rooms_post(self, call: Call, body: PublicRoomsBody
                                ) -> tuple[int, dict[str, Any]]:
        return 200, await self.list_public_rooms(body.query())
