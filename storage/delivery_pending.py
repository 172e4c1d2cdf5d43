"""Notices of other nodes not yet received by a user of this node (broker/apps/
delivery_reports.py): read whole at start, changed in batches."""

from __future__ import annotations

from collections.abc import Sequence

from twisted.internet import defer

from storage.database import Cursor, Database

# (user_id, event_id, room_id, origin, position)
PendingRow = tuple[str, str, str, str, int]


class DeliveryPendingStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def load(self) -> defer.Deferred[list[PendingRow]]:
        def txn(cur: Cursor) -> list[PendingRow]:
            return [(str(u), str(e), str(r), str(o), int(p)) for u, e, r, o, p in cur.select_all(
                "SELECT user_id, event_id, room_id, origin, position FROM delivery_pending"
                " ORDER BY position")]

        return self.db.run_interaction("delivery_pending_load", txn)

    def change(self, added: Sequence[PendingRow],
               removed: Sequence[tuple[str, str]]) -> defer.Deferred[None]:
        """Add ``added`` and delete ``removed`` ((user_id, event_id)), in one transaction."""
        def txn(cur: Cursor) -> None:
            cur.executemany(
                "INSERT INTO delivery_pending (user_id, event_id, room_id, origin, position)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT (user_id, event_id) DO NOTHING", added)
            cur.executemany(
                "DELETE FROM delivery_pending WHERE user_id = ? AND event_id = ?", removed)

        return self.db.run_interaction("delivery_pending_change", txn)
