"""Auto-delete messages waiting for their redaction (``event_expiry``).

Rows are written with their event (``EventStore.persist_batch``) and deleted with the event's
redaction, in those transactions; this store reads the due ones and drops those that cannot be
redacted.
"""

from __future__ import annotations

from dataclasses import dataclass

from twisted.internet import defer

from storage.database import Cursor, Database


@dataclass(frozen=True)
class DueMessage:
    event_id: str
    room_id: str
    sender: str
    expires_ts: int


class EventExpiryStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def due(self, now_ms: int, limit: int) -> defer.Deferred[list[DueMessage]]:
        """Up to ``limit`` messages due at ``now_ms``, the earliest first."""
        def txn(cur: Cursor) -> list[DueMessage]:
            rows = cur.select_all(
                "SELECT event_id, room_id, sender, expires_ts FROM event_expiry"
                " WHERE expires_ts <= ? ORDER BY expires_ts, event_id LIMIT ?",
                (now_ms, limit))
            return [DueMessage(row[0], row[1], row[2], int(row[3])) for row in rows]

        return self.db.run_interaction("event_expiry_due", txn)

    def expiry_of(self, event_id: str) -> defer.Deferred[int | None]:
        """When a message is due (None: it is not waiting)."""
        def txn(cur: Cursor) -> int | None:
            row = cur.select_one("SELECT expires_ts FROM event_expiry WHERE event_id = ?",
                                 (event_id,))
            return None if row is None else int(row[0])

        return self.db.run_interaction("event_expiry_of", txn)

    def drop(self, event_ids: list[str]) -> defer.Deferred[None]:
        """Stop waiting for these messages (they cannot be redacted)."""
        def txn(cur: Cursor) -> None:
            cur.executemany("DELETE FROM event_expiry WHERE event_id = ?",
                            [(event_id,) for event_id in event_ids])

        return self.db.run_interaction("event_expiry_drop", txn)
