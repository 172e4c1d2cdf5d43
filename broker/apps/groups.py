"""Groups an application manages: a room its sender account creates and owns (power 100;
members post at the default level 0), whose members the app adds and removes.

Members are named as message recipients are (user ID, organisation and employee ID, email,
phone; :mod:`broker.apps.recipients`).  A member of this node is invited and joined by the
node at once: membership is the organisation's decision (an HR system keeps a unit's group),
as for official groups, so nobody has to accept.  A member of another server is invited and
accepts on their node (the node cannot join another server's user).  Every invite asks the
separation rules as any invite does (room creation and :meth:`Membership.change`); removing a
member is a kick by the sender.  The app posts into its groups as its sender (the text as for
messages, without delivery tracking).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from broker.apps.recipients import RecipientRef, Recipients
from broker.apps.sending import AppMessage, caption, check_tags
from broker.errors import NotFound
from broker.message_tags import MessageTags
from broker.rooms.create_room import CreateRoomRequest
from broker.rooms.membership import Membership
from broker.rooms.service import Rooms
from broker.services.room_creation import RoomCreation
from protocol.signing import server_name_of
from storage.apps import AppRow, AppStore, GroupRow

MAX_MEMBERS = 1000


@dataclass(frozen=True)
class GroupDeps:
    server_name: str
    store: AppStore
    recipients: Recipients
    room_creation: RoomCreation
    membership: Membership
    rooms: Rooms
    tags: MessageTags
    clock: Any


class AppGroups:
    def __init__(self, deps: GroupDeps) -> None:
        self.deps = deps

    async def create(self, app: AppRow, name: str, members: list[RecipientRef]
                     ) -> dict[str, str]:
        deps = self.deps
        user_ids = list(dict.fromkeys([await deps.recipients.resolve(m) for m in members]))
        room_id, _alias = await deps.room_creation.create(CreateRoomRequest(
            creator=app.sender, preset="private_chat", name=name,
            invite=[u for u in user_ids if u != app.sender]))
        group = GroupRow(secrets.token_hex(8), app.app_id, room_id, name,
                         deps.clock.time_ms())
        await deps.store.add_group(group)
        for user_id in user_ids:
            if self._is_mine(user_id):
                await deps.membership.join(room_id, user_id)
        return {"group_id": group.group_id, "room_id": room_id}

    async def list(self, app: AppRow) -> dict[str, Any]:
        return {"groups": [_group_json(g) for g in await self.deps.store.groups(app.app_id)]}

    async def get(self, app: AppRow, group_id: str) -> dict[str, Any]:
        group = await self._group(app, group_id)
        room = await self.deps.rooms.get_room(group.room_id)
        return {**_group_json(group),
                "members": sorted(u for u in room.members_with("join") if u != app.sender),
                "invited": sorted(room.members_with("invite"))}

    async def add(self, app: AppRow, group_id: str, member: RecipientRef) -> str:
        """Invite (and, for a user of this node, join) the member; their user ID."""
        group = await self._group(app, group_id)
        user_id = await self.deps.recipients.resolve(member)
        room = await self.deps.rooms.get_room(group.room_id)
        if room.membership_of(user_id) not in ("join", "invite"):
            await self.deps.membership.change(group.room_id, app.sender, user_id, "invite")
        if self._is_mine(user_id) and room.membership_of(user_id) != "join":
            await self.deps.membership.join(group.room_id, user_id)
        return user_id

    async def remove(self, app: AppRow, group_id: str, user_id: str) -> None:
        group = await self._group(app, group_id)
        room = await self.deps.rooms.get_room(group.room_id)
        if room.membership_of(user_id) not in ("join", "invite"):
            raise NotFound(f"{user_id} is not a member of the group")
        await self.deps.membership.change(group.room_id, app.sender, user_id, "leave")

    async def post(self, app: AppRow, group_id: str, message: AppMessage) -> str:
        """Post into the group as the app's sender; the event ID."""
        group = await self._group(app, group_id)
        content = {"msgtype": "m.text", **caption(message)}
        check_tags(self.deps.tags, app.sender, message, content)
        event = await self.deps.rooms.send(group.room_id, app.sender, "m.room.message",
                                           content)
        return event.event_id

    async def _group(self, app: AppRow, group_id: str) -> GroupRow:
        for group in await self.deps.store.groups(app.app_id):
            if group.group_id == group_id:
                return group
        raise NotFound(f"No group {group_id!r} of this app")

    def _is_mine(self, user_id: str) -> bool:
        return server_name_of(user_id) == self.deps.server_name


def _group_json(group: GroupRow) -> dict[str, Any]:
    return {"group_id": group.group_id, "room_id": group.room_id, "name": group.name,
            "created_at": group.created_ts}
