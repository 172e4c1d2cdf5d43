"""Organisations' image packs ("gimojis"), published by their admins: each pack is an MSC2545
``m.image_pack`` state event (and the same content as the unstable ``im.ponies.room_emotes``)
in the organisation's pack room, its state key the pack's ID.

The pack room is made with the organisation's first pack, by the organisation's account
(:mod:`broker.org_accounts`), which as the room's creator alone may change it: members may
send nothing and change no state (power levels ask 100 of everything), the room does not
federate (``m.federate`` false: its members are this node's users) and is not in the room
directory.  Every change asks :mod:`broker.admin.permissions` (``image_packs.change`` on the
organisation) and is recorded in the audit log; then the organisation's members are brought up
to date in the background (:mod:`broker.image_pack_members`).  The packs are read from the
room's state in memory.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from twisted.internet import defer

from broker.admin import permissions
from broker.admin.audit import AuditLog, Recording
from broker.admin.authority import Authority
from broker.admin.model import Actor, Tree
from broker.errors import NotFound
from broker.image_pack_content import PACK_TYPES, PackContent, check_pack_id
from broker.image_pack_members import PackMembers
from broker.org_accounts import OrganisationAccounts
from broker.rooms.create_room import CreateRoomRequest
from broker.rooms.live_room import LiveRoom
from broker.rooms.room_kind import IMAGE_PACKS_KEY
from broker.rooms.service import Rooms
from storage.image_packs import ImagePackStore
from storage.organisations import Organisation

CreateRoom = Callable[[CreateRoomRequest], Awaitable[str]]

# Only the room's creator (the organisation's account; rooms v12 give it every power) may
# send anything; members read.
POWER_LEVELS: dict[str, Any] = {
    "users_default": 0, "events_default": 100, "state_default": 100, "invite": 100,
    "kick": 100, "ban": 100, "redact": 100, "notifications": {"room": 100},
}


class ImagePacks:
    def __init__(self, authority: Authority, audit: AuditLog, content: PackContent,
                 members: PackMembers, org_accounts: OrganisationAccounts, rooms: Rooms,
                 create_room: CreateRoom, store: ImagePackStore, clock: Any) -> None:
        self.authority = authority
        self.audit = audit
        self.content = content
        self.members = members
        self.org_accounts = org_accounts
        self.rooms = rooms
        self.create_room = create_room
        self.store = store
        self.clock = clock
        self._creating = defer.DeferredLock()

    async def put(self, actor: Actor, org_id: str, pack_id: str, body: dict[str, Any]
                  ) -> tuple[bool, dict[str, Any]]:
        """Publish or replace a pack; whether it is new, and the pack as published."""
        async with self.audit.recording(actor, permissions.IMAGE_PACKS_CHANGE,
                                        f"{org_id}/{pack_id}") as entry:
            org = await self._allowed(entry, permissions.IMAGE_PACKS_CHANGE)
            check_pack_id(pack_id)
            content = await self.content.content(body)
            room_id = await self._room_of(org)
            room = await self.rooms.get_room(room_id)
            new = pack_id not in self.members.keys_of(room)
            event_id = await self._send(room_id, org.org_id, pack_id, content)
            entry.detail.update(room_id=room_id, event_id=event_id, created=new,
                                shortcodes=sorted(content["images"]))
            await self.audit.record(entry)
        await self.members.request(org.org_id)
        return new, {"pack_id": pack_id, "room_id": room_id, "event_id": event_id, **content}

    async def get(self, actor: Actor, org_id: str, pack_id: str) -> dict[str, Any]:
        async with self.audit.recording(actor, permissions.IMAGE_PACKS_READ,
                                        f"{org_id}/{pack_id}") as entry:
            org = await self._allowed(entry, permissions.IMAGE_PACKS_READ)
            return _pack_json(await self._room_holding(org.org_id, pack_id), pack_id)

    async def list(self, actor: Actor, org_id: str) -> dict[str, Any]:
        """The organisation's packs, its room and how far its members' job is."""
        async with self.audit.recording(actor, permissions.IMAGE_PACKS_READ, org_id) as entry:
            org = await self._allowed(entry, permissions.IMAGE_PACKS_READ)
            room = await self._pack_room(org.org_id)
            job = await self.store.job(org.org_id)
            return {"organisation": org.org_id,
                    "room_id": None if room is None else room.room_id,
                    "sender": self.org_accounts.account_of(org.org_id),
                    "packs": [] if room is None else [_pack_json(room, key)
                                                      for key in self.members.keys_of(room)],
                    "members": None if job is None else job.to_json()}

    async def delete(self, actor: Actor, org_id: str, pack_id: str) -> None:
        """Withdraw a pack: its events are emptied (MSC2545: no images, no pack) and the
        members' account data stops listing it."""
        async with self.audit.recording(actor, permissions.IMAGE_PACKS_CHANGE,
                                        f"{org_id}/{pack_id}") as entry:
            org = await self._allowed(entry, permissions.IMAGE_PACKS_CHANGE)
            room = await self._room_holding(org.org_id, pack_id)
            entry.detail.update(room_id=room.room_id, event_id=await self._send(
                room.room_id, org.org_id, pack_id, {}))
            await self.audit.record(entry)
        await self.members.request(org.org_id)

    async def _allowed(self, entry: Recording, action: str) -> Organisation:
        org_id = entry.target.split("/", 1)[0]
        entry.organisation = org_id
        tree, _ = await self.authority.require(entry.actor, action, org_id)
        return _existing(tree, org_id)

    async def _pack_room(self, org_id: str) -> LiveRoom | None:
        room_id = self.members.pack_rooms.get(org_id)
        return None if room_id is None else await self.rooms.get_room(room_id)

    async def _room_holding(self, org_id: str, pack_id: str) -> LiveRoom:
        """The organisation's pack room, if it holds the pack (NotFound otherwise)."""
        room = await self._pack_room(org_id)
        if room is None or pack_id not in self.members.keys_of(room):
            raise NotFound(f"organisation {org_id!r} has no image pack {pack_id!r}")
        return room

    async def _send(self, room_id: str, org_id: str, pack_id: str,
                    content: dict[str, Any]) -> str:
        sender = self.org_accounts.account_of(org_id)
        assert sender is not None  # the room's creator
        event_id = ""
        for event_type in PACK_TYPES:
            event = await self.rooms.send(room_id, sender, event_type, content,
                                          state_key=pack_id)
            event_id = event_id or event.event_id
        self.members.packs_changed(room_id)
        return event_id

    async def _room_of(self, org: Organisation) -> str:
        """The organisation's pack room, made now (with its account) if it has none."""
        await self._creating.acquire()
        try:
            found = self.members.pack_rooms.get(org.org_id)
            if found is not None:
                return found
            sender = await self.org_accounts.ensure(org.org_id, org.name)
            room_id = await self.create_room(CreateRoomRequest(
                creator=sender, preset="private_chat", name=f"{org.name}: emoji and stickers",
                topic=f"Image packs {org.name} publishes for its members",
                creation_content={"m.federate": False, IMAGE_PACKS_KEY: org.org_id},
                creator_profile={"displayname": org.name},
                power_level_content_override=POWER_LEVELS,
                initial_state=[{"type": "m.room.guest_access", "state_key": "",
                                "content": {"guest_access": "forbidden"}}]))
            await self.store.add_room(org.org_id, room_id, self.clock.time_ms())
            self.members.pack_rooms[org.org_id] = room_id
            return room_id
        finally:
            self._creating.release()


def _existing(tree: Tree, org_id: str) -> Organisation:
    org = tree.get(org_id)
    if org is None:
        raise NotFound(f"no organisation {org_id!r}")
    return org


def _pack_json(room: LiveRoom, pack_id: str) -> dict[str, Any]:
    event = room.state[(PACK_TYPES[0], pack_id)]
    return {"pack_id": pack_id, "event_id": event.event_id, **event.content}
