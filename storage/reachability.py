"""Who may be reached by public users: what organisation admins forced (``user_reachability``)
and what users chose themselves (their global account data of one type)."""

from __future__ import annotations

from typing import Any

from twisted.internet import defer

from storage.account_data import global_of_type_txn
from storage.database import Cursor, Database


def set_forced_txn(cur: Cursor, user_id: str, value: bool | None, by: str, now_ms: int
                   ) -> None:
    """Force the user's reachability (None: back to the user's own choice)."""
    cur.execute("DELETE FROM user_reachability WHERE user_id = ?", (user_id,))
    if value is not None:
        cur.execute("INSERT INTO user_reachability (user_id, reachable_by_public, set_by,"
                    " set_ts) VALUES (?, ?, ?, ?)", (user_id, value, by, now_ms))


class ReachabilityStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def forced(self, user_ids: list[str] | None = None) -> defer.Deferred[dict[str, bool]]:
        """The forced reachability of ``user_ids`` (None: every user), for those an admin
        decided for."""
        def txn(cur: Cursor) -> dict[str, bool]:
            sql = "SELECT user_id, reachable_by_public FROM user_reachability"
            if user_ids is None:
                rows = cur.select_all(sql)
            else:
                marks = ", ".join("?" for _ in user_ids)
                rows = cur.select_all(f"{sql} WHERE user_id IN ({marks})", user_ids)
            return {user_id: bool(value) for user_id, value in rows}

        return self.db.run_interaction("reachability_forced", txn)

    def chosen(self, data_type: str) -> defer.Deferred[dict[str, Any]]:
        """Every user's global account data of ``data_type``: user ID -> content."""
        return self.db.run_interaction("reachability_chosen",
                                       lambda cur: global_of_type_txn(cur, data_type))
