"""Government accounts: a user's place in an organisation and the verifications of the user
(the ``user_verifications`` history), written with the audit entry that records each change in
the same transaction (see :mod:`storage.audit`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from twisted.internet import defer

from storage.audit import AuditDraft, append_entries, append_entry
from storage.database import Cursor, Database
from storage.organisations import Member
from storage.users import NewUser, deactivate_in, insert_users

_VERIFICATION_COLUMNS = ("verification_id, user_id, org_id, basis, verified_by, verified_ts,"
                         " expires_ts, revoked_by, revoked_ts")
_QUALIFIED = ", ".join(f"v.{c.strip()}" for c in _VERIFICATION_COLUMNS.split(","))
_MEMBER_COLUMNS = "m.user_id, m.org_id, m.designation, m.employee_id, m.email, m.phone"
BATCH = 1000  # accounts written per batch of statements (and per progress report)
_IN_LIST = 500  # user IDs per IN (...) list


@dataclass(frozen=True)
class VerificationRow:
    verification_id: str
    user_id: str
    org_id: str
    basis: str
    verified_by: str
    verified_ts: int
    expires_ts: int | None = None
    revoked_by: str | None = None
    revoked_ts: int | None = None


@dataclass(frozen=True)
class NewAccount:
    """An account to create: in ``member``'s organisation (None: none), verified by
    ``verification`` if given."""

    user_id: str
    password_hash: str | None
    created_ts: int
    displayname: str | None = None
    member: Member | None = None
    verification: VerificationRow | None = None


@dataclass(frozen=True)
class UserQuery:
    """Which accounts a listing wants: in ``organisations`` (None: any, even none), whose ID,
    name or email contains ``q``, after user ID ``after``, at most ``limit``."""

    organisations: Sequence[str] | None
    q: str = ""
    after: str = ""
    limit: int = 100


@dataclass(frozen=True)
class AccountRow:
    user_id: str
    created_ts: int
    deactivated: bool
    displayname: str | None
    member: Member | None
    expires_ts: int | None = None  # account validity (None: no expiry)


def _row(r: Sequence[object]) -> VerificationRow:
    return VerificationRow(str(r[0]), str(r[1]), str(r[2]), str(r[3]), str(r[4]), int(str(r[5])),
                           None if r[6] is None else int(str(r[6])),
                           None if r[7] is None else str(r[7]),
                           None if r[8] is None else int(str(r[8])))


def write_member(cur: Cursor, user_id: str, member: Member | None, now_ms: int) -> None:
    """Make ``member`` the user's place (None: in no organisation)."""
    cur.execute("DELETE FROM organisation_members WHERE user_id = ?", (user_id,))
    _insert_members(cur, [] if member is None else [(member, now_ms)])


def _insert_members(cur: Cursor, members: Sequence[tuple[Member, int]]) -> None:
    """Insert each member with its time of update."""
    cur.executemany("INSERT INTO organisation_members (user_id, org_id, designation,"
                    " employee_id, email, phone, updated_ts) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [(m.user_id, m.org_id, m.designation, m.employee_id, m.email, m.phone,
                      ts) for m, ts in members])


def end_verification(cur: Cursor, user_id: str, by: str, now_ms: int) -> bool:
    """Revoke the user's current verification, if any; whether there was one."""
    cur.execute("UPDATE user_verifications SET revoked_by = ?, revoked_ts = ?"
                " WHERE user_id = ? AND revoked_ts IS NULL", (by, now_ms, user_id))
    return bool(cur.rowcount)


def write_verification(cur: Cursor, row: VerificationRow) -> None:
    end_verification(cur, row.user_id, row.verified_by, row.verified_ts)
    _insert_verifications(cur, [row])


def _insert_verifications(cur: Cursor, rows: Sequence[VerificationRow]) -> None:
    cur.executemany(f"INSERT INTO user_verifications ({_VERIFICATION_COLUMNS})"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [(r.verification_id, r.user_id, r.org_id, r.basis, r.verified_by,
                      r.verified_ts, r.expires_ts, r.revoked_by, r.revoked_ts) for r in rows])


