"""Rooms for admins: listing them, reading one, shutting one down.

Shutting a room down blocks it first (in memory at once, then durably with its audit entry,
its local aliases deleted and the room out of the public directory), then removes its local
members: each leaves through the room writer with the admin's reason, an ordinary
``m.room.member`` leave other servers receive as any other (a leave is allowed by the auth
rules whatever the power levels, where a kick needs a member with the power to kick).  One
call removes at most ``batch`` members and says how many remain; calling again goes on, and a
call on a room already shut down changes nothing and answers ``done``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from broker.admin import permissions
from broker.admin.audit import AuditLog, Recording
from broker.admin.authority import Authority
from broker.admin.blocked_rooms import BlockedRooms
from broker.admin.model import Actor, optional_text
from broker.admin.room_views import LIST_TYPES, details, list_item, local_members, matches
from broker.errors import DomainError, NotFound
from broker.retention import Retention
from broker.rooms.persister import EventNotStored
from broker.rooms.service import Rooms
from storage.room_admin import Block, RoomAdminStore, RoomRow
from storage.state import StateStore

SHUTDOWN_BATCH = 100  # members removed by one shutdown call
SCAN = 200  # rooms read at a time while filling a page of the list
MAX_REASON = 1000


@dataclass(frozen=True)
class RoomQuery:
    organisation: str | None = None  # rooms created by members of its sub-tree
    q: str = ""  # part of the room ID, name or an alias
    after: str = ""  # the last room ID of the page before
    limit: int = 100
    blocked: bool | None = None  # only rooms shut down (True) or not (False)


class AdminRooms:
    def __init__(self, store: RoomAdminStore, state: StateStore, rooms: Rooms,
                 blocked: BlockedRooms, authority: Authority, audit: AuditLog, clock: Any,
                 retention: Retention, batch: int = SHUTDOWN_BATCH) -> None:
        self.store = store
        self.retention = retention
        self.state = state
        self.rooms = rooms
        self.blocked = blocked
        self.authority = authority
        self.audit = audit
        self.clock = clock
        self.batch = batch

    async def list_rooms(self, actor: Actor, query: RoomQuery) -> list[dict[str, Any]]:
        """The rooms the actor may read, in room ID order, matching ``query``."""
        async with self.audit.recording(actor, permissions.ROOMS_READ) as entry:
            entry.organisation = query.organisation
            _, _, scope = await self.authority.scope(actor, permissions.ROOMS_READ,
                                                     query.organisation)
            found: list[dict[str, Any]] = []
            after = query.after
            while len(found) < query.limit:
                rows = await self.store.rooms_after(after, SCAN, scope)
                found.extend(await self._matching(rows, query))
                if len(rows) < SCAN:
                    break
                after = rows[-1].room_id
            return found[:query.limit]

    async def _matching(self, rows: list[RoomRow], query: RoomQuery) -> list[dict[str, Any]]:
        if query.blocked is not None:
            rows = [row for row in rows if (row.room_id in self.blocked) == query.blocked]
        room_ids = [row.room_id for row in rows]
        summaries = await self.state.get_room_summaries(room_ids, LIST_TYPES)
        aliases = await self.store.aliases_of(room_ids) if query.q else {}
        items = [list_item(row, *summaries[row.room_id], row.room_id in self.blocked)
                 for row in rows]
        return [item for item in items
                if matches(item, aliases.get(item["room_id"], []), query.q)]

    async def get(self, actor: Actor, room_id: str) -> dict[str, Any]:
        async with self.audit.recording(actor, permissions.ROOMS_READ, room_id) as entry:
            row = await self._allowed(actor, permissions.ROOMS_READ, room_id, entry)
            room = await self.rooms.get_room(room_id)
            aliases = (await self.store.aliases_of([room_id]))[room_id]
            return {**details(row, room, await self.store.block_of(room_id), aliases,
                              self.rooms.is_mine),
                    "retention": self.retention.describe(room.state)}

    async def shutdown(self, actor: Actor, room_id: str, body: dict[str, Any]
                       ) -> dict[str, Any]:
        async with self.audit.recording(actor, permissions.ROOMS_SHUTDOWN, room_id) as entry:
            reason = optional_text(body, "reason", MAX_REASON)
            await self._allowed(actor, permissions.ROOMS_SHUTDOWN, room_id, entry)
            room = await self.rooms.get_room(room_id)
            was_blocked = room_id in self.blocked
            self.blocked.add(room_id)  # no join, invite or send from now on
            members = local_members(room, self.rooms.is_mine)
            batch = members[:self.batch]
            aliases = (await self.store.aliases_of([room_id]))[room_id]
            entry.detail.update(reason=reason, aliases_removed=aliases, removing=batch)
            try:
                await self.store.block(Block(room_id, actor.user_id, self.clock.time_ms(),
                                             reason), entry.draft())
            except Exception:
                if not was_blocked:
                    self.blocked.discard(room_id)
                raise
        room.is_public = False
        failed = await self._remove(room_id, batch, reason)
        remaining = local_members(room, self.rooms.is_mine)
        return {"room_id": room_id, "blocked": True, "aliases_removed": aliases,
                "removed": [u for u in batch if u not in failed], "failed": failed,
                "remaining": len(remaining), "done": not remaining}

    async def _remove(self, room_id: str, members: list[str], reason: str | None
                      ) -> dict[str, str]:
        """Each member leaves the room; the members it failed for, with why."""
        content: dict[str, Any] = {"membership": "leave"}
        if reason:
            content["reason"] = reason
        failed: dict[str, str] = {}
        for user_id in members:
            try:
                await self.rooms.send(room_id, user_id, "m.room.member", dict(content),
                                      state_key=user_id)
            except (DomainError, EventNotStored) as e:  # refused, or not written: next call
                failed[user_id] = str(e)
        return failed

    async def _allowed(self, actor: Actor, action: str, room_id: str, entry: Recording
                       ) -> RoomRow:
        """The room's record once ``action`` on it is allowed (its organisation decides)."""
        row = await self.store.room(room_id)
        if row is None:
            raise NotFound(f"no room {room_id!r} on this node")
        entry.organisation = row.organisation
        await self.authority.require(actor, action, row.organisation)
        return row
