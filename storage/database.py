"""One Database over SQLite (embedded default) or PostgreSQL, run on a thread pool.

Every piece of storage code goes through :meth:`Database.run_interaction`, which runs a function
with a cursor inside one transaction on a pool thread: it commits on return and rolls back on any
exception, so nothing half-written stays behind.  SQL is written once with ``?`` placeholders; the
PostgreSQL engine rewrites them to ``%s``.
"""

from __future__ import annotations

import logging
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar

from twisted.internet import defer, threads
from twisted.python.threadpool import ThreadPool

from storage.at_rest import AtRest

logger = logging.getLogger(__name__)

R = TypeVar("R")
P = ParamSpec("P")

# Told of each transaction as it ends: its name, how long it took (seconds) and whether it
# committed.  Called on the pool thread, so it must be cheap and thread-safe.
TransactionObserver = Callable[[str, float, bool], None]

# SQLite overwrites deleted content with zeros (secure_delete) so that what a purge removes does
# not survive in freed space; a new database reclaims freed pages on request (auto_vacuum
# INCREMENTAL, which SQLite reads only before the first table exists).  docs/admin/retention.md.
SQLITE_SECURE_DELETE = "ON"
SQLITE_AUTO_VACUUM_INCREMENTAL = 2


@dataclass(frozen=True)
class DatabaseConfig:
    """Which engine to use and how to reach it."""

    engine: str  # "sqlite" or "postgres"
    path: str = ""  # sqlite file
    dsn: str = ""  # postgres connection string
    pool_size: int = 4


class IntegrityError(Exception):
    """A uniqueness or foreign-key constraint refused a write (engine-neutral)."""


# ``INSERT ... VALUES (%s, ...) [ON CONFLICT ...]`` without an update on conflict: its rows
# can be written as one multi-row statement (an update on conflict could meet its own row).
_MULTI_ROW_INSERT = re.compile(r"(INSERT\s.*?\sVALUES\s*)(\((?:%s|,|\s)+\))(.*)", re.S | re.I)


def _postgres_many(raw: Any, sql: str, rows: Sequence[Sequence[Any]]) -> None:
    """Rows of an insert in multi-row statements of 500 rows (a round trip and a statement
    each: several times cheaper to run than as many one-row statements), anything else as
    statements sent 500 at a time."""
    from psycopg2.extras import execute_batch, execute_values

    insert = _MULTI_ROW_INSERT.fullmatch(sql.strip())
    if insert is not None and "DO UPDATE" not in insert.group(3).upper():
        head, template, tail = insert.groups()
        execute_values(raw, f"{head}%s{tail}", rows, template=template, page_size=500)
    else:
        execute_batch(raw, sql, rows, page_size=500)


