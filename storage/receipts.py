"""Read receipts (``m.read``, ``m.read.private``), one row per room, type, user and thread.

A row holds the user's current receipt for that (type, thread): re-posting replaces it, so a
receipt never appears twice.  Each write carries a stream id from the node's one stream, so /sync
asks "which receipts changed since token" with a range query.  ``thread_id`` is '' for an
unthreaded receipt.  Reads answer the ``m.receipt`` EDU content shape::

    {event_id: {receipt_type: {user_id: {"ts": ..., "thread_id"?: ...}}}}

``m.read.private`` receipts are only ever shown to their own user.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from twisted.internet import defer

from storage.database import Cursor, Database

READ = "m.read"
READ_PRIVATE = "m.read.private"
UNTHREADED = ""

JsonDict = dict[str, Any]
RoomReceipts = dict[str, JsonDict]  # room_id -> m.receipt content


@dataclass(frozen=True)
class Receipt:
    room_id: str
    receipt_type: str
    user_id: str
    event_id: str
    thread_id: str  # UNTHREADED ('') or "main" or a thread root event id
    ts: int


def _receipt_data(ts: int, thread_id: str) -> JsonDict:
    data: JsonDict = {"ts": ts}
    if thread_id != UNTHREADED:
        data["thread_id"] = thread_id
    return data


def _content_by_room(rows: Sequence[Sequence[Any]]) -> RoomReceipts:
    """Group (room_id, receipt_type, user_id, event_id, data) rows into m.receipt contents."""
    out: RoomReceipts = {}
    for room_id, receipt_type, user_id, event_id, data in rows:
        content = out.setdefault(room_id, {})
        content.setdefault(event_id, {}).setdefault(receipt_type, {})[user_id] = json.loads(data)
    return out


class ReceiptStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    # -- writes ------------------------------------------------------------------------------
    def set_receipt(self, receipt: Receipt, stream_id: int) -> defer.Deferred[bool]:
        """Store ``receipt`` as the user's current one for its (room, type, thread).

        Returns False (and writes nothing) when the same event is already the receipt there.
        """

        def txn(cur: Cursor) -> bool:
            key = (receipt.room_id, receipt.receipt_type, receipt.user_id, receipt.thread_id)
            current = cur.select_value(
                "SELECT event_id FROM receipts WHERE room_id = ? AND receipt_type = ?"
                " AND user_id = ? AND thread_id = ?", key)
            if current == receipt.event_id:
                return False
            data = json.dumps(_receipt_data(receipt.ts, receipt.thread_id),
                              separators=(",", ":"))
            cur.execute(
                "INSERT INTO receipts"
                " (room_id, receipt_type, user_id, thread_id, event_id, data, stream_id)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (room_id, receipt_type, user_id, thread_id) DO UPDATE SET"
                " event_id = excluded.event_id, data = excluded.data,"
                " stream_id = excluded.stream_id",
                (*key, receipt.event_id, data, stream_id))
            return True

        return self.db.run_interaction("set_receipt", txn)

    # -- reads -------------------------------------------------------------------------------
    def get_receipt(
        self, room_id: str, receipt_type: str, user_id: str, thread_id: str = UNTHREADED
    ) -> defer.Deferred[str | None]:
        """The event id of one user's current receipt, or None."""
        return self.db.run_interaction(
            "get_receipt",
            lambda cur: cur.select_value(
                "SELECT event_id FROM receipts WHERE room_id = ? AND receipt_type = ?"
                " AND user_id = ? AND thread_id = ?",
                (room_id, receipt_type, user_id, thread_id)))

    def get_receipts_for_rooms(
        self, room_ids: list[str], user_id: str
    ) -> defer.Deferred[RoomReceipts]:
        """Current receipts of ``room_ids`` as seen by ``user_id`` (others' private ones hidden).

        Rooms without receipts are absent from the answer.
        """
        return self.db.run_interaction(
            "get_receipts_for_rooms", _select_receipts_txn, room_ids, user_id, "", ())

    def get_receipts_changed(
        self, room_ids: list[str], user_id: str, since: int, up_to: int
    ) -> defer.Deferred[RoomReceipts]:
        """Like :meth:`get_receipts_for_rooms`, only receipts with since < stream_id <= up_to."""
        return self.db.run_interaction(
            "get_receipts_changed", _select_receipts_txn, room_ids, user_id,
            " AND stream_id > ? AND stream_id <= ?", (since, up_to))


def _select_receipts_txn(cur: Cursor, room_ids: list[str], viewer: str, condition: str,
                         condition_args: Sequence[Any]) -> RoomReceipts:
    """Receipts of ``room_ids`` matching ``condition``; private ones only of ``viewer``."""
    rows: list[tuple[Any, ...]] = []
    for start in range(0, len(room_ids), 500):
        clause, args = cur.in_clause("room_id", room_ids[start:start + 500])
        rows.extend(cur.select_all(
            "SELECT room_id, receipt_type, user_id, event_id, data FROM receipts"
            f" WHERE {clause}{condition} AND (receipt_type <> ? OR user_id = ?)",
            (*args, *condition_args, READ_PRIVATE, viewer)))
    return _content_by_room(rows)
