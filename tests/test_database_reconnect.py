"""storage/database.py: a PostgreSQL connection the server closed under the node is replaced.

Only PostgreSQL has a server that can go away under an open connection (a restart, a terminated
backend, a network cut); SQLite's file has no such state, so these run on PostgreSQL only."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from storage.database import Cursor, Database, DatabaseConfig
from tests.storage_helpers import POSTGRES_ENV, drop_postgres_database, postgres_database_or_skip


@pytest.fixture
def postgres() -> Iterator[tuple[Database, str]]:
    dsn, name = postgres_database_or_skip()
    db = Database(DatabaseConfig(engine="postgres", dsn=dsn), synchronous=True)
    try:
        yield db, name
    finally:
        db.close()
        drop_postgres_database(name)


def one(cur: Cursor) -> int:
    return int(cur.select_value("SELECT 1"))


def cut_connections(name: str) -> int:
    """Terminate every backend of database ``name``, as a server restart would."""
    import psycopg2

    conn = psycopg2.connect(os.environ[POSTGRES_ENV])
    conn.autocommit = True
    cur = conn.cursor()
    cur.execute("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE datname = %s", (name,))
    row = cur.fetchone()
    conn.close()
    return int(row[0]) if row else 0


def test_the_transaction_that_finds_its_connection_cut_fails(
        postgres: tuple[Database, str]) -> None:
    db, name = postgres
    assert db.run_sync("ping", one) == 1
    assert cut_connections(name) == 1
    with pytest.raises(Exception, match="terminat|closed"):
        db.run_sync("ping", one)


def test_the_next_transaction_opens_a_new_connection(postgres: tuple[Database, str]) -> None:
    db, name = postgres
    db.run_sync("ping", one)
    cut_connections(name)
    with pytest.raises(Exception, match="terminat|closed"):
        db.run_sync("ping", one)
    assert db.run_sync("ping", one) == 1
