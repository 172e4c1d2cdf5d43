"""Application services' push positions, and the events after a position that their
transactions are built from (storage/schema/220_appservice.sql)."""

from __future__ import annotations

from dataclasses import dataclass

from twisted.internet import defer

from protocol.events import Event
from storage.database import Cursor, Database
from storage.events import EVENT_COLUMNS, row_to_event


@dataclass(frozen=True)
class PushPosition:
    stream_position: int
    last_txn_id: int
    last_success_ts: int | None


class AppServiceStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def get_position(self, service_id: str) -> defer.Deferred[PushPosition | None]:
        def txn(cur: Cursor) -> PushPosition | None:
            row = cur.select_one(
                "SELECT stream_position, last_txn_id, last_success_ts FROM appservice_positions"
                " WHERE service_id = ?", (service_id,))
            return PushPosition(int(row[0]), int(row[1]), row[2]) if row else None

        return self.db.run_interaction("appservice_get_position", txn)

    def set_position(self, service_id: str, stream_position: int, last_txn_id: int,
                     success_ts: int | None) -> defer.Deferred[None]:
        """Record what the service has accepted (``success_ts``: when; None keeps the
        last one, for a stretch of events none of which concerned it)."""
        def txn(cur: Cursor) -> None:
            cur.execute(
                "INSERT INTO appservice_positions"
                " (service_id, stream_position, last_txn_id, last_success_ts)"
                " VALUES (?, ?, ?, ?) ON CONFLICT (service_id) DO UPDATE SET"
                " stream_position = excluded.stream_position,"
                " last_txn_id = excluded.last_txn_id,"
                " last_success_ts = COALESCE(excluded.last_success_ts,"
                " appservice_positions.last_success_ts)",
                (service_id, stream_position, last_txn_id, success_ts))

        return self.db.run_interaction("appservice_set_position", txn)

    def events_after(self, after: int, up_to: int, limit: int) -> defer.Deferred[list[Event]]:
        """Timeline events of every room with ``after < stream_ordering <= up_to``, the
        ``limit`` oldest, oldest first."""
        def txn(cur: Cursor) -> list[Event]:
            rows = cur.select_all(
                f"SELECT {EVENT_COLUMNS} FROM events e JOIN rooms r ON r.room_id = e.room_id"
                " WHERE e.stream_ordering > ? AND e.stream_ordering <= ? AND e.outlier = ?"
                " ORDER BY e.stream_ordering LIMIT ?", (after, up_to, False, limit))
            return [row_to_event(row, cur.at_rest) for row in rows]

        return self.db.run_interaction("appservice_events_after", txn)

    def count_events_after(self, after: int, up_to: int) -> defer.Deferred[int]:
        """How many timeline events lie in ``(after, up_to]`` (a service's backlog, for
        admins: not asked on any hot path)."""
        def txn(cur: Cursor) -> int:
            row = cur.select_one(
                "SELECT COUNT(*) FROM events WHERE stream_ordering > ? AND stream_ordering <= ?"
                " AND outlier = ?", (after, up_to, False))
            return int(row[0]) if row else 0

        return self.db.run_interaction("appservice_count_events_after", txn)
