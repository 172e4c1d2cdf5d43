"""How far other servers' users have received this node's marked events, per room
(broker/apps/remote_progress.py): read whole at start, raised in batches."""

from __future__ import annotations

from collections.abc import Mapping

from twisted.internet import defer

from storage.database import Cursor, Database

# A position kept is only raised: a batch written late never lowers one written since.
_RAISE = ("INSERT INTO remote_delivery_progress (room_id, user_id, position) VALUES (?, ?, ?)"
          " ON CONFLICT (room_id, user_id) DO UPDATE SET position = excluded.position"
          " WHERE remote_delivery_progress.position < excluded.position")


class RemoteProgressStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def load(self) -> defer.Deferred[dict[tuple[str, str], int]]:
        def txn(cur: Cursor) -> dict[tuple[str, str], int]:
            return {(str(r), str(u)): int(p) for r, u, p in cur.select_all(
                "SELECT room_id, user_id, position FROM remote_delivery_progress")}

        return self.db.run_interaction("remote_progress_load", txn)

    def write(self, positions: Mapping[tuple[str, str], int]) -> defer.Deferred[None]:
        rows = [(room_id, user_id, position)
                for (room_id, user_id), position in sorted(positions.items())]
        return self.db.run_interaction("remote_progress_write",
                                       lambda cur: cur.executemany(_RAISE, rows))
