"""Account validity: when each account expires (``users.expires_ts``, migration 190).

Accounts are given an expiry at creation, by the validity job when they have none (made
before validity was enabled, or by a path that sets none), and a new one by a renewal, which
is recorded in the audit log in its own transaction.
"""

from __future__ import annotations

from twisted.internet import defer

from storage.audit import AuditDraft, append_entry
from storage.database import Cursor, Database


class AccountValidityStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def give_expiry(self, expires_ts: int, limit: int) -> defer.Deferred[list[str]]:
        """Give up to ``limit`` active accounts without an expiry ``expires_ts``; their IDs
        (fewer than ``limit``: none is left)."""
        def txn(cur: Cursor) -> list[str]:
            ids = [row[0] for row in cur.select_all(
                "SELECT user_id FROM users WHERE expires_ts IS NULL AND deactivated = FALSE"
                " ORDER BY user_id LIMIT ?", (limit,))]
            cur.executemany("UPDATE users SET expires_ts = ? WHERE user_id = ?",
                            [(expires_ts, user_id) for user_id in ids])
            return ids

        return self.db.run_interaction("account_validity_give_expiry", txn)

    def expiry_of(self, user_id: str) -> defer.Deferred[tuple[bool, int | None]]:
        """(whether the account exists, its expiry)."""
        def txn(cur: Cursor) -> tuple[bool, int | None]:
            row = cur.select_one("SELECT expires_ts FROM users WHERE user_id = ?", (user_id,))
            return (False, None) if row is None else (True, row[0])

        return self.db.run_interaction("account_validity_expiry_of", txn)

    def renew(self, user_id: str, expires_ts: int, entry: AuditDraft) -> defer.Deferred[None]:
        """Set the account's expiry and record the renewal, in one transaction."""
        def txn(cur: Cursor) -> None:
            append_entry(cur, entry)
            cur.execute("UPDATE users SET expires_ts = ? WHERE user_id = ?",
                        (expires_ts, user_id))

        return self.db.run_interaction("account_validity_renew", txn)
