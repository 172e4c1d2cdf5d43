"""Deleting the personal data of deactivated accounts (``retention.deactivated_account_data``).

A deactivated account is stamped with when the node first saw it deactivated
(``users.deactivated_ts``, migration 190); once that is older than the configured period its
personal data goes, one account per transaction, and ``users.personal_data_deleted_ts`` marks
it done in the same transaction, so a job stopped anywhere goes on from what the database holds.

What goes: the profile (display name, avatar: the user directory entry), the organisation
details (designation, employee ID, email, phone; the organisation stays), account data (global
and per room), filters, push rules, devices and their tokens, device and cross-signing keys
and signatures, one-time and fallback keys, key backups, undelivered to-device messages,
interactive-auth sessions, forgotten-room marks, forced reachability, email codes,
verification-by-email requests, how far the user's devices synced and the notices of other
nodes they had not yet received.  What stays: the account row (its ID stays taken), room events
(membership included: the room's history and DAG), the audit log (hash-chained), verification
history, role grants, content reports and uploaded media.
"""

from __future__ import annotations

from twisted.internet import defer

from storage.database import Cursor, Database
from storage.media_references import account_data_key
from storage.reclaim import Reclaimed, reclaim

# (table, column naming the user): rows deleted outright.
DELETED: tuple[tuple[str, str], ...] = (
    ("account_data", "user_id"),
    ("user_filters", "user_id"),
    ("push_rules", "user_id"),
    ("push_rules_enable", "user_id"),
    ("access_tokens", "user_id"),
    ("devices", "user_id"),
    ("e2e_device_keys", "user_id"),
    ("e2e_one_time_keys", "user_id"),
    ("e2e_fallback_keys", "user_id"),
    ("cross_signing_keys", "user_id"),
    ("cross_signing_signatures", "target_user_id"),
    ("cross_signing_signatures", "signer_user_id"),
    ("room_key_backup_keys", "user_id"),
    ("room_key_backup_versions", "user_id"),
    ("to_device_inbox", "user_id"),
    ("room_forgotten", "user_id"),
    ("user_reachability", "user_id"),
    ("email_codes", "user_id"),
    ("verification_requests", "user_id"),
    ("sync_progress", "user_id"),
    ("delivery_pending", "user_id"),
)
# The tables the job rewrites or deletes from: their freed space is reclaimed after a run.
TOUCHED_TABLES = tuple(sorted({table for table, _ in DELETED}
                              | {"profiles", "organisation_members", "users",
                                 "ui_auth_sessions", "ui_auth_stages", "media_references"}))


class DeactivatedDataStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def stamp(self, now_ms: int) -> defer.Deferred[int]:
        """Stamp deactivated accounts not stamped yet with ``now_ms``; how many."""
        def txn(cur: Cursor) -> int:
            cur.execute("UPDATE users SET deactivated_ts = ?"
                        " WHERE deactivated = TRUE AND deactivated_ts IS NULL", (now_ms,))
            return max(cur.rowcount, 0)

        return self.db.run_interaction("deactivated_data_stamp", txn)

    def due(self, deactivated_before: int, limit: int) -> defer.Deferred[list[str]]:
        """Up to ``limit`` accounts deactivated before ``deactivated_before`` whose personal
        data is not deleted yet, in user ID order."""
        def txn(cur: Cursor) -> list[str]:
            return [row[0] for row in cur.select_all(
                "SELECT user_id FROM users WHERE deactivated = TRUE"
                " AND personal_data_deleted_ts IS NULL AND deactivated_ts < ?"
                " ORDER BY user_id LIMIT ?", (deactivated_before, limit))]

        return self.db.run_interaction("deactivated_data_due", txn)

    def delete(self, user_id: str, now_ms: int) -> defer.Deferred[bool]:
        """Delete the account's personal data and mark it done, in one transaction; False
        when it is not a deactivated account with data left (done already, reactivated)."""
        return self.db.run_interaction("deactivated_data_delete", _delete_txn, user_id, now_ms)

    def reclaim(self) -> defer.Deferred[Reclaimed]:
        """Give back the space the deletions freed (:mod:`storage.reclaim`)."""
        return defer.ensureDeferred(reclaim(self.db, TOUCHED_TABLES))


def _delete_txn(cur: Cursor, user_id: str, now_ms: int) -> bool:
    row = cur.select_one("SELECT deactivated, personal_data_deleted_ts FROM users"
                         " WHERE user_id = ?", (user_id,))
    if row is None or not row[0] or row[1] is not None:
        return False
    cur.executemany("DELETE FROM media_references WHERE event_id = ?", [
        (account_data_key(user_id, room_id, data_type),) for room_id, data_type in
        cur.select_all("SELECT room_id, type FROM account_data WHERE user_id = ?", (user_id,))])
    for table, column in DELETED:
        cur.execute(f"DELETE FROM {table} WHERE {column} = ?", (user_id,))
    cur.execute("DELETE FROM ui_auth_stages WHERE session_id IN"
                " (SELECT session_id FROM ui_auth_sessions WHERE user_id = ?)", (user_id,))
    cur.execute("DELETE FROM ui_auth_sessions WHERE user_id = ?", (user_id,))
    cur.execute("UPDATE profiles SET displayname = NULL, avatar_url = NULL WHERE user_id = ?",
                (user_id,))
    cur.execute("UPDATE organisation_members SET designation = NULL, employee_id = NULL,"
                " email = NULL, phone = NULL WHERE user_id = ?", (user_id,))
    cur.execute("UPDATE users SET personal_data_deleted_ts = ? WHERE user_id = ?",
                (now_ms, user_id))
    return True
