"""How far each user's devices have confirmed receiving the stream (broker/sync_progress.py):
read whole at start, written in batches (a position only ever grows)."""

from __future__ import annotations

from collections.abc import Mapping

from twisted.internet import defer

from storage.database import Cursor, Database

# A position kept is only raised: a batch written late never lowers one written since.
_RAISE = ("INSERT INTO sync_progress (user_id, position) VALUES (?, ?)"
          " ON CONFLICT (user_id) DO UPDATE SET position = excluded.position"
          " WHERE sync_progress.position < excluded.position")


class SyncProgressStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def load(self) -> defer.Deferred[dict[str, int]]:
        """user ID -> the highest position kept."""
        def txn(cur: Cursor) -> dict[str, int]:
            return {str(user_id): int(position) for user_id, position in
                    cur.select_all("SELECT user_id, position FROM sync_progress")}

        return self.db.run_interaction("sync_progress_load", txn)

    def write(self, positions: Mapping[str, int]) -> defer.Deferred[None]:
        """Raise each user's position to at least the one given, in one transaction."""
        rows = sorted(positions.items())
        return self.db.run_interaction("sync_progress_write",
                                       lambda cur: cur.executemany(_RAISE, rows))
