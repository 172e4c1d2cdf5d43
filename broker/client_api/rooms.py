"""Room lifecycle endpoints: createRoom, join (by ID or alias), invite, leave, kick, ban, unban,
forget and joined_rooms."""

from __future__ import annotations

from typing import Any

from broker.client_api import CLIENT_PREFIX
from broker.http.endpoint import Access, Call, Endpoints, endpoint
from broker.http.errors import bad_param
from broker.http.parsing import query_args
from broker.http.validation import optional, require
from broker.rooms.create_room import PRESETS, CreateRoomRequest
from broker.rooms.membership import Membership
from broker.rooms.user_rooms import UserRoomsIndex
from broker.services.room_creation import RoomCreation
from protocol.identifiers import is_user_id, within_id_limit

ROOM = f"{CLIENT_PREFIX}/rooms/(?P<room_id>[^/]+)"
Reply = tuple[int, dict[str, Any]]


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


class RoomMembershipEndpoints(Endpoints):
    def __init__(self, creation: RoomCreation, membership: Membership,
                 user_rooms: UserRoomsIndex, default_room_version: str) -> None:
        self.creation = creation
        self.membership = membership
        self.user_rooms = user_rooms
        self.default_room_version = default_room_version

    @endpoint("POST", f"{CLIENT_PREFIX}/createRoom", access=Access.USER)
    async def create(self, call: Call) -> Reply:
        req = _parse_create(call.json(allow_empty=True), call.user.user_id,
                            self.default_room_version)
        room_id, alias = await self.creation.create(req)
        return 200, {"room_id": room_id, **({"room_alias": alias} if alias else {})}

    @endpoint("POST", f"{CLIENT_PREFIX}/join/(?P<room>[^/]+)", access=Access.USER)
    @endpoint("POST", f"{CLIENT_PREFIX}/rooms/(?P<room>[^/]+)/join", access=Access.USER)
    async def join(self, call: Call, room: str) -> Reply:
        body = call.json(allow_empty=True)
        servers = query_args(call.request, "server_name") + query_args(call.request, "via")
        room_id = await self.membership.join(room, call.user.user_id,
                                             reason=optional(body, "reason", str),
                                             servers=servers)
        return 200, {"room_id": room_id}

    async def _change(self, call: Call, room_id: str, kind: str, needs_target: bool) -> Reply:
        body = call.json(allow_empty=not needs_target)
        target = require(body, "user_id", str) if needs_target else call.user.user_id
        await self.membership.change(room_id, call.user.user_id, target, kind,
                                     reason=optional(body, "reason", str))
        return 200, {}

    @endpoint("POST", ROOM + "/invite", access=Access.USER)
    async def invite(self, call: Call, room_id: str) -> Reply:
        return await self._change(call, room_id, "invite", True)

    @endpoint("POST", ROOM + "/leave", access=Access.USER)
    async def leave(self, call: Call, room_id: str) -> Reply:
        return await self._change(call, room_id, "leave", False)

    @endpoint("POST", ROOM + "/kick", access=Access.USER)
    @endpoint("POST", ROOM + "/unban", access=Access.USER)
    async def kick_or_unban(self, call: Call, room_id: str) -> Reply:
        return await self._change(call, room_id, "leave", True)

    @endpoint("POST", ROOM + "/ban", access=Access.USER)
    async def ban(self, call: Call, room_id: str) -> Reply:
        return await self._change(call, room_id, "ban", True)

    @endpoint("POST", ROOM + "/forget", access=Access.USER)
    async def forget(self, call: Call, room_id: str) -> Reply:
        await self.membership.forget(room_id, call.user.user_id)
        return 200, {}

    @endpoint("GET", f"{CLIENT_PREFIX}/joined_rooms", access=Access.USER)
    async def joined_rooms(self, call: Call) -> Reply:
        return 200, {"joined_rooms": await self.user_rooms.joined_rooms(call.user.user_id)}
