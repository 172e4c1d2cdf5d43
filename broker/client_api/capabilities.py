"""``GET /capabilities``: what this node lets clients do (room versions, profile and password
changes; third-party identifiers are not managed here)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from twisted.web.http import Request

from broker.client_api import CLIENT_PREFIX
from protocol.room_versions import KNOWN_ROOM_VERSIONS

if TYPE_CHECKING:
    from broker.http.server import Router
    from broker.node import Node


def register_servlets(node: Node, router: Router) -> None:
    async def capabilities(request: Request) -> tuple[int, dict[str, Any]]:
        await node.auth.get_requester(request)
        return 200, {"capabilities": {
            "m.change_password": {"enabled": True},
            "m.room_versions": {
                "default": node.config.default_room_version,
                "available": {version: "stable" for version in KNOWN_ROOM_VERSIONS},
            },
            "m.set_displayname": {"enabled": True},
            "m.set_avatar_url": {"enabled": True},
            "m.3pid_changes": {"enabled": False},
        }}

    router.register("GET", f"{CLIENT_PREFIX}/capabilities", capabilities)
