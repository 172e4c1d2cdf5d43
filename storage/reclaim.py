"""Giving back the space a purge freed, so that what it removed does not survive on disk.

SQLite connections zero deleted content as they go (``secure_delete``, set in
:meth:`storage.database.Database.connect`); after a purge, :func:`reclaim` returns the freed
pages to the file system (``incremental_vacuum``) and checkpoints the write-ahead log into the
database and truncates it (``wal_checkpoint(TRUNCATE)``), so the WAL frames that held the old
pages go too.  A database made before auto-vacuum was set (``auto_vacuum`` NONE: SQLite reads
that setting only when the first table is created) is converted once by a full ``VACUUM``.

PostgreSQL keeps an updated row's old version as a dead tuple until a vacuum; :func:`reclaim`
runs ``VACUUM`` on the tables the purge touched (outside a transaction, as it must run), so the
dead tuples, their TOAST chunks included, are removed and their space is free for reuse.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass

from storage.database import SQLITE_AUTO_VACUUM_INCREMENTAL, Database

logger = logging.getLogger(__name__)

_TABLE = re.compile(r"^[a-z_][a-z0-9_]*$")


@dataclass(frozen=True)
class Reclaimed:
    """What a reclaim did: the statements run and, on SQLite, whether the WAL was emptied
    (False: a reader held it; the next reclaim tries again)."""

    statements: tuple[str, ...]
    wal_truncated: bool = True


async def reclaim(db: Database, tables: Sequence[str]) -> Reclaimed:
    """Give back the space a purge of ``tables`` freed (see the module docstring)."""
    if db.engine == "postgres":
        for table in tables:
            if not _TABLE.match(table):
                raise ValueError(f"not a table name: {table!r}")
        statements = tuple(f"VACUUM {table}" for table in tables)
        for statement in statements:
            await db.run_maintenance("reclaim_vacuum", statement)
        return Reclaimed(statements)
    return await _reclaim_sqlite(db)


async def _reclaim_sqlite(db: Database) -> Reclaimed:
    mode = (await db.run_maintenance("reclaim_mode", "PRAGMA auto_vacuum", rows=True))[0][0]
    if mode == SQLITE_AUTO_VACUUM_INCREMENTAL:
        vacuum = "PRAGMA incremental_vacuum"
    else:
        # A database from before auto-vacuum: the connection has asked for INCREMENTAL, which a
        # full VACUUM applies (it copies the whole database, once).
        logger.info("retention: converting the database to incremental vacuum (a full VACUUM)")
        vacuum = "VACUUM"
    await db.run_maintenance("reclaim_vacuum", vacuum)
    checkpoint = "PRAGMA wal_checkpoint(TRUNCATE)"
    result = await db.run_maintenance("reclaim_checkpoint", checkpoint, rows=True)
    busy = bool(result[0][0]) if result else False
    if busy:
        logger.warning("retention: the write-ahead log could not be truncated (a reader holds"
                       " it); the next purge tries again")
    return Reclaimed((vacuum, checkpoint), wal_truncated=not busy)
