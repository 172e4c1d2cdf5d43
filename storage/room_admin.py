"""What the admin API reads and writes about rooms: pages of the node's rooms with their
creator's organisation, and the rooms an admin shut down (``blocked_rooms``).

Blocking a room is one transaction with its audit entry: the room is recorded as blocked, its
local aliases are deleted and it leaves the public directory, all or nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from twisted.internet import defer

from storage.audit import AuditDraft, append_entry
from storage.database import Cursor, Database

_ROOM_COLUMNS = ("r.room_id, r.room_version, r.creator, r.is_public, r.created_ts,"
                 " m.org_id")


@dataclass(frozen=True)
class RoomRow:
    room_id: str
    room_version: str
    creator: str
    is_public: bool
    created_ts: int
    organisation: str | None  # the creator's organisation, if the creator has one here


@dataclass(frozen=True)
class Block:
    room_id: str
    blocked_by: str
    blocked_ts: int
    reason: str | None


def _room(row: Sequence[object]) -> RoomRow:
    return RoomRow(str(row[0]), str(row[1]), str(row[2]), bool(row[3]), int(str(row[4])),
                   None if row[5] is None else str(row[5]))


class RoomAdminStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def rooms_after(self, after: str, limit: int, organisations: Sequence[str] | None = None
                    ) -> defer.Deferred[list[RoomRow]]:
        """Up to ``limit`` rooms with an ID after ``after``, in room ID order; only rooms
        created by members of ``organisations`` when given."""
        def read(cur: Cursor) -> list[RoomRow]:
            where, args = "r.room_id > ?", [after]
            if organisations is not None:
                clause, values = cur.in_clause("m.org_id", list(organisations))
                where, args = f"{where} AND {clause}", [after, *values]
            rows = cur.select_all(
                f"SELECT {_ROOM_COLUMNS} FROM rooms r"
                " LEFT JOIN organisation_members m ON m.user_id = r.creator"
                f" WHERE {where} ORDER BY r.room_id LIMIT ?", (*args, limit))
            return [_room(row) for row in rows]

        return self.db.run_interaction("admin_rooms_after", read)

    def room(self, room_id: str) -> defer.Deferred[RoomRow | None]:
        def read(cur: Cursor) -> RoomRow | None:
            row = cur.select_one(
                f"SELECT {_ROOM_COLUMNS} FROM rooms r"
                " LEFT JOIN organisation_members m ON m.user_id = r.creator"
                " WHERE r.room_id = ?", (room_id,))
            return None if row is None else _room(row)

        return self.db.run_interaction("admin_room", read)

    def aliases_of(self, room_ids: Sequence[str]) -> defer.Deferred[dict[str, list[str]]]:
        """Each room's local aliases, in alias order."""
        def read(cur: Cursor) -> dict[str, list[str]]:
            found: dict[str, list[str]] = {room_id: [] for room_id in room_ids}
            for start in range(0, len(room_ids), 500):
                clause, args = cur.in_clause("room_id", list(room_ids[start:start + 500]))
                for alias, room_id in cur.select_all(
                        f"SELECT room_alias, room_id FROM room_aliases WHERE {clause}"
                        " ORDER BY room_alias", args):
                    found[room_id].append(alias)
            return found

        return self.db.run_interaction("admin_room_aliases", read)

    def blocked_ids(self) -> defer.Deferred[set[str]]:
        return self.db.run_interaction(
            "blocked_room_ids",
            lambda cur: {str(r[0]) for r in cur.select_all("SELECT room_id FROM blocked_rooms")})

    def block_of(self, room_id: str) -> defer.Deferred[Block | None]:
        def read(cur: Cursor) -> Block | None:
            row = cur.select_one("SELECT room_id, blocked_by, blocked_ts, reason"
                                 " FROM blocked_rooms WHERE room_id = ?", (room_id,))
            return None if row is None else Block(str(row[0]), str(row[1]), int(row[2]),
                                                  None if row[3] is None else str(row[3]))

        return self.db.run_interaction("blocked_room", read)

    def block(self, block: Block, entry: AuditDraft) -> defer.Deferred[list[str]]:
        """Record ``block`` (kept as first recorded if the room is blocked already), delete
        the room's local aliases and take it out of the public directory, with ``entry``;
        the aliases deleted."""
        def write(cur: Cursor) -> list[str]:
            append_entry(cur, entry)
            if cur.select_one("SELECT 1 FROM blocked_rooms WHERE room_id = ?",
                              (block.room_id,)) is None:
                cur.execute("INSERT INTO blocked_rooms (room_id, blocked_by, blocked_ts, reason)"
                            " VALUES (?, ?, ?, ?)",
                            (block.room_id, block.blocked_by, block.blocked_ts, block.reason))
            aliases = [str(r[0]) for r in cur.select_all(
                "SELECT room_alias FROM room_aliases WHERE room_id = ? ORDER BY room_alias",
                (block.room_id,))]
            cur.execute("DELETE FROM room_aliases WHERE room_id = ?", (block.room_id,))
            cur.execute("UPDATE rooms SET is_public = ? WHERE room_id = ?",
                        (False, block.room_id))
            return aliases

        return self.db.run_interaction("block_room", write)
