"""Room aliases (``#name:server`` -> room ID)."""

from __future__ import annotations

from twisted.internet import defer

from storage.database import Cursor, Database


class AliasStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def create_alias(self, alias: str, room_id: str, creator: str) -> defer.Deferred[None]:
        return self.db.run_interaction(
            "create_alias",
            lambda cur: cur.execute(
                "INSERT INTO room_aliases (room_alias, room_id, creator) VALUES (?, ?, ?)",
                (alias, room_id, creator)) and None)

    def get_alias(self, alias: str) -> defer.Deferred[tuple[str, str] | None]:
        """(room_id, creator) for an alias, or None."""

        def txn(cur: Cursor) -> tuple[str, str] | None:
            row = cur.select_one(
                "SELECT room_id, creator FROM room_aliases WHERE room_alias = ?", (alias,))
            return (row[0], row[1]) if row else None

        return self.db.run_interaction("get_alias", txn)

    def delete_alias(self, alias: str) -> defer.Deferred[bool]:
        def txn(cur: Cursor) -> bool:
            cur.execute("DELETE FROM room_aliases WHERE room_alias = ?", (alias,))
            return cur.rowcount > 0

        return self.db.run_interaction("delete_alias", txn)

    def get_aliases_for_room(self, room_id: str) -> defer.Deferred[list[str]]:
        return self.db.run_interaction(
            "aliases_for_room",
            lambda cur: [r[0] for r in cur.select_all(
                "SELECT room_alias FROM room_aliases WHERE room_id = ? ORDER BY room_alias",
                (room_id,))])
