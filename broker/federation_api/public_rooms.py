"""``GET/POST /_matrix/federation/v1/publicRooms``: the rooms this node publishes in its
directory, for users of other servers browsing it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from twisted.web.http import Request

from broker.client_api.directory import MAX_PAGE, PublicRoomsQuery, list_public_rooms
from broker.federation_api import FED_V1
from broker.federation_api.authentication import authenticate
from broker.http.parsing import parse_json_body, query_arg
from broker.http.validation import parse_int_arg

if TYPE_CHECKING:
    from broker.http.server import Router
    from broker.node import Node


def register_servlets(node: Node, router: Router) -> None:
    async def public_rooms_get(request: Request) -> tuple[int, dict[str, Any]]:
        await authenticate(node, request)
        query = PublicRoomsQuery(
            limit=parse_int_arg(query_arg(request, "limit"), "limit", MAX_PAGE, minimum=1,
                                maximum=MAX_PAGE),
            since=query_arg(request, "since"))
        return 200, await list_public_rooms(node, query)

    async def public_rooms_post(request: Request) -> tuple[int, dict[str, Any]]:
        await authenticate(node, request)
        query = PublicRoomsQuery.from_body(parse_json_body(request, allow_empty=True))
        return 200, await list_public_rooms(node, query)

    router.register("GET", f"{FED_V1}/publicRooms", public_rooms_get)
    router.register("POST", f"{FED_V1}/publicRooms", public_rooms_post)