def write_accounts(cur: Cursor, accounts: Sequence[NewAccount]) -> None:
    """Insert new accounts with their places and verifications (a user ID taken already:
    IntegrityError)."""
    insert_users(cur, [NewUser(a.user_id, a.password_hash, a.created_ts, a.displayname)
                       for a in accounts])
    _insert_members(cur, [(a.member, a.created_ts) for a in accounts if a.member is not None])
    _insert_verifications(cur, [a.verification for a in accounts
                                if a.verification is not None])


class AccountStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def create(self, account: NewAccount, entry: AuditDraft) -> defer.Deferred[None]:
        """Create the account (IntegrityError if the user ID is taken)."""
        return self.create_all([account], [entry])

    def create_all(self, accounts: Sequence[NewAccount], entries: Sequence[AuditDraft],
                   written: Callable[[int], None] | None = None) -> defer.Deferred[None]:
        """Create every account with its entry, in one transaction: all or none
        (IntegrityError if a user ID is taken); ``written`` is told how many are written
        after each batch."""
        def write(cur: Cursor) -> None:
            for start in range(0, len(accounts), BATCH):
                append_entries(cur, entries[start:start + BATCH])
                write_accounts(cur, accounts[start:start + BATCH])
                if written is not None:
                    written(min(start + BATCH, len(accounts)))

        return self.db.run_interaction("account_create", write)

    def taken(self, user_ids: Sequence[str]) -> defer.Deferred[set[str]]:
        """Those of ``user_ids`` that exist on the node (deactivated accounts too)."""
        def read(cur: Cursor) -> set[str]:
            found: set[str] = set()
            for start in range(0, len(user_ids), _IN_LIST):
                clause, args = cur.in_clause("user_id", user_ids[start:start + _IN_LIST])
                found.update(str(r[0]) for r in cur.select_all(
                    f"SELECT user_id FROM users WHERE {clause}", args))
            return found

        return self.db.run_interaction("account_taken", read)

    def update(self, user_id: str, member: Member | None, end_by: str | None, now_ms: int,
               entry: AuditDraft, also: Callable[[Cursor], None] | None = None
               ) -> defer.Deferred[None]:
        """Set the user's place; with ``end_by``, revoke the current verification too;
        ``also`` writes what goes with it in the same transaction."""
        def write(cur: Cursor) -> None:
            if also is not None:
                also(cur)
            append_entry(cur, entry)
            write_member(cur, user_id, member, now_ms)
            if end_by is not None:
                end_verification(cur, user_id, end_by, now_ms)

        return self.db.run_interaction("account_update", write)

    def verify(self, row: VerificationRow, member: Member, entry: AuditDraft,
               also: Callable[[Cursor], None] | None = None) -> defer.Deferred[None]:
        """Record ``row`` as the user's verification (revoking the one before) and place the
        user in its organisation; ``also`` writes what goes with it (a request approved, a
        code used) in the same transaction, and may refuse by raising."""
        def write(cur: Cursor) -> None:
            if also is not None:
                also(cur)
            append_entry(cur, entry)
            write_member(cur, row.user_id, member, row.verified_ts)
            write_verification(cur, row)

        return self.db.run_interaction("account_verify", write)

    def revoke(self, user_id: str, by: str, now_ms: int, entry: AuditDraft
               ) -> defer.Deferred[bool]:
        def write(cur: Cursor) -> bool:
            append_entry(cur, entry)
            return end_verification(cur, user_id, by, now_ms)

        return self.db.run_interaction("account_revoke", write)

    def deactivate(self, user_id: str, entry: AuditDraft) -> defer.Deferred[list[str]]:
        """Deactivate the account (as :meth:`storage.users.UserStore.deactivate`) and revoke
        its verification; the revoked token hashes."""
        def write(cur: Cursor) -> list[str]:
            append_entry(cur, entry)
            end_verification(cur, user_id, entry.actor, entry.ts)
            return deactivate_in(cur, user_id)

        return self.db.run_interaction("account_deactivate", write)

    def history(self, user_id: str) -> defer.Deferred[list[VerificationRow]]:
        """The user's verifications, oldest first."""
        def read(cur: Cursor) -> list[VerificationRow]:
            return [_row(r) for r in cur.select_all(
                f"SELECT {_VERIFICATION_COLUMNS} FROM user_verifications WHERE user_id = ?"
                " ORDER BY verified_ts, verification_id", (user_id,))]

        return self.db.run_interaction("account_history", read)

    def current_all(self) -> defer.Deferred[list[VerificationRow]]:
        """Every verification not revoked, of accounts not deactivated (the class cache)."""
        def read(cur: Cursor) -> list[VerificationRow]:
            return [_row(r) for r in cur.select_all(
                f"SELECT {_QUALIFIED} FROM user_verifications v JOIN users u"
                " ON u.user_id = v.user_id WHERE v.revoked_ts IS NULL AND NOT u.deactivated")]

        return self.db.run_interaction("account_current_verifications", read)

    def current_of(self, user_ids: Sequence[str]) -> defer.Deferred[list[VerificationRow]]:
        """The current verifications (as :meth:`current_all`) of ``user_ids``."""
        def read(cur: Cursor) -> list[VerificationRow]:
            found: list[VerificationRow] = []
            for start in range(0, len(user_ids), _IN_LIST):
                clause, args = cur.in_clause("v.user_id", user_ids[start:start + _IN_LIST])
                found.extend(_row(r) for r in cur.select_all(
                    f"SELECT {_QUALIFIED} FROM user_verifications v JOIN users u"
                    " ON u.user_id = v.user_id WHERE v.revoked_ts IS NULL"
                    f" AND NOT u.deactivated AND {clause}", args))
            return found

        return self.db.run_interaction("account_current_verifications_of", read)

    def users_with_email(self, address: str) -> defer.Deferred[list[str]]:
        """The active accounts whose official email is ``address`` (its domain compared
        without case)."""
        local, _, domain = address.rpartition("@")

        def read(cur: Cursor) -> list[str]:
            return [str(r[0]) for r in cur.select_all(
                "SELECT m.user_id FROM organisation_members m JOIN users u"
                " ON u.user_id = m.user_id WHERE m.email = ? AND NOT u.deactivated"
                " ORDER BY m.user_id", (f"{local}@{domain.lower()}",))]

        return self.db.run_interaction("account_users_with_email", read)

    def account(self, user_id: str) -> defer.Deferred[AccountRow | None]:
        def read(cur: Cursor) -> AccountRow | None:
            found = _accounts(cur, "u.user_id = ?", [user_id], 1)
            return found[0] if found else None

        return self.db.run_interaction("account_get", read)

    def accounts(self, query: UserQuery) -> defer.Deferred[list[AccountRow]]:
        """Accounts matching ``query``, in user ID order."""
        def read(cur: Cursor) -> list[AccountRow]:
            where, args = ["u.user_id > ?", "NOT u.is_guest"], [query.after]
            if query.organisations is not None:
                if not query.organisations:
                    return []
                marks = ", ".join("?" for _ in query.organisations)
                where.append(f"m.org_id IN ({marks})")
                args.extend(query.organisations)
            if query.q:
                where.append("(LOWER(u.user_id) LIKE ? OR LOWER(COALESCE(p.displayname, ''))"
                             " LIKE ? OR LOWER(COALESCE(m.email, '')) LIKE ?)")
                pattern = "%" + query.q.lower().replace("\\", "").replace("%", "").replace(
                    "_", "") + "%"
                args.extend([pattern] * 3)
            return _accounts(cur, " AND ".join(where), args, query.limit)

        return self.db.run_interaction("account_list", read)


def _accounts(cur: Cursor, where: str, args: Sequence[object], limit: int) -> list[AccountRow]:
    rows = cur.select_all(
        f"SELECT u.user_id, u.created_ts, u.deactivated, p.displayname, {_MEMBER_COLUMNS},"
        " u.expires_ts FROM users u LEFT JOIN profiles p ON p.user_id = u.user_id"
        " LEFT JOIN organisation_members m ON m.user_id = u.user_id"
        f" WHERE {where} ORDER BY u.user_id LIMIT ?", (*args, limit))
    return [AccountRow(str(r[0]), int(r[1]), bool(r[2]), r[3],
                       None if r[4] is None else Member(*r[4:10]), r[10]) for r in rows]
