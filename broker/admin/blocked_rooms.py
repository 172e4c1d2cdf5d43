"""Rooms an admin shut down, held in memory: a rule of the access policy refuses, for them,
every join, invite, send and new alias, whichever door the request came in by (a local
client or another server).

The set is loaded in ``Node.start`` from ``blocked_rooms`` and grows with each shutdown (this
process's at once, another process's when the node reads its audit entry, within a second:
:mod:`broker.admin.changes`), so the check on the send path is a set lookup, never a database
round trip.
"""

from __future__ import annotations

from broker.access_policy import Decision, InstalledRule, Refusal
from broker.admin import permissions
from storage.audit import Change
from storage.room_admin import RoomAdminStore

BLOCKED_ACTIONS = frozenset({"join", "invite", "send", "create_alias"})
SHUT_DOWN = "room_shut_down"
RULE = InstalledRule("rooms_shut_down", (SHUT_DOWN,),
                     "Rooms the node's admins shut down take no join, invite, send or alias")


class BlockedRooms:
    def __init__(self, store: RoomAdminStore) -> None:
        self.store = store
        self._ids: set[str] = set()

    async def load(self) -> None:
        self._ids = await self.store.blocked_ids() | self._ids

    def __len__(self) -> int:
        return len(self._ids)

    def __contains__(self, room_id: object) -> bool:
        return room_id in self._ids

    def add(self, room_id: str) -> None:
        self._ids.add(room_id)

    def changes_seen(self, changes: list[Change]) -> None:
        """Take in the rooms shut down by another process (the audit log's feed)."""
        self._ids.update(c.target for c in changes if c.action == permissions.ROOMS_SHUTDOWN)

    def discard(self, room_id: str) -> None:
        self._ids.discard(room_id)

    def rule(self, decision: Decision) -> Refusal | None:
        """The access policy rule: a refusal, or None."""
        if decision.action in BLOCKED_ACTIONS and decision.room_id in self._ids:
            return Refusal(SHUT_DOWN, f"Room {decision.room_id} has been shut down by this"
                           " node's administrators")
        return None
