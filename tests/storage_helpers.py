"""Helpers for storage tests: run on both engines, read results of synchronous Deferreds."""

from __future__ import annotations

import os
import uuid
from typing import Any

import pytest

from storage.database import Database, DatabaseConfig, fired_result
from storage.migrations import apply_migrations

POSTGRES_ENV = "BROKER_TEST_POSTGRES"
POSTGRES_SKIP = (
    f"PostgreSQL tests need {POSTGRES_ENV} (a libpq DSN for a server where we may create databases,"
    " e.g. 'host=127.0.0.1 user=postgres dbname=postgres'); .ci/run sets it"
)


result_of = fired_result


def create_postgres_database() -> tuple[str, str]:
    """A fresh, empty PostgreSQL database; returns (dsn, name)."""
    import psycopg2

    admin_dsn = os.environ[POSTGRES_ENV]
    name = "broker_test_" + uuid.uuid4().hex[:12]
    conn = psycopg2.connect(admin_dsn)
    conn.autocommit = True
    conn.cursor().execute(f"CREATE DATABASE {name}")
    conn.close()
    params = dict(part.split("=", 1) for part in admin_dsn.split())
    params["dbname"] = name
    return " ".join(f"{k}={v}" for k, v in params.items()), name


def drop_postgres_database(name: str) -> None:
    import psycopg2

    conn = psycopg2.connect(os.environ[POSTGRES_ENV])
    conn.autocommit = True
    conn.cursor().execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    conn.close()


def postgres_database_or_skip() -> tuple[str, str]:
    """A fresh PostgreSQL database (dsn, name); skips the test without a PostgreSQL server."""
    if not os.environ.get(POSTGRES_ENV):
        pytest.skip(POSTGRES_SKIP)
    return create_postgres_database()


def make_database(engine: str, tmp_path: Any) -> tuple[Database, Any]:
    """A migrated synchronous Database on ``engine`` and a cleanup function."""
    if engine == "postgres":
        dsn, name = postgres_database_or_skip()
        db = Database(DatabaseConfig(engine="postgres", dsn=dsn), synchronous=True)

        def cleanup() -> None:
            db.close()
            drop_postgres_database(name)

    else:
        db = Database(DatabaseConfig(engine="sqlite", path=str(tmp_path / "test.db")),
                      synchronous=True)
        cleanup = db.close
    apply_migrations(db)
    return db, cleanup


def at_once(database: Database, work: Any, arguments: list[Any]) -> None:
    """Run ``work(db, argument)`` for each argument on a thread of its own, each with its own
    connection to ``database``, all released at the same moment; returns when all are done."""
    import threading

    connections = [Database(database.config, synchronous=True) for _ in arguments]
    barrier = threading.Barrier(len(arguments))

    def run(db: Database, argument: Any) -> None:
        barrier.wait()
        work(db, argument)

    threads = [threading.Thread(target=run, args=(db, argument))
               for db, argument in zip(connections, arguments, strict=True)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for db in connections:
        db.close()
