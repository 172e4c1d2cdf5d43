"""The database's answer to "are you there?": the cheapest transaction, for ``GET /health``."""

from __future__ import annotations

from twisted.internet import defer

from storage.database import Cursor, Database


def _ping_txn(cur: Cursor) -> None:
    cur.execute("SELECT 1").fetchone()


class HealthStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def ping(self) -> defer.Deferred[None]:
        """Fires once the database ran a transaction (on SQLite one that takes the write lock,
        as every transaction of the node does); fails with the engine's error."""
        return self.db.run_interaction("health_ping", _ping_txn)
