"""Membership changes requested by local users: join, knock, invite, leave, kick, ban, unban,
forget.

Every change is an m.room.member event through the same auth rules federation uses; this
module only chooses the event's content and target.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from broker.access_policy import OFFICIAL
from broker.errors import Forbidden, InvalidInput, NotFound, Unavailable
from broker.rooms.creator import EventSpec
from broker.rooms.remote_invites import RemoteInvites
from broker.rooms.remote_join import RemoteJoins, servers_for_room
from broker.rooms.remote_knocks import RemoteKnocks
from broker.rooms.room_kind import facts_of, knock_reaches
from protocol.errors import HttpResponseError
from protocol.events import Event
from protocol.identifiers import is_room_id, is_user_id
from protocol.signing import server_name_of

if TYPE_CHECKING:
    from broker.access_policy import AccessPolicy, RoomFacts
    from broker.remote_classes import RemoteClasses
    from broker.rooms.aliases import Aliases
    from broker.rooms.live_room import LiveRoom
    from broker.rooms.service import Rooms
    from federation.policy import FederationPolicy
    from federation.transport_client import FederationClient
    from storage.remote_invites import RemoteInviteStore
    from storage.state import StateStore
    from storage.users import UserStore

# What a user's membership event restates of their profile in a room (None: a room not held
# here); see broker.services.profiles.Profiles.in_room.
MemberProfile = Callable[[str, "RoomFacts | None"], Awaitable[dict[str, Any]]]


class Membership:
    def __init__(self, server_name: str, rooms: Rooms, aliases: Aliases, users: UserStore,
                 state: StateStore, invites: RemoteInviteStore, joins: RemoteJoins,
                 remote_invites: RemoteInvites, remote_knocks: RemoteKnocks,
                 federation_policy: FederationPolicy, client: FederationClient,
                 policy: AccessPolicy, member_profile: MemberProfile,
                 remote_classes: RemoteClasses) -> None:
        self.server_name = server_name
        self.remote_classes = remote_classes  # what other nodes attest of their users
        self.rooms = rooms
        self.aliases = aliases
        self.users = users
        self.state = state
        self.invites = invites
        self.joins = joins
        self.remote_invites = remote_invites
        self.remote_knocks = remote_knocks
        self.federation_policy = federation_policy
        self.client = client
        self.policy = policy
        self.member_profile = member_profile
        # Asked before a user leaves a room themselves: Forbidden if they may not (a
        # broadcast notice room, broker.notice_rooms.check_leave); the node sets it.
        self.leave_check: Callable[[LiveRoom, str], None] | None = None
        # Asked about an unknown local invitee before the answer is "unknown user" (an
        # application service's user it creates when asked); True: read it again.
        self.ask_unknown_user: Callable[[str], Awaitable[bool]] | None = None

    def is_mine(self, user_id: str) -> bool:
        return user_id.split(":", 1)[-1] == self.server_name

    async def _local_user_exists(self, user_id: str) -> bool:
        if await self.users.get_user(user_id) is not None:
            return True
        return self.ask_unknown_user is not None and await self.ask_unknown_user(user_id) \
            and await self.users.get_user(user_id) is not None

    async def _profile_content(self, user_id: str, room: RoomFacts | None) -> dict[str, Any]:
        """The display name and avatar ``user_id``'s membership event restates in the room
        (``room`` None: not held here): what the room's audiences may see, never a refusal."""
        return await self.member_profile(user_id, room)

    async def resolve_room(self, room_id_or_alias: str) -> tuple[str, list[str]]:
        """The room ID, and servers that can help to join it (for a remote alias)."""
        if room_id_or_alias.startswith("#"):
            server = room_id_or_alias.split(":", 1)[-1]
            if server == self.server_name:
                return await self.aliases.resolve(room_id_or_alias), []
            return await self._remote_alias(room_id_or_alias, server)
        if not is_room_id(room_id_or_alias):
            raise InvalidInput(f"{room_id_or_alias!r} is neither a room ID nor a room alias")
        return room_id_or_alias, []

    async def _remote_alias(self, alias: str, server: str) -> tuple[str, list[str]]:
        self.aliases.validate(alias, must_be_local=False)
        if not self.federation_policy.permits("outbound", server):
            raise Forbidden(f"Federation with {server} is not allowed")
        try:
            answer = await self.client.get_json(
                server, "/_matrix/federation/v1/query/directory", args={"room_alias": alias})
        except HttpResponseError as e:
            raise NotFound(f"Room alias {alias} not found") from e
        except Exception as e:
            raise Unavailable(f"Could not ask {server} about {alias}: {e}"
                              ) from e
        room_id = answer.get("room_id") if isinstance(answer, dict) else None
        if not isinstance(room_id, str):
            raise Unavailable(f"{server} gave no room for {alias}")
        servers = [s for s in answer.get("servers", []) if isinstance(s, str)]
        return room_id, [server, *servers]

    async def join(self, room_id_or_alias: str, user_id: str, *, reason: str | None = None,
                   servers: list[str] | None = None) -> str:
        room_id, alias_servers = await self.resolve_room(room_id_or_alias)
        room = await self.rooms.registry.get(room_id)
        facts = None if room is None else facts_of(room, self.server_name)
        self.policy.may_join(user_id, room_id, room=facts)
        if room is None or _held_elsewhere(room, self.is_mine):
            # Nobody here is in the room: join through a server that is.
            profile = await self._profile_content(user_id, None)
            invite = await self.invites.get_invite(user_id, room_id)
            inviter = [server_name_of(str(invite.event.get("sender", "")))] if invite else []
            knock = await self.remote_knocks.knocks.get_knock(user_id, room_id)
            knocked = [knock.server] if knock else []
            hints = [*(servers or []), *alias_servers, *inviter, *knocked]
            await self.joins.join(room_id, user_id, servers_for_room(room_id, hints), profile)
            await self.state.unforget_room(user_id, room_id)
            if invite is not None:
                await self.invites.delete_invite(user_id, room_id)
            if knock is not None:
                await self.remote_knocks.forget(room_id, user_id)
            return room_id
        content = {"membership": "join", **await self._profile_content(user_id, facts)}
        if reason:
            content["reason"] = reason
        current = room.state.get(("m.room.member", user_id))
        if current is not None and current.membership == "join" and all(
            current.content.get(k) == v for k, v in content.items()
        ):
            return room_id  # already joined with this profile: nothing to change
        await self.rooms.send(room_id, user_id, "m.room.member", content, state_key=user_id)
        await self.state.unforget_room(user_id, room_id)
        return room_id

    async def knock(self, room_id_or_alias: str, user_id: str, *, reason: str | None = None,
                    servers: list[str] | None = None) -> str:
        """Ask to be let into a room whose join rule is ``knock`` or ``knock_restricted``."""
        room_id, alias_servers = await self.resolve_room(room_id_or_alias)
        room = await self.rooms.registry.get(room_id)
        facts = None if room is None else facts_of(room, self.server_name)
        content = {"membership": "knock", **await self._profile_content(user_id, facts)}
        if reason:
            content["reason"] = reason
        if room is None or _held_elsewhere(room, self.is_mine):
            hints = [*(servers or []), *alias_servers]
            await self.remote_knocks.knock(room_id, user_id, servers_for_room(room_id, hints),
                                           content)
            return room_id
        self.policy.may_knock(user_id, room_id, room=facts, reached=knock_reaches(room, user_id))
        await self.rooms.send(room_id, user_id, "m.room.member", content, state_key=user_id)
        await self.state.unforget_room(user_id, room_id)
        return room_id

    async def change(self, room_id: str, sender: str, target: str, membership: str, *,
                     reason: str | None = None, is_direct: bool = False) -> Event | None:
        """Send ``target``'s membership as ``membership`` on behalf of ``sender`` (None when
        that declined an invite to a room held on another server)."""
        if not is_user_id(target):
            raise InvalidInput(f"{target!r} is not a valid user ID")
        room = await self.rooms.registry.get(room_id)
        if room is None and membership == "leave" and target == sender:
            if not await self.remote_knocks.withdraw(room_id, sender):
                await self.remote_invites.decline(room_id, sender)
            return None
        room = await self.rooms.get_room(room_id)
        if membership == "leave" and target == sender and self.leave_check is not None:
            self.leave_check(room, sender)
        facts = facts_of(room, self.server_name)
        if membership == "invite":
            if facts.kind == OFFICIAL and not self.is_mine(target):
                await self.remote_classes.ensure(target)  # may ask the invitee's node
                room = await self.rooms.get_room(room_id)
                facts = facts_of(room, self.server_name)
            self.policy.may_invite(sender, target, room_id, room=facts)
            current = room.membership_of(target)
            if current in ("join", "ban"):
                raise Forbidden(f"{target} is already {'in' if current == 'join' else 'banned from'}"
                                " the room")
            if self.is_mine(target) and not await self._local_user_exists(target):
                raise NotFound(f"Unknown user {target}")
        content: dict[str, Any] = {"membership": membership}
        if reason:
            content["reason"] = reason
        if is_direct:
            content["is_direct"] = True
        if membership == "invite":
            content.update(await self._profile_content(target, facts))
            if not self.is_mine(target):
                spec = EventSpec(sender=sender, type="m.room.member", content=content,
                                 state_key=target)
                return await self.remote_invites.invite(room, spec)
        return await self.rooms.send(room_id, sender, "m.room.member", content,
                                          state_key=target)

    async def forget(self, room_id: str, user_id: str) -> None:
        room = await self.rooms.get_room(room_id)
        if room.membership_of(user_id) in ("join", "invite", "knock"):
            raise InvalidInput("You must leave the room before forgetting it", errcode="M_UNKNOWN")
        if room.membership_of(user_id) is None:
            raise NotFound("You have never been in this room")
        await self.state.forget_room(user_id, room_id)


def _held_elsewhere(room: LiveRoom, is_mine: Callable[[str], bool]) -> bool:
    """Whether the room, held here, must be reached through another server all the same: none
    of its joined members is a user of ours."""
    joined = room.members_with("join")
    return bool(joined) and not any(is_mine(u) for u in joined)
