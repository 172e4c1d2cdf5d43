"""Room tags: ``GET /user/{userId}/rooms/{roomId}/tags`` and ``PUT/DELETE .../tags/{tag}``.

Tags are stored as the room's ``m.tag`` account data (``{"tags": {tag: {"order": 0..1}}}``), so
/sync delivers them in the room's ``account_data``; every change takes a stream id.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from twisted.web.http import Request

from broker.client_api import CLIENT_PREFIX
from broker.client_api.account_data import check_room_id, own_user
from broker.http.errors import bad_param, bad_type
from broker.http.server import parse_json_body

if TYPE_CHECKING:
    from broker.http.server import Router
    from broker.node import Node

MAX_TAG_BYTES = 255


def validate_tag(tag: str, body: dict[str, Any]) -> dict[str, Any]:
    """The tag object to store: 400 unless the name fits and ``order`` is a number in 0..1."""
    if not tag or len(tag.encode("utf-8")) > MAX_TAG_BYTES:
        raise bad_param(f"Tag names must be 1 to {MAX_TAG_BYTES} bytes.")
    if "order" in body:
        order = body["order"]
        if isinstance(order, bool) or not isinstance(order, int | float):
            raise bad_type("'order' must be a number.")
        if not 0 <= order <= 1:
            raise bad_param("'order' must be between 0 and 1.")
    return body


def register_servlets(node: Node, router: Router) -> None:
    store = node.stores.account_data
    rooms_path = f"{CLIENT_PREFIX}/user/(?P<user_id>[^/]+)/rooms/(?P<room_id>[^/]+)/tags"

    async def get_tags(request: Request, user_id: str, room_id: str
                       ) -> tuple[int, dict[str, Any]]:
        await own_user(node, request, user_id)
        check_room_id(room_id)
        return 200, {"tags": await store.get_room_tags(user_id, room_id)}

    async def put_tag(request: Request, user_id: str, room_id: str, tag: str
                      ) -> tuple[int, dict[str, Any]]:
        await own_user(node, request, user_id)
        check_room_id(room_id)
        content = validate_tag(tag, parse_json_body(request))
        await node.write_with_stream_id(
            lambda stream_id: store.set_room_tag(user_id, room_id, tag, content, stream_id),
            users=[user_id])
        return 200, {}

    async def delete_tag(request: Request, user_id: str, room_id: str, tag: str
                         ) -> tuple[int, dict[str, Any]]:
        await own_user(node, request, user_id)
        check_room_id(room_id)
        await node.write_with_stream_id(
            lambda stream_id: store.remove_room_tag(user_id, room_id, tag, stream_id),
            users=[user_id])
        return 200, {}

    router.register("GET", rooms_path, get_tags)
    router.register("PUT", rooms_path + "/(?P<tag>[^/]+)", put_tag)
    router.register("DELETE", rooms_path + "/(?P<tag>[^/]+)", delete_tag)
