"""Counters a sync token carries are reserved in the database ahead of use (both engines)."""

from __future__ import annotations

from typing import Any

from broker.notifier import Notifier
from broker.typing_tracker import TypingTracker
from storage.database import Cursor, Database
from storage.stream import StreamIdGenerator
from storage.stream_reservation import Reservation
from tests.test_stream_and_notifier import FakeClock


def _mark(db: Database, name: str) -> int:
    def read(cur: Cursor) -> Any:
        return cur.select_value("SELECT reserved FROM stream_reservations WHERE name = ?",
                                (name,))

    return int(db.run_sync("read mark", read))


def test_restarted_stream_resumes_above_ids_that_left_no_row(database: Database) -> None:
    first_run = StreamIdGenerator.from_database(database)
    ids = first_run.allocate(3)
    first_run.finish(ids)
    assert StreamIdGenerator.from_database(database).current_token() >= ids[-1]


def test_stream_resumes_above_the_largest_stored_position(database: Database) -> None:
    assert Reservation(database, "stream", block=10).start(floor=500) == 500
    assert _mark(database, "stream") == 510


def test_first_block_is_written_before_any_number_is_handed_out(database: Database) -> None:
    reservation = Reservation(database, "stream", block=10)
    assert reservation.start() == 0
    assert _mark(database, "stream") == 10


def test_number_beyond_the_mark_is_reserved_at_once(database: Database) -> None:
    reservation = Reservation(database, "stream", block=10)
    reservation.start()
    reservation.cover(25)
    assert _mark(database, "stream") >= 25


def test_no_write_while_more_than_half_the_block_is_left(database: Database) -> None:
    reservation = Reservation(database, "stream", block=10)
    reservation.start()
    reservation.cover(5)
    assert _mark(database, "stream") == 10


def test_next_block_is_reserved_ahead_once_half_is_used(database: Database) -> None:
    reservation = Reservation(database, "stream", block=10)
    reservation.start()
    reservation.cover(6)
    assert _mark(database, "stream") == 20
    assert reservation.reserved == 20


def test_mark_never_goes_back(database: Database) -> None:
    Reservation(database, "stream", block=10).start(floor=100)
    Reservation(database, "stream", block=10).start(floor=0)
    assert _mark(database, "stream") == 120


def test_unknown_counter_gets_its_own_mark(database: Database) -> None:
    assert Reservation(database, "other", block=10).start() == 0
    assert _mark(database, "other") == 10


def test_typing_serial_resumes_above_a_previous_run(database: Database) -> None:
    clock = FakeClock()
    first_run = TypingTracker(clock, Notifier(clock, lambda room: []),
                              Reservation(database, "typing"))
    first_run.set_typing("!r:x", "@a:x", True, 1000)
    second_run = TypingTracker(clock, Notifier(clock, lambda room: []),
                               Reservation(database, "typing"))
    assert second_run.serial >= first_run.serial
    second_run.set_typing("!r:x", "@a:x", True, 1000)
    assert second_run.changed_since("!r:x", first_run.serial)
