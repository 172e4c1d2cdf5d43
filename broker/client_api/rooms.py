"""Room lifecycle endpoints: createRoom, join (by ID or alias), invite, leave, kick, ban, unban,
forget and joined_rooms."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from twisted.web.http import Request

from broker.client_api import CLIENT_PREFIX
from broker.http.errors import bad_param
from broker.http.parsing import parse_json_body, query_args
from broker.http.validation import optional, require
from broker.rooms.create_room import PRESETS, CreateRoomRequest, create_room
from broker.rooms.membership import Membership
from protocol.identifiers import is_user_id, within_id_limit

if TYPE_CHECKING:
    from broker.http.server import Router
    from broker.node import Node

ROOM = "(?P<room_id>[^/]+)"


def _parse_create(body: dict[str, Any], creator: str, default_version: str) -> CreateRoomRequest:
    visibility = optional(body, "visibility", str, "private")
    if visibility not in ("public", "private"):
        raise bad_param("'visibility' must be 'public' or 'private'")
    preset = optional(body, "preset", str,
                      "public_chat" if visibility == "public" else "private_chat")
    if preset not in PRESETS:
        raise bad_param(f"Unknown preset {preset!r}")
    invite = optional(body, "invite", list, [])
    for user_id in invite:
        if not is_user_id(user_id):
            raise bad_param(f"Invalid user ID in 'invite': {user_id!r}")
    initial_state = optional(body, "initial_state", list, [])
    for state in initial_state:
        if not isinstance(state, dict) or not isinstance(state.get("type"), str) or \
                not isinstance(state.get("content"), dict) or \
                not isinstance(state.get("state_key", ""), str):
            raise bad_param("Each 'initial_state' entry needs a string type and object content")
        if not within_id_limit(state["type"]) or not within_id_limit(state.get("state_key", "")):
            raise bad_param("'initial_state' types and state keys are at most 255 bytes")
    if "invite_3pid" in body and body["invite_3pid"]:
        raise bad_param("Third-party invites are not supported on this node")
    alias_name = optional(body, "room_alias_name", str)
    return CreateRoomRequest(
        creator=creator, preset=preset, visibility=visibility,
        room_version=optional(body, "room_version", str, default_version),
        name=optional(body, "name", str), topic=optional(body, "topic", str),
        room_alias_name=alias_name, invite=list(dict.fromkeys(invite)),
        initial_state=initial_state,
        creation_content=optional(body, "creation_content", dict, {}),
        power_level_content_override=optional(body, "power_level_content_override", dict),
        is_direct=optional(body, "is_direct", bool, False),
    )


def register_servlets(node: Node, router: Router) -> None:
    membership = Membership(node)

    async def create(request: Request) -> tuple[int, dict[str, Any]]:
        requester = await node.auth.get_requester(request)
        body = parse_json_body(request, allow_empty=True)
        req = _parse_create(body, requester.user_id, node.config.default_room_version)
        policy = node.config.encryption_by_default
        req.encrypt = policy == "all" or (policy == "private" and (
            req.preset in ("private_chat", "trusted_private_chat") or req.is_direct))
        profile = await node.stores.users.get_profile(requester.user_id) or {}
        req.creator_profile = profile
        room_id = await create_room(node, req)
        result: dict[str, Any] = {"room_id": room_id}
        if req.room_alias_name:
            result["room_alias"] = f"#{req.room_alias_name}:{node.server_name}"
        return 200, result

    async def join(request: Request, room: str) -> tuple[int, dict[str, Any]]:
        requester = await node.auth.get_requester(request)
        body = parse_json_body(request, allow_empty=True)
        servers = query_args(request, "server_name") + query_args(request, "via")
        room_id = await membership.join(room, requester.user_id,
                                        reason=optional(body, "reason", str), servers=servers)
        return 200, {"room_id": room_id}

    def target_change(kind: str, needs_target: bool) -> Any:
        async def handler(request: Request, room_id: str) -> tuple[int, dict[str, Any]]:
            requester = await node.auth.get_requester(request)
            body = parse_json_body(request, allow_empty=not needs_target)
            target = require(body, "user_id", str) if needs_target else requester.user_id
            reason = optional(body, "reason", str)
            await membership.change(room_id, requester.user_id, target, kind, reason=reason)
            return 200, {}

        return handler

    async def forget(request: Request, room_id: str) -> tuple[int, dict[str, Any]]:
        requester = await node.auth.get_requester(request)
        await membership.forget(room_id, requester.user_id)
        return 200, {}

    async def joined_rooms(request: Request) -> tuple[int, dict[str, Any]]:
        requester = await node.auth.get_requester(request)
        return 200, {"joined_rooms": await node.rooms.user_rooms.joined_rooms(requester.user_id)}

    router.register("POST", f"{CLIENT_PREFIX}/createRoom", create)
    router.register("POST", f"{CLIENT_PREFIX}/join/(?P<room>[^/]+)", join)
    router.register("POST", f"{CLIENT_PREFIX}/rooms/(?P<room>[^/]+)/join", join)
    router.register("POST", f"{CLIENT_PREFIX}/rooms/{ROOM}/invite", target_change("invite", True))
    router.register("POST", f"{CLIENT_PREFIX}/rooms/{ROOM}/leave", target_change("leave", False))
    router.register("POST", f"{CLIENT_PREFIX}/rooms/{ROOM}/kick", target_change("leave", True))
    router.register("POST", f"{CLIENT_PREFIX}/rooms/{ROOM}/ban", target_change("ban", True))
    router.register("POST", f"{CLIENT_PREFIX}/rooms/{ROOM}/unban", target_change("leave", True))
    router.register("POST", f"{CLIENT_PREFIX}/rooms/{ROOM}/forget", forget)
    router.register("GET", f"{CLIENT_PREFIX}/joined_rooms", joined_rooms)
