"""The read-only notice rooms the node made (:mod:`broker.notice_rooms`): one per (sender,
recipient, kind), looked up in batches and recorded in batches."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from twisted.internet import defer

from storage.database import Cursor, Database

# Recipients looked up per statement (well under both engines' limits on parameters).
LOOKUP_BATCH = 500


@dataclass(frozen=True)
class NoticeRoom:
    sender: str
    recipient: str
    kind: str
    room_id: str
    leave_allowed: bool
    created_ts: int


class NoticeRoomStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def find(self, sender: str, kind: str, recipients: Sequence[str]
             ) -> defer.Deferred[dict[str, NoticeRoom]]:
        """The rooms of ``sender`` of this ``kind`` to those of ``recipients`` who have one."""
        def read(cur: Cursor) -> dict[str, NoticeRoom]:
            return find_txn(cur, sender, kind, recipients)

        return self.db.run_interaction("notice_rooms_find", read)

    def add(self, rooms: Sequence[NoticeRoom]) -> defer.Deferred[None]:
        def write(cur: Cursor) -> None:
            cur.executemany(
                "INSERT INTO notice_rooms (sender, recipient, kind, room_id, leave_allowed,"
                " created_ts) VALUES (?, ?, ?, ?, ?, ?)",
                [(r.sender, r.recipient, r.kind, r.room_id, r.leave_allowed, r.created_ts)
                 for r in rooms])

        return self.db.run_interaction("notice_rooms_add", write)

    def set_leave_allowed(self, room_ids: Sequence[str], allowed: bool) -> defer.Deferred[None]:
        def write(cur: Cursor) -> None:
            cur.executemany("UPDATE notice_rooms SET leave_allowed = ? WHERE room_id = ?",
                            [(allowed, room_id) for room_id in room_ids])

        return self.db.run_interaction("notice_rooms_leave_allowed", write)


def find_txn(cur: Cursor, sender: str, kind: str, recipients: Sequence[str]
             ) -> dict[str, NoticeRoom]:
    found: dict[str, NoticeRoom] = {}
    for start in range(0, len(recipients), LOOKUP_BATCH):
        where, args = cur.in_clause("recipient", list(recipients[start:start + LOOKUP_BATCH]))
        for recipient, room_id, leave_allowed, created_ts in cur.select_all(
                "SELECT recipient, room_id, leave_allowed, created_ts FROM notice_rooms"
                f" WHERE sender = ? AND kind = ? AND {where}", [sender, kind, *args]):
            found[str(recipient)] = NoticeRoom(sender, str(recipient), kind, str(room_id),
                                               bool(leave_allowed), int(created_ts))
    return found
