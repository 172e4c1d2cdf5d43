"""Queries other servers make about local things: room aliases, profiles and our version."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from twisted.web.http import Request

from broker.federation_api import FED_V1
from broker.federation_api.authentication import authenticate
from broker.http.errors import MatrixError, not_found
from broker.http.parsing import query_arg
from protocol.signing import server_name_of

if TYPE_CHECKING:
    from broker.http.server import Router
    from broker.node import Node

VERSION = "0.1.0"


def register_servlets(node: Node, router: Router) -> None:
    async def directory(request: Request) -> tuple[int, Any]:
        await authenticate(node, request)
        alias = query_arg(request, "room_alias")
        if not alias:
            raise MatrixError(400, "M_MISSING_PARAM", "Missing 'room_alias'")
        found = await node.stores.aliases.get_alias(alias)
        if found is None:
            raise not_found(f"Room alias {alias} not found")
        room_id = found[0]
        room = await node.rooms.registry.get(room_id)
        servers = {node.server_name}
        if room is not None:
            servers |= {server_name_of(u) for u in room.members_with("join")}
        return 200, {"room_id": room_id,
                     "servers": [node.server_name, *sorted(servers - {node.server_name})]}

    async def profile(request: Request) -> tuple[int, Any]:
        await authenticate(node, request)
        user_id = query_arg(request, "user_id")
        field = query_arg(request, "field")
        if not user_id:
            raise MatrixError(400, "M_MISSING_PARAM", "Missing 'user_id'")
        if not node.is_mine(user_id):
            raise MatrixError(400, "M_INVALID_PARAM", "That user does not belong to this server")
        found = await node.stores.users.get_profile(user_id)
        if found is None:
            raise not_found("Profile not found")
        if field is not None:
            if field not in ("displayname", "avatar_url"):
                raise MatrixError(400, "M_INVALID_PARAM", f"Unknown profile field {field!r}")
            return 200, {field: found[field]} if field in found else {}
        return 200, found

    async def version(request: Request) -> tuple[int, dict[str, Any]]:
        return 200, {"server": {"name": "gov-broker", "version": VERSION}}

    router.register("GET", f"{FED_V1}/query/directory", directory)
    router.register("GET", f"{FED_V1}/query/profile", profile)
    router.register("GET", f"{FED_V1}/version", version)
