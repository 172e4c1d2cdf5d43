"""Role grants: (user, role, organisation) rows, '' as the organisation of a node-wide grant.

A user's ``users.is_admin`` flag follows whether they hold ``node_admin`` (written in the same
transaction), so everything that reads the flag (``Access.ADMIN`` routes, the rate-limit
exemption) agrees with the grants.
"""

from __future__ import annotations

from collections.abc import Iterable

from twisted.internet import defer

from storage.audit import AuditDraft, append_entry
from storage.database import Cursor, Database

NODE = ""  # the organisation column of a grant over the whole node


class LastNodeAdmin(Exception):
    """The change would leave the node without a node admin (nothing was written)."""


def _grants_of(cur: Cursor, user_id: str) -> set[tuple[str, str]]:
    rows = cur.select_all("SELECT role, org_id FROM role_grants WHERE user_id = ?", (user_id,))
    return {(str(role), str(org)) for role, org in rows}


class RoleStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def grants_of(self, user_id: str) -> defer.Deferred[set[tuple[str, str]]]:
        """The user's grants as (role, organisation) pairs."""
        return self.db.run_interaction("role_grants_of", _grants_of, user_id)

    def replace(self, user_id: str, grants: Iterable[tuple[str, str]], granted_by: str,
                now_ms: int, entry: AuditDraft) -> defer.Deferred[None]:
        """Make the user's grants exactly ``grants`` (kept ones keep their first grant time);
        :class:`LastNodeAdmin` if no node admin would remain."""
        wanted = set(grants)

        def write(cur: Cursor) -> None:
            append_entry(cur, entry)  # first: orders this against every other admin write
            held = _grants_of(cur, user_id)
            for role, org in held - wanted:
                cur.execute("DELETE FROM role_grants WHERE user_id = ? AND role = ?"
                            " AND org_id = ?", (user_id, role, org))
            cur.executemany("INSERT INTO role_grants (user_id, role, org_id, granted_by,"
                            " granted_ts) VALUES (?, ?, ?, ?, ?)",
                            [(user_id, role, org, granted_by, now_ms)
                             for role, org in sorted(wanted - held)])
            if not cur.select_value("SELECT COUNT(*) FROM role_grants WHERE role = ?",
                                    ("node_admin",)):
                raise LastNodeAdmin(user_id)
            cur.execute("UPDATE users SET is_admin = ? WHERE user_id = ?",
                        (("node_admin", NODE) in wanted, user_id))

        return self.db.run_interaction("role_grants_replace", write)

    def count_in(self, org_id: str) -> defer.Deferred[int]:
        """How many grants are scoped to ``org_id``."""
        def read(cur: Cursor) -> int:
            return int(cur.select_value("SELECT COUNT(*) FROM role_grants WHERE org_id = ?",
                                        (org_id,)))

        return self.db.run_interaction("role_grants_count_in", read)
