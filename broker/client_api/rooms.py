"""Room lifecycle endpoints: createRoom, join and knock (by ID or alias), invite, leave, kick,
ban, unban, forget and joined_rooms."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import model_validator

from broker.client_api import CLIENT_PREFIX
from broker.errors import InvalidInput
from broker.http.bodies import Body, NoBody
from broker.http.endpoint import Access, Call, Endpoints, endpoint
from broker.http.parsing import query_args
from broker.rooms.create_room import PRESETS, CreateRoomRequest
from broker.rooms.membership import Membership as MembershipService
from broker.rooms.user_rooms import UserRoomsIndex
from broker.services.room_creation import RoomCreation
from protocol.identifiers import is_user_id, within_id_limit

ROOM = f"{CLIENT_PREFIX}/rooms/(?P<room_id>[^/]+)"
Reply = tuple[int, dict[str, Any]]


class InitialState(Body):
    type: str
    state_key: str = ""
    content: dict[str, Any]

    @model_validator(mode="after")
    def _ids_fit(self) -> InitialState:
        if not within_id_limit(self.type) or not within_id_limit(self.state_key):
            raise InvalidInput("'initial_state' types and state keys are at most 255 bytes")
        return self


class CreateRoomBody(Body):
    visibility: Literal["public", "private"] = "private"
    preset: str | None = None
    invite: list[str] = []
    invite_3pid: Any = None
    initial_state: list[InitialState] = []
    room_alias_name: str | None = None
    room_version: str | None = None
    name: str | None = None
    topic: str | None = None
    creation_content: dict[str, Any] = {}
    power_level_content_override: dict[str, Any] | None = None
    is_direct: bool = False

    @model_validator(mode="after")
    def _supported(self) -> CreateRoomBody:
        if self.preset is not None and self.preset not in PRESETS:
            raise InvalidInput(f"Unknown preset {self.preset!r}")
        for user_id in self.invite:
            if not is_user_id(user_id):
                raise InvalidInput(f"Invalid user ID in 'invite': {user_id!r}")
        if self.invite_3pid:
            raise InvalidInput("Third-party invites are not supported on this node")
        return self

    def request(self, creator: str, default_version: str) -> CreateRoomRequest:
        default_preset = "public_chat" if self.visibility == "public" else "private_chat"
        return CreateRoomRequest(
            creator=creator, preset=default_preset if self.preset is None else self.preset,
            visibility=self.visibility,
            room_version=default_version if self.room_version is None else self.room_version,
            name=self.name,
            topic=self.topic, room_alias_name=self.room_alias_name,
            invite=list(dict.fromkeys(self.invite)),
            initial_state=[{"type": s.type, "state_key": s.state_key, "content": s.content}
                           for s in self.initial_state],
            creation_content=self.creation_content,
            power_level_content_override=self.power_level_content_override,
            is_direct=self.is_direct,
        )


class Membership(Body):
    reason: str | None = None


class MembershipOf(Membership):
    """A membership change of another user."""

    user_id: str


class RoomMembershipEndpoints(Endpoints):
    def __init__(self, creation: RoomCreation, membership: MembershipService,
                 user_rooms: UserRoomsIndex, default_room_version: str) -> None:
        self.creation = creation
        self.membership = membership
        self.user_rooms = user_rooms
        self.default_room_version = default_room_version

    @endpoint("POST", f"{CLIENT_PREFIX}/createRoom", access=Access.USER, body=CreateRoomBody,
              body_optional=True)
    async def create(self, call: Call, body: CreateRoomBody) -> Reply:
        room_id, alias = await self.creation.create(
            body.request(call.user.user_id, self.default_room_version))
        return 200, {"room_id": room_id, **({"room_alias": alias} if alias else {})}

    @endpoint("POST", f"{CLIENT_PREFIX}/join/(?P<room>[^/]+)", access=Access.USER,
              body=Membership, body_optional=True)
    @endpoint("POST", f"{CLIENT_PREFIX}/rooms/(?P<room>[^/]+)/join", access=Access.USER,
              body=Membership, body_optional=True)
    async def join(self, call: Call, room: str, body: Membership) -> Reply:
        servers = query_args(call.request, "server_name") + query_args(call.request, "via")
        room_id = await self.membership.join(room, call.user.user_id, reason=body.reason,
                                             servers=servers)
        return 200, {"room_id": room_id}

    @endpoint("POST", f"{CLIENT_PREFIX}/knock/(?P<room>[^/]+)", access=Access.USER,
              body=Membership, body_optional=True)
    async def knock(self, call: Call, room: str, body: Membership) -> Reply:
        servers = query_args(call.request, "via") + query_args(call.request, "server_name")
        room_id = await self.membership.knock(room, call.user.user_id, reason=body.reason,
                                              servers=servers)
        return 200, {"room_id": room_id}

    async def _change(self, call: Call, room_id: str, kind: str, target: str,
                      reason: str | None) -> Reply:
        await self.membership.change(room_id, call.user.user_id, target, kind, reason=reason)
        return 200, {}

    @endpoint("POST", ROOM + "/invite", access=Access.USER, body=MembershipOf)
    async def invite(self, call: Call, room_id: str, body: MembershipOf) -> Reply:
        return await self._change(call, room_id, "invite", body.user_id, body.reason)

    @endpoint("POST", ROOM + "/leave", access=Access.USER, body=Membership, body_optional=True)
    async def leave(self, call: Call, room_id: str, body: Membership) -> Reply:
        return await self._change(call, room_id, "leave", call.user.user_id, body.reason)

    @endpoint("POST", ROOM + "/kick", access=Access.USER, body=MembershipOf)
    @endpoint("POST", ROOM + "/unban", access=Access.USER, body=MembershipOf)
    async def kick_or_unban(self, call: Call, room_id: str, body: MembershipOf) -> Reply:
        return await self._change(call, room_id, "leave", body.user_id, body.reason)

    @endpoint("POST", ROOM + "/ban", access=Access.USER, body=MembershipOf)
    async def ban(self, call: Call, room_id: str, body: MembershipOf) -> Reply:
        return await self._change(call, room_id, "ban", body.user_id, body.reason)

    @endpoint("POST", ROOM + "/forget", access=Access.USER, body=NoBody)
    async def forget(self, call: Call, room_id: str) -> Reply:
        await self.membership.forget(room_id, call.user.user_id)
        return 200, {}

    @endpoint("GET", f"{CLIENT_PREFIX}/joined_rooms", access=Access.USER)
    async def joined_rooms(self, call: Call) -> Reply:
        return 200, {"joined_rooms": await self.user_rooms.joined_rooms(call.user.user_id)}
