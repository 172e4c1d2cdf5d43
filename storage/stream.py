"""The one monotonically increasing stream position shared by everything /sync reports.

Events, receipts, account data and every other change a client learns about through /sync take
their ``stream_id`` from one :class:`StreamIdGenerator`.  Ids are handed out before the write and
the generator only advances :meth:`current_token` past an id once it and every smaller id have
been persisted, so a reader never skips a change that commits late.  Every id is reserved in the
database before it is handed out (:mod:`storage.stream_reservation`), so a restarted node
resumes above every position a client may hold.
"""

from __future__ import annotations

import threading

from storage.database import Cursor, Database
from storage.stream_reservation import Reservation


class StreamIdGenerator:
    def __init__(self, start: int, reservation: Reservation | None = None) -> None:
        self._next = start + 1
        self._current = start
        self._pending: set[int] = set()
        self._lock = threading.Lock()
        self._reservation = reservation

    @classmethod
    def from_database(cls, db: Database) -> StreamIdGenerator:
        tables = STREAM_TABLES

        def max_position(cur: Cursor) -> int:
            best = 0
            for table, column in tables:
                value = cur.select_value(f"SELECT MAX({column}) FROM {table}")
                best = max(best, int(value or 0))
            return best

        reservation = Reservation(db, "stream")
        return cls(reservation.start(db.run_sync("stream_max", max_position)), reservation)

    def allocate(self, count: int = 1) -> list[int]:
        """Reserve ``count`` consecutive ids; each must later be passed to :meth:`finish`."""
        with self._lock:
            ids = list(range(self._next, self._next + count))
            if self._reservation is not None and ids:
                self._reservation.cover(ids[-1])
            self._next += count
            self._pending.update(ids)
        return ids

    def finish(self, ids: list[int]) -> None:
        """Mark ids persisted (or abandoned) and advance the current token."""
        with self._lock:
            self._pending.difference_update(ids)
            new = (min(self._pending) - 1) if self._pending else self._next - 1
            if new > self._current:
                self._current = new

    def current_token(self) -> int:
        return self._current


# Every (table, column) holding positions of this stream: the stream resumes after the largest.
STREAM_TABLES: tuple[tuple[str, str], ...] = (
    ("events", "stream_ordering"),
    ("receipts", "stream_id"),
    ("account_data", "stream_id"),
    ("remote_invites", "stream_id"),
    ("remote_knocks", "stream_id"),
    ("to_device_inbox", "stream_id"),
    ("device_list_changes", "stream_id"),
    ("cross_signing_keys", "stream_id"),
    ("cross_signing_signatures", "stream_id"),
)
