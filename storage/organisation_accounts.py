"""Accounts the node holds for organisations: one per organisation, its user row made in the
transaction that records it (no password: nobody logs in as one)."""

from __future__ import annotations

from twisted.internet import defer

from storage.database import Cursor, Database
from storage.users import insert_user


class OrganisationAccountStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def all(self) -> defer.Deferred[dict[str, str]]:
        """Organisation ID -> the user ID of its account."""
        def read(cur: Cursor) -> dict[str, str]:
            return {str(org_id): str(user_id) for org_id, user_id in cur.select_all(
                "SELECT org_id, user_id FROM organisation_accounts")}

        return self.db.run_interaction("organisation_accounts", read)

    def created(self) -> defer.Deferred[dict[str, tuple[str, int]]]:
        """Organisation ID -> the user ID of its account and when it was made."""
        def read(cur: Cursor) -> dict[str, tuple[str, int]]:
            return {str(org_id): (str(user_id), int(ts)) for org_id, user_id, ts in
                    cur.select_all("SELECT org_id, user_id, created_ts FROM"
                                   " organisation_accounts")}

        return self.db.run_interaction("organisation_accounts_created", read)

    def create(self, org_id: str, user_id: str, displayname: str, now_ms: int
               ) -> defer.Deferred[str]:
        """Make the organisation's account unless it has one; the user ID it has (the one
        made earlier, if another call got there first).  IntegrityError if ``user_id`` is
        taken by another account."""
        def write(cur: Cursor) -> str:
            found = cur.select_value(
                "SELECT user_id FROM organisation_accounts WHERE org_id = ?", (org_id,))
            if found is not None:
                return str(found)
            insert_user(cur, user_id, None, now_ms, displayname=displayname)
            cur.execute("INSERT INTO organisation_accounts (org_id, user_id, created_ts)"
                        " VALUES (?, ?, ?)", (org_id, user_id, now_ms))
            return user_id

        return self.db.run_interaction("organisation_account_create", write)
