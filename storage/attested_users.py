"""What the node last attested of its users to other nodes (``attested_users``): the verified
ones, with the organisation and the time their attestation names."""

from __future__ import annotations

from collections.abc import Mapping

from twisted.internet import defer

from storage.database import Cursor, Database

# user ID -> (organisation, since), or None: public
Attested = tuple[str, int]


class AttestedUserStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def all(self) -> defer.Deferred[dict[str, Attested]]:
        """Every user attested verified: user ID -> (organisation, since)."""
        def txn(cur: Cursor) -> dict[str, Attested]:
            return {str(user_id): (str(org_id), int(since)) for user_id, org_id, since
                    in cur.select_all("SELECT user_id, org_id, since FROM attested_users")}

        return self.db.run_interaction("attested_users", txn)

    def record(self, attested: Mapping[str, Attested | None]) -> defer.Deferred[None]:
        """Record what each user is attested as now (None: public), in one transaction."""
        def txn(cur: Cursor) -> None:
            users = sorted(attested)
            cur.executemany("DELETE FROM attested_users WHERE user_id = ?",
                            [(user_id,) for user_id in users])
            cur.executemany("INSERT INTO attested_users (user_id, org_id, since)"
                            " VALUES (?, ?, ?)",
                            [(user_id, *found) for user_id in users
                             if (found := attested[user_id]) is not None])

        return self.db.run_interaction("attested_users_record", txn)
