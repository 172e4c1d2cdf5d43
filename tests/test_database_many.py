"""Many rows in one call (``Cursor.executemany``): the same rows written, kept or refused on both
engines, whether PostgreSQL sends them as multi-row inserts or as one statement a row."""

from __future__ import annotations

from typing import Any

import pytest

from storage.database import Cursor, Database, IntegrityError
from tests.storage_helpers import result_of

ROWS = [(f"k{n}", n) for n in range(1, 1201)]  # more than one page of 500


def _table(database: Database, extra: str = "") -> None:
    result_of(database.run_interaction("table", lambda cur: cur.execute(
        f"CREATE TABLE many_rows (k TEXT PRIMARY KEY, v BIGINT NOT NULL{extra})")))


def _all(database: Database) -> list[tuple[Any, ...]]:
    return result_of(database.run_interaction("read", lambda cur: cur.select_all(
        "SELECT k, v FROM many_rows ORDER BY v")))


def _many(database: Database, sql: str, rows: list[tuple[Any, ...]]) -> None:
    def txn(cur: Cursor) -> None:
        cur.executemany(sql, rows)

    result_of(database.run_interaction("many", txn))


def test_every_row_of_an_insert_over_several_pages_is_written(database: Database) -> None:
    _table(database)
    _many(database, "INSERT INTO many_rows (k, v) VALUES (?, ?)", ROWS)
    assert _all(database) == ROWS


def test_a_repeated_key_of_an_insert_refuses_the_whole_call(database: Database) -> None:
    _table(database)
    with pytest.raises(IntegrityError):
        _many(database, "INSERT INTO many_rows (k, v) VALUES (?, ?)", [*ROWS, ("k1", 0)])
    assert _all(database) == []


def test_an_insert_that_ignores_conflicts_keeps_the_first_of_repeated_keys(
        database: Database) -> None:
    _table(database)
    _many(database, "INSERT INTO many_rows (k, v) VALUES (?, ?) ON CONFLICT (k) DO NOTHING",
          [("a", 1), ("b", 2), ("a", 3)])
    assert _all(database) == [("a", 1), ("b", 2)]


def test_an_insert_that_updates_on_conflict_takes_the_last_of_repeated_keys(
        database: Database) -> None:
    _table(database)
    _many(database, "INSERT INTO many_rows (k, v) VALUES (?, ?)"
          " ON CONFLICT (k) DO UPDATE SET v = excluded.v", [("a", 1), ("b", 2), ("a", 3)])
    assert _all(database) == [("b", 2), ("a", 3)]


def test_an_insert_with_constant_values_writes_them_to_every_row(database: Database) -> None:
    _table(database, ", c TEXT")
    _many(database, "INSERT INTO many_rows (k, v, c) VALUES (?, ?, 'x')", ROWS[:3])
    assert result_of(database.run_interaction("read", lambda cur: cur.select_all(
        "SELECT c FROM many_rows"))) == [("x",)] * 3


def test_deleting_many_keys_removes_exactly_those_rows(database: Database) -> None:
    _table(database)
    _many(database, "INSERT INTO many_rows (k, v) VALUES (?, ?)", ROWS)
    gone = [(k, v) for k, v in ROWS if v % 3 == 0] + [("absent", 0)]

    def txn(cur: Cursor) -> None:
        cur.delete_many("many_rows", ("k", "v"), gone)

    result_of(database.run_interaction("delete", txn))
    assert _all(database) == [row for row in ROWS if row[1] % 3 != 0]
