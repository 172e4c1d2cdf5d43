"""Typing notifications: ``PUT /rooms/{roomId}/typing/{userId}``.

Only for yourself, only in rooms you are joined to.  The state is held in memory by
``node.typing`` (expiring after ``timeout`` ms, at most two minutes) and reaches the room's
members through /sync as the ``m.typing`` ephemeral event.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from twisted.web.http import Request

from broker.client_api import CLIENT_PREFIX
from broker.http.errors import bad_param, forbidden
from broker.http.parsing import parse_json_body
from broker.http.validation import optional, require
from broker.rooms.service import federate_edu

if TYPE_CHECKING:
    from broker.http.server import Router
    from broker.node import Node

DEFAULT_TIMEOUT_MS = 30_000


def register_servlets(node: Node, router: Router) -> None:
    async def put_typing(request: Request, room_id: str, user_id: str
                         ) -> tuple[int, dict[str, Any]]:
        requester = await node.auth.get_requester(request)
        if requester.user_id != user_id:
            raise forbidden("You may only set your own typing state.")
        body = parse_json_body(request)
        typing = require(body, "typing", bool)
        timeout = optional(body, "timeout", int, DEFAULT_TIMEOUT_MS)
        if timeout < 0:
            raise bad_param("'timeout' must not be negative")
        await node.rooms.require_joined(room_id, user_id)
        node.typing.set_typing(room_id, user_id, typing, timeout)
        await federate_edu(node, room_id, "m.typing",
                           {"room_id": room_id, "user_id": user_id, "typing": typing},
                           key=f"{room_id}|{user_id}")
        return 200, {}

    router.register(
        "PUT", f"{CLIENT_PREFIX}/rooms/(?P<room_id>[^/]+)/typing/(?P<user_id>[^/]+)", put_typing)
