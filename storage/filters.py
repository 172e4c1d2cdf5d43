"""Uploaded /sync filters: per-user integer ids, allocated inside the inserting transaction."""

from __future__ import annotations

import json
from typing import Any

from twisted.internet import defer

from storage.database import Cursor, Database, IntegrityError


class FilterStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def add_filter(self, user_id: str, filter_json: dict[str, Any]) -> defer.Deferred[int]:
        """Store a filter; returns its id (0, 1, 2... per user)."""
        raw = json.dumps(filter_json, ensure_ascii=False, separators=(",", ":"))

        def txn(cur: Cursor) -> int:
            highest = cur.select_value(
                "SELECT MAX(filter_id) FROM user_filters WHERE user_id = ?", (user_id,))
            filter_id = 0 if highest is None else int(highest) + 1
            cur.execute(
                "INSERT INTO user_filters (user_id, filter_id, filter_json) VALUES (?, ?, ?)",
                (user_id, filter_id, raw))
            return filter_id

        async def insert() -> int:
            for _ in range(4):  # two uploads racing for one id: the loser takes the next one
                try:
                    return await self.db.run_interaction("add_filter", txn)
                except IntegrityError:
                    continue
            return await self.db.run_interaction("add_filter", txn)

        return defer.ensureDeferred(insert())

    def get_filter(self, user_id: str, filter_id: int) -> defer.Deferred[dict[str, Any] | None]:
        """A stored filter's JSON, or None if ``user_id`` has no filter ``filter_id``."""

        def txn(cur: Cursor) -> dict[str, Any] | None:
            raw = cur.select_value(
                "SELECT filter_json FROM user_filters WHERE user_id = ? AND filter_id = ?",
                (user_id, filter_id))
            return json.loads(raw) if raw is not None else None

        return self.db.run_interaction("get_filter", txn)
