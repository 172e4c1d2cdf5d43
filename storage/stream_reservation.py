"""Durable reservations of counter values, so a counter never goes back after a restart.

A counter (the stream position, the typing serial) takes numbers from a block whose end is
written to ``stream_reservations`` before the first of them is handed out.  A restarted node
resumes above the mark, so a token a client holds is never reused, even when the number it
names left no row behind.  The next block is reserved in the background once less than half
of the current one is left; only a burst that outruns the background write waits for the
database on the reactor thread.
"""

from __future__ import annotations

import logging

from twisted.python.failure import Failure

from storage.database import Cursor, Database

logger = logging.getLogger(__name__)

RESERVATION_BLOCK = 1000


class Reservation:
    def __init__(self, db: Database, name: str, block: int = RESERVATION_BLOCK) -> None:
        if block < 2:
            raise ValueError("a reservation block holds at least two numbers")
        self._db = db
        self.name = name
        self.block = block
        self._reserved = 0
        self._refilling = False

    @property
    def reserved(self) -> int:
        """The highest number that may be handed out without writing a new mark."""
        return self._reserved

    def start(self, floor: int = 0) -> int:
        """Where the counter resumes: the previous run's mark or ``floor``, whichever is higher.
        Reserves the first block above it before returning."""

        def read(cur: Cursor) -> int:
            value = cur.select_value(
                "SELECT reserved FROM stream_reservations WHERE name = ?", (self.name,))
            return int(value or 0)

        resume = max(self._db.run_sync("stream_reservation_read", read), floor)
        self._write_now(resume + self.block)
        return resume

    def cover(self, position: int) -> None:
        """Make sure ``position`` is reserved before the caller hands it out."""
        if position > self._reserved:
            self._write_now(position + self.block)
        elif self._reserved - position < self.block // 2 and not self._refilling:
            self._refill(self._reserved + self.block)

    def _write_now(self, mark: int) -> None:
        self._db.run_sync("stream_reservation", self._write, mark)
        self._reserved = max(self._reserved, mark)

    def _refill(self, mark: int) -> None:
        self._refilling = True

        def done(_: None) -> None:
            self._refilling = False
            self._reserved = max(self._reserved, mark)

        def failed(failure: Failure) -> None:
            self._refilling = False
            logger.warning("reserving %s numbers up to %d failed (retried on next use): %s",
                           self.name, mark, failure.getErrorMessage())

        self._db.run_interaction("stream_reservation", self._write, mark).addCallbacks(
            done, failed)

    def _write(self, cur: Cursor, mark: int) -> None:
        cur.execute("UPDATE stream_reservations SET reserved = ? WHERE name = ? AND reserved < ?",
                    (mark, self.name, mark))
        if cur.rowcount == 0 and cur.select_one(
                "SELECT 1 FROM stream_reservations WHERE name = ?", (self.name,)) is None:
            cur.execute("INSERT INTO stream_reservations (name, reserved) VALUES (?, ?)",
                        (self.name, mark))
