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
        """Set the account's expiry and record the renewal, in one transaction (a renewal
        email's link stops working; the next expiry gets an email of its own)."""
        return self.db.run_interaction("account_validity_renew", _renew_txn, user_id,
                                       expires_ts, entry)

    def due_for_email(self, expiring_before: int, limit: int
                      ) -> defer.Deferred[list[tuple[str, str, int]]]:
        """Up to ``limit`` active accounts expiring before ``expiring_before`` that have an
        official email and were sent no renewal email yet: (user ID, email, expiry)."""
        def txn(cur: Cursor) -> list[tuple[str, str, int]]:
            return [(row[0], row[1], int(row[2])) for row in cur.select_all(
                "SELECT u.user_id, m.email, u.expires_ts FROM users u"
                " JOIN organisation_members m ON m.user_id = u.user_id"
                " WHERE u.expires_ts < ? AND u.renewal_sent_ts IS NULL"
                " AND u.deactivated = FALSE AND m.email IS NOT NULL"
                " ORDER BY u.user_id LIMIT ?", (expiring_before, limit))]

        return self.db.run_interaction("account_validity_due_for_email", txn)

    def email_sent(self, user_id: str, token_hash: str, now_ms: int) -> defer.Deferred[None]:
        """A renewal email went to the account with the token hashed ``token_hash``."""
        def txn(cur: Cursor) -> None:
            cur.execute("UPDATE users SET renewal_token_hash = ?, renewal_sent_ts = ?"
                        " WHERE user_id = ?", (token_hash, now_ms, user_id))

        return self.db.run_interaction("account_validity_email_sent", txn)

    def owner_of_token(self, token_hash: str) -> defer.Deferred[tuple[str, str] | None]:
        """(user ID, organisation or '') of the active account a renewal token was sent to."""
        def txn(cur: Cursor) -> tuple[str, str] | None:
            row = cur.select_one(
                "SELECT u.user_id, m.org_id FROM users u"
                " LEFT JOIN organisation_members m ON m.user_id = u.user_id"
                " WHERE u.renewal_token_hash = ? AND u.deactivated = FALSE", (token_hash,))
            return None if row is None else (row[0], row[1] or "")

        return self.db.run_interaction("account_validity_owner_of_token", txn)


def _renew_txn(cur: Cursor, user_id: str, expires_ts: int, entry: AuditDraft) -> None:
    append_entry(cur, entry)
    cur.execute("UPDATE users SET expires_ts = ?, renewal_token_hash = NULL,"
                " renewal_sent_ts = NULL WHERE user_id = ?", (expires_ts, user_id))
