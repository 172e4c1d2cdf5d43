"""What the retention purge leaves on disk: nothing of the content it removed.  On SQLite the
bytes of the database file and its write-ahead log no longer hold the text (deleted content is
zeroed, freed pages go back, the WAL is checkpointed and truncated); on PostgreSQL the old row
versions (dead tuples) are vacuumed away once the purge reports done."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from twisted.internet import defer

from storage.database import Database, DatabaseConfig
from storage.migrations import apply_migrations
from storage.reclaim import reclaim
from tests.inprocess_node import InProcessNode
from tests.node_engines import Engine, engines, run_for
from tests.retention_room import Room
from tests.storage_helpers import result_of

LIFETIME_S = 3600
RETENTION = {"enabled": True, "default_policy": {"max_lifetime": f"{LIFETIME_S}s"},
             "purge_interval": "10m"}
MARKER = "zq-marker-7f3e91c4-never-on-disk"

engine = engines({"retention": RETENTION})


def sqlite_files(local: InProcessNode) -> list[Path]:
    path = Path(local.node.db.config.path)
    return [p for p in (path, path.with_name(path.name + "-wal")) if p.exists()]


def disk_holds(local: InProcessNode, text: str) -> list[str]:
    """The names of the node's SQLite files whose bytes hold ``text``."""
    return [p.name for p in sqlite_files(local) if text.encode() in p.read_bytes()]


def pragma(db: Database, name: str) -> int:
    return int(result_of(db.run_maintenance("test", f"PRAGMA {name}", rows=True))[0][0])


def purge_one_message(engine: Engine, body: str) -> InProcessNode:
    """A node with one message (``body``) sent, a few kept beside it, expired and purged."""
    local = engine.node()
    room = Room(local)
    room.send(body)
    for i in range(20):
        room.send(f"ordinary message {i} " + "x" * 6000)  # past a page: overflow pages
    run_for(local, LIFETIME_S + 1)
    assert local.settle(local.node.retention_purge.purge(), turns=200) == 21
    return local


def test_the_text_was_on_disk_before_the_purge(tmp_path: Path) -> None:
    local = InProcessNode(tmp_path, config={"retention": RETENTION})
    try:
        Room(local).send(MARKER)
        assert disk_holds(local, MARKER)
    finally:
        local.close()


@pytest.mark.parametrize("engine", ["sqlite"], indirect=True)
def test_purged_text_is_in_neither_the_database_file_nor_its_wal(engine: Engine) -> None:
    local = purge_one_message(engine, MARKER)
    assert disk_holds(local, MARKER) == []
    assert disk_holds(local, "ordinary message") == []


@pytest.mark.parametrize("engine", ["sqlite"], indirect=True)
def test_the_wal_is_truncated_after_a_purge(engine: Engine) -> None:
    local = purge_one_message(engine, MARKER)
    wal = Path(local.node.db.config.path + "-wal")
    assert not wal.exists() or wal.stat().st_size == 0


@pytest.mark.parametrize("engine", ["sqlite"], indirect=True)
def test_a_new_sqlite_database_reclaims_freed_pages_incrementally(engine: Engine) -> None:
    local = purge_one_message(engine, MARKER)
    assert (pragma(local.node.db, "auto_vacuum"), pragma(local.node.db, "freelist_count")) == (
        2, 0)


def test_a_database_made_without_auto_vacuum_is_converted_by_the_first_reclaim(
        tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    sqlite3.connect(path).execute("CREATE TABLE made_before (x TEXT)").connection.close()
    db = Database(DatabaseConfig(engine="sqlite", path=str(path)), synchronous=True)
    try:
        apply_migrations(db)
        before = pragma(db, "auto_vacuum")
        done = result_of(defer.ensureDeferred(reclaim(db, ["events"])))
        after = pragma(db, "auto_vacuum")
    finally:
        db.close()
    assert (before, done.statements[0], after) == (0, "VACUUM", 2)


def dead_tuples(local: InProcessNode, table: str) -> int:
    """Dead row versions in a PostgreSQL table, counted by pgstattuple (skips without it)."""
    db = local.node.db
    if not result_of(db.run_interaction("test_pgstattuple", lambda cur: cur.select_value(
            "SELECT COUNT(*) FROM pg_available_extensions WHERE name = 'pgstattuple'"))):
        pytest.skip("the pgstattuple extension is not available")
    result_of(db.run_interaction("test_pgstattuple", lambda cur: cur.execute(
        "CREATE EXTENSION IF NOT EXISTS pgstattuple")))
    return int(result_of(db.run_interaction("test_dead_tuples", lambda cur: cur.select_value(
        "SELECT dead_tuple_count FROM pgstattuple(?)", (table,)))))


@pytest.mark.parametrize("engine", ["postgres"], indirect=True)
def test_no_dead_tuples_of_purged_events_are_left_when_the_purge_is_done(
        engine: Engine) -> None:
    local = purge_one_message(engine, MARKER)
    assert dead_tuples(local, "events") == 0
