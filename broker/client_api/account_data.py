"""Account data: ``GET/PUT /user/{userId}/account_data/{type}`` and the per-room variant
``/user/{userId}/rooms/{roomId}/account_data/{type}``.

Only the owner may read or write; each write takes a stream id so /sync delivers it.  Types the
server controls (``m.fully_read``, set with read markers; ``m.push_rules``, set through
/pushrules) are refused with 405 ``M_BAD_JSON``, as the spec says.  Reading ``m.push_rules``
answers the user's current ruleset, also before any rule was changed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from twisted.web.http import Request

from broker.client_api import CLIENT_PREFIX
from broker.http.errors import MatrixError, bad_param, forbidden, not_found
from broker.http.server import parse_json_body
from broker.push_rules_defaults import push_rules_content
from storage.account_data import GLOBAL

if TYPE_CHECKING:
    from broker.auth import Requester
    from broker.http.server import Router
    from broker.node import Node

SERVER_CONTROLLED_TYPES = frozenset({"m.fully_read", "m.push_rules"})
MAX_TYPE_LENGTH = 255


async def own_user(node: Node, request: Request, user_id: str) -> Requester:
    """The requester, who must be ``user_id`` (403 ``M_FORBIDDEN`` otherwise)."""
    requester = await node.auth.get_requester(request)
    if requester.user_id != user_id:
        raise forbidden("You may only access your own account data.")
    return requester


def check_room_id(room_id: str) -> None:
    """400 ``M_INVALID_PARAM`` unless ``room_id`` looks like a room id ('!' sigil)."""
    if len(room_id) < 2 or not room_id.startswith("!"):
        raise bad_param(f"{room_id!r} is not a valid room ID.")


def _check_type(data_type: str) -> None:
    if not data_type or len(data_type.encode("utf-8")) > MAX_TYPE_LENGTH:
        raise bad_param(f"Account data type must be 1 to {MAX_TYPE_LENGTH} bytes.")


def register_servlets(node: Node, router: Router) -> None:
    store = node.stores.account_data

    async def read(request: Request, user_id: str, room_id: str, data_type: str
                   ) -> tuple[int, dict[str, Any]]:
        await own_user(node, request, user_id)
        if room_id != GLOBAL:
            check_room_id(room_id)
        elif data_type == "m.push_rules":
            snapshot = await node.stores.push_rules.get_push_rules(user_id)
            return 200, push_rules_content(user_id, snapshot)
        content = await store.get_account_data(user_id, room_id, data_type)
        if content is None:
            raise not_found("Room account data not found." if room_id else
                            "Account data not found.")
        return 200, content

    async def write(request: Request, user_id: str, room_id: str, data_type: str
                    ) -> tuple[int, dict[str, Any]]:
        await own_user(node, request, user_id)
        if room_id != GLOBAL:
            check_room_id(room_id)
        _check_type(data_type)
        content = parse_json_body(request)
        if data_type in SERVER_CONTROLLED_TYPES:
            raise MatrixError(405, "M_BAD_JSON",
                              f"Cannot set {data_type} through this API.")
        await node.write_with_stream_id(
            lambda stream_id: store.set_account_data(user_id, room_id, data_type, content,
                                                     stream_id),
            users=[user_id])
        return 200, {}

    async def get_global(request: Request, user_id: str, data_type: str
                         ) -> tuple[int, dict[str, Any]]:
        return await read(request, user_id, GLOBAL, data_type)

    async def put_global(request: Request, user_id: str, data_type: str
                         ) -> tuple[int, dict[str, Any]]:
        return await write(request, user_id, GLOBAL, data_type)

    global_path = f"{CLIENT_PREFIX}/user/(?P<user_id>[^/]+)/account_data/(?P<data_type>[^/]+)"
    room_path = (f"{CLIENT_PREFIX}/user/(?P<user_id>[^/]+)/rooms/(?P<room_id>[^/]+)"
                 "/account_data/(?P<data_type>[^/]+)")
    router.register("GET", global_path, get_global)
    router.register("PUT", global_path, put_global)
    router.register("GET", room_path, read)
    router.register("PUT", room_path, write)