class Cursor:
    """A thin, engine-neutral cursor: ``?`` placeholders, rows as tuples."""

    def __init__(self, raw: Any, engine: str, at_rest: AtRest | None = None) -> None:
        self._raw = raw
        self.engine = engine
        # The cipher stores seal their content columns with (off unless a key is configured).
        self.at_rest = at_rest if at_rest is not None else AtRest()

    def _sql(self, sql: str) -> str:
        return sql.replace("?", "%s") if self.engine == "postgres" else sql

    def execute(self, sql: str, args: Sequence[Any] = ()) -> Cursor:
        with _integrity_errors():
            self._raw.execute(self._sql(sql), tuple(args))
        return self

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        rows = [tuple(r) for r in rows]
        if not rows:
            return
        with _integrity_errors():
            if self.engine == "postgres":
                _postgres_many(self._raw, self._sql(sql), rows)
            else:
                self._raw.executemany(sql, rows)

    def delete_many(self, table: str, columns: Sequence[str],
                    keys: Sequence[Sequence[Any]]) -> None:
        """Delete the rows of ``table`` whose ``columns`` hold one of ``keys``: on PostgreSQL
        a statement per 300 keys (a row-value list), not one a key; on SQLite a statement a
        key (no round trips there, and its plan of a row-value list scans the whole table)."""
        if self.engine != "postgres":
            self.executemany(f"DELETE FROM {table} WHERE "
                             + " AND ".join(f"{column} = ?" for column in columns), keys)
            return
        names = ", ".join(columns)
        marks = "(" + ", ".join("?" for _ in columns) + ")"
        for start in range(0, len(keys), 300):
            chunk = keys[start:start + 300]
            self.execute(f"DELETE FROM {table} WHERE ({names}) IN"
                         f" (VALUES {', '.join(marks for _ in chunk)})",
                         [value for key in chunk for value in key])

    def fetchone(self) -> tuple[Any, ...] | None:
        row = self._raw.fetchone()
        return tuple(row) if row is not None else None

    def fetchall(self) -> list[tuple[Any, ...]]:
        return [tuple(r) for r in self._raw.fetchall()]

    @property
    def rowcount(self) -> int:
        return int(self._raw.rowcount)

    def select_one(self, sql: str, args: Sequence[Any] = ()) -> tuple[Any, ...] | None:
        return self.execute(sql, args).fetchone()

    def select_all(self, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self.execute(sql, args).fetchall()

    def select_value(self, sql: str, args: Sequence[Any] = ()) -> Any:
        row = self.select_one(sql, args)
        return row[0] if row else None

    def in_clause(self, column: str, values: Sequence[Any]) -> tuple[str, list[Any]]:
        """``column IN (?, ?, ...)`` and its arguments; never empty SQL."""
        if not values:
            return "1 = 0", []
        return f"{column} IN ({', '.join('?' for _ in values)})", list(values)


def fired_result(d: defer.Deferred[R]) -> R:
    """The result of an already-fired Deferred (a synchronous Database); re-raises failures."""
    from twisted.python.failure import Failure

    results: list[Any] = []
    d.addBoth(results.append)
    if not results:
        raise RuntimeError("Deferred has not fired: is the Database synchronous?")
    if isinstance(results[0], Failure):
        results[0].raiseException()
    return results[0]  # type: ignore[no-any-return]


@contextmanager
def _integrity_errors() -> Iterator[None]:
    """Raise either engine's constraint violation as our IntegrityError."""
    try:
        yield
    except sqlite3.IntegrityError as e:
        raise IntegrityError(str(e)) from e
    except Exception as e:
        if _is_pg_integrity_error(e):
            raise IntegrityError(str(e)) from e
        raise


def _is_pg_integrity_error(e: Exception) -> bool:
    try:
        import psycopg2
    except ImportError:  # pragma: no cover - psycopg2 is a dependency
        return False
    return isinstance(e, psycopg2.IntegrityError)


def _is_retryable(e: Exception) -> bool:
    if isinstance(e, sqlite3.OperationalError) and "locked" in str(e):
        return True
    try:
        import psycopg2.errors
    except ImportError:  # pragma: no cover
        return False
    return isinstance(e, psycopg2.errors.SerializationFailure | psycopg2.errors.DeadlockDetected)


class Database:
    """A pool of connections to one database, each used by one pool thread."""

    def __init__(
        self, config: DatabaseConfig, reactor: Any = None, *, synchronous: bool = False,
        at_rest: AtRest | None = None,
    ) -> None:
        if config.engine not in ("sqlite", "postgres"):
            raise ValueError(f"unknown database engine {config.engine!r}")
        from twisted.internet import reactor as default_reactor

        self.config = config
        self.engine = config.engine
        # Synchronous mode runs interactions on the calling thread and returns fired Deferreds:
        # for scripts and storage tests that run without a reactor.
        self.synchronous = synchronous
        # Encryption at rest: every transaction's cursor carries it (storage/at_rest.py).
        self.at_rest = at_rest if at_rest is not None else AtRest()
        self._reactor: Any = reactor or default_reactor
        # SQLite allows one writer at a time: a single thread avoids lock contention entirely and
        # keeps group commits fast.  PostgreSQL benefits from a few parallel connections.
        size = 1 if self.engine == "sqlite" else max(1, config.pool_size)
        self._pool = ThreadPool(minthreads=1, maxthreads=size, name=f"db-{self.engine}")
        self._local = threading.local()
        self._connections: list[Any] = []
        self._lock = threading.Lock()
        self._started = False
        self.observe: TransactionObserver | None = None  # the node's metrics, when wired

    # -- lifecycle --------------------------------------------------------------------------
    def start(self) -> None:
        if not self._started:
            self._pool.start()
            self._reactor.addSystemEventTrigger("during", "shutdown", self.close)
            self._started = True

    def close(self) -> None:
        if self._started:
            self._pool.stop()
            self._started = False
        with self._lock:
            for conn in self._connections:
                try:
                    conn.close()
                except Exception:  # pragma: no cover - best effort on shutdown
                    pass
            self._connections.clear()

    def pool_stats(self) -> tuple[int, int, int]:
        """The pool's threads at most, those running a transaction now, and the transactions
        waiting for a thread (read without a lock: a snapshot for metrics)."""
        return self._pool.max, len(self._pool.working), self._pool._queue.qsize()

    def connect(self) -> Any:
        """Open a new raw connection (used by pool threads and by migrations)."""
        if self.engine == "sqlite":
            conn = sqlite3.connect(self.config.path, check_same_thread=False, isolation_level=None)
            conn.execute(f"PRAGMA auto_vacuum={SQLITE_AUTO_VACUUM_INCREMENTAL}")
            conn.execute(f"PRAGMA secure_delete={SQLITE_SECURE_DELETE}")
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute("PRAGMA busy_timeout=5000")
            return conn
        import psycopg2

        conn = psycopg2.connect(self.config.dsn)
        conn.set_session(isolation_level="READ COMMITTED")
        return conn

    def _thread_connection(self) -> Any:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self.connect()
            self._local.conn = conn
            with self._lock:
                self._connections.append(conn)
        return conn

    def _lost(self, conn: Any) -> bool:
        """Whether a PostgreSQL connection was closed under the node (a server restart, a
        terminated backend, a network cut): psycopg2 marks it closed once it notices."""
        return self.engine == "postgres" and bool(conn.closed)

    def _forget_connection(self, conn: Any) -> None:
        self._local.conn = None
        with self._lock:
            if conn in self._connections:
                self._connections.remove(conn)

    # -- transactions -----------------------------------------------------------------------
    def run_sync(self, desc: str, func: Callable[..., R], *args: Any, **kwargs: Any) -> R:
        """Run ``func(cursor, *args)`` in one transaction on the calling thread."""
        conn = self._thread_connection()
        for attempt in range(5):
            start = time.perf_counter()
            raw = conn.cursor()
            try:
                if self.engine == "sqlite":
                    raw.execute("BEGIN IMMEDIATE")
                result = func(Cursor(raw, self.engine, self.at_rest), *args, **kwargs)
                conn.commit() if self.engine == "postgres" else raw.execute("COMMIT")
                elapsed = time.perf_counter() - start
                if elapsed > 0.5:
                    logger.info("slow transaction %s took %.0f ms", desc, elapsed * 1000)
                if self.observe is not None:
                    self.observe(desc, elapsed, True)
                return result
            except Exception as e:
                if self._lost(conn):  # the server went away: the next transaction reconnects
                    logger.warning("transaction %s lost its database connection: %s", desc, e)
                    self._forget_connection(conn)
                else:
                    try:
                        conn.rollback()
                    except Exception:  # pragma: no cover
                        logger.exception("rollback failed in %s", desc)
                if _is_retryable(e) and attempt < 4:
                    logger.warning("retrying transaction %s after %s", desc, e)
                    time.sleep(0.01 * (2**attempt))
                    continue
                if self.observe is not None:
                    self.observe(desc, time.perf_counter() - start, False)
                raise
            finally:
                raw.close()
        raise RuntimeError("unreachable")  # pragma: no cover

    def maintain_sync(self, desc: str, statement: str, *, rows: bool = False
                      ) -> list[tuple[Any, ...]]:
        """Run a statement that must run outside a transaction (``VACUUM``, SQLite's pragmas
        and checkpoints) to completion on the calling thread's connection; its rows if
        ``rows``.  On SQLite a statement read for no rows runs as a script, which steps it to
        the end (``PRAGMA incremental_vacuum`` frees one page per step)."""
        conn = self._thread_connection()
        start = time.perf_counter()
        try:
            if self.engine == "sqlite" and not rows:
                conn.executescript(statement + ";")
                return []
            if self.engine == "postgres":
                conn.autocommit = True
            raw = conn.cursor()
            try:
                raw.execute(statement)
                return [tuple(r) for r in raw.fetchall()] if rows else []
            finally:
                raw.close()
                if self.engine == "postgres":
                    conn.autocommit = False
        finally:
            elapsed = (time.perf_counter() - start) * 1000
            if elapsed > 500:
                logger.info("slow maintenance %s took %.0f ms", desc, elapsed)

    def run_maintenance(self, desc: str, statement: str, *, rows: bool = False
                        ) -> defer.Deferred[list[tuple[Any, ...]]]:
        """:meth:`maintain_sync` on a pool thread."""
        if self.synchronous:
            return defer.maybeDeferred(self.maintain_sync, desc, statement, rows=rows)
        return threads.deferToThreadPool(
            self._reactor, self._pool, self.maintain_sync, desc, statement, rows=rows)

    def run_interaction(
        self, desc: str, func: Callable[..., R], *args: Any, **kwargs: Any
    ) -> defer.Deferred[R]:
        """Run ``func(cursor, *args)`` in one transaction on a pool thread."""
        if self.synchronous:
            return defer.maybeDeferred(self.run_sync, desc, func, *args, **kwargs)
        return threads.deferToThreadPool(
            self._reactor, self._pool, self.run_sync, desc, func, *args, **kwargs
        )
