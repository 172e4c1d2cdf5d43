"""eGov applications: their registrations (with the sender account made in the same
transaction; the callback secret sealed with encryption at rest), idempotency keys and the
groups they manage.  Every change is written with the
audit entry that records it, in one transaction (see :mod:`storage.audit`)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from twisted.internet import defer

from storage.accounts import NewAccount, write_accounts
from storage.at_rest import APPS_CALLBACK_SECRET
from storage.audit import AuditDraft, append_entry
from storage.database import Cursor, Database
from storage.reachability import set_forced_txn

MEMBER_COLUMNS = ("employee_id", "email", "phone")
_COLUMNS = ("app_id, name, org_id, sender, token_hash, callback_url, callback_secret, kinds,"
            " created_by, created_ts, token_ts, revoked_ts")


@dataclass(frozen=True)
class AppRow:
    app_id: str
    name: str
    org_id: str
    sender: str
    token_hash: str
    callback_url: str | None
    callback_secret: str
    kinds: tuple[str, ...]
    created_by: str
    created_ts: int
    token_ts: int
    revoked_ts: int | None = None


@dataclass(frozen=True)
class GroupRow:
    group_id: str
    app_id: str
    room_id: str
    name: str
    created_ts: int


def _app(cur: Cursor, r: Sequence[object]) -> AppRow:
    return AppRow(str(r[0]), str(r[1]), str(r[2]), str(r[3]), str(r[4]),
                  None if r[5] is None else str(r[5]),
                  cur.at_rest.open(APPS_CALLBACK_SECRET, str(r[6])),
                  tuple(json.loads(str(r[7]))), str(r[8]), int(str(r[9])), int(str(r[10])),
                  None if r[11] is None else int(str(r[11])))


def _insert_app(cur: Cursor, app: AppRow) -> None:
    cur.execute(f"INSERT INTO apps ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (app.app_id, app.name, app.org_id, app.sender, app.token_hash,
                 app.callback_url, cur.at_rest.seal(APPS_CALLBACK_SECRET, app.callback_secret),
                 json.dumps(list(app.kinds)),
                 app.created_by, app.created_ts, app.token_ts, app.revoked_ts))


class AppStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def create(self, app: AppRow, sender: NewAccount, entry: AuditDraft
               ) -> defer.Deferred[None]:
        """Register ``app`` with its sender account (reachable by the public) and audit
        entry (IntegrityError if the sender's user ID is taken)."""
        def write(cur: Cursor) -> None:
            append_entry(cur, entry)
            write_accounts(cur, [sender])
            set_forced_txn(cur, sender.user_id, True, app.created_by, app.created_ts)
            _insert_app(cur, app)

        return self.db.run_interaction("app_create", write)

    def all(self) -> defer.Deferred[list[AppRow]]:
        """Every app, revoked ones too, in registration order."""
        def read(cur: Cursor) -> list[AppRow]:
            return [_app(cur, r) for r in cur.select_all(
                f"SELECT {_COLUMNS} FROM apps ORDER BY created_ts, app_id")]

        return self.db.run_interaction("apps_all", read)

    def set_token(self, app_id: str, token_hash: str, now_ms: int, entry: AuditDraft
                  ) -> defer.Deferred[None]:
        def write(cur: Cursor) -> None:
            append_entry(cur, entry)
            cur.execute("UPDATE apps SET token_hash = ?, token_ts = ? WHERE app_id = ?",
                        (token_hash, now_ms, app_id))

        return self.db.run_interaction("app_rotate_token", write)

    def update(self, app: AppRow, entry: AuditDraft) -> defer.Deferred[None]:
        """Write the app's callback URL and kinds as ``app`` has them."""
        def write(cur: Cursor) -> None:
            append_entry(cur, entry)
            cur.execute("UPDATE apps SET callback_url = ?, kinds = ? WHERE app_id = ?",
                        (app.callback_url, json.dumps(list(app.kinds)), app.app_id))

        return self.db.run_interaction("app_update", write)

    def revoke(self, app_id: str, now_ms: int, entry: AuditDraft) -> defer.Deferred[None]:
        def write(cur: Cursor) -> None:
            append_entry(cur, entry)
            cur.execute("UPDATE apps SET revoked_ts = ? WHERE app_id = ?", (now_ms, app_id))

        return self.db.run_interaction("app_revoke", write)

    # -- idempotency keys --------------------------------------------------------------------
    def claim_key(self, app_id: str, key: str, message_id: str, now_ms: int
                  ) -> defer.Deferred[str]:
        """Record ``key`` as ``message_id``'s unless it names a message already; the message
        ID the key names now (``message_id`` if this call claimed it)."""
        def write(cur: Cursor) -> str:
            found = cur.select_value(
                "SELECT message_id FROM app_idempotency_keys WHERE app_id = ?"
                " AND idempotency_key = ?", (app_id, key))
            if found is not None:
                return str(found)
            cur.execute("INSERT INTO app_idempotency_keys (app_id, idempotency_key,"
                        " message_id, created_ts) VALUES (?, ?, ?, ?)",
                        (app_id, key, message_id, now_ms))
            return message_id

        return self.db.run_interaction("app_claim_idempotency_key", write)

    def release_key(self, app_id: str, key: str) -> defer.Deferred[None]:
        """Forget a key whose message was refused before it was queued (a retry may send)."""
        def write(cur: Cursor) -> None:
            cur.execute("DELETE FROM app_idempotency_keys WHERE app_id = ?"
                        " AND idempotency_key = ?", (app_id, key))

        return self.db.run_interaction("app_release_idempotency_key", write)

    # -- recipients ----------------------------------------------------------------------------
    def members_where(self, column: str, value: str, org_id: str | None = None
                      ) -> defer.Deferred[list[str]]:
        """The active accounts whose place has ``column`` (employee_id, email or phone) equal
        to ``value`` (in ``org_id``, if given)."""
        if column not in MEMBER_COLUMNS:
            raise ValueError(f"not a member column: {column}")
        where = f"m.{column} = ?" + (" AND m.org_id = ?" if org_id is not None else "")
        args = (value,) if org_id is None else (value, org_id)

        def read(cur: Cursor) -> list[str]:
            return [str(r[0]) for r in cur.select_all(
                "SELECT m.user_id FROM organisation_members m JOIN users u"
                f" ON u.user_id = m.user_id WHERE {where} AND NOT u.deactivated"
                " ORDER BY m.user_id LIMIT 2", args)]

        return self.db.run_interaction(f"app_recipient_by_{column}", read)

    def active_user(self, user_id: str) -> defer.Deferred[bool]:
        def read(cur: Cursor) -> bool:
            return bool(cur.select_value(
                "SELECT COUNT(*) FROM users WHERE user_id = ? AND NOT deactivated",
                (user_id,)))

        return self.db.run_interaction("app_recipient_user", read)

    # -- groups ------------------------------------------------------------------------------
    def add_group(self, group: GroupRow) -> defer.Deferred[None]:
        def write(cur: Cursor) -> None:
            cur.execute("INSERT INTO app_groups (group_id, app_id, room_id, name, created_ts)"
                        " VALUES (?, ?, ?, ?, ?)", (group.group_id, group.app_id,
                                                    group.room_id, group.name,
                                                    group.created_ts))

        return self.db.run_interaction("app_group_add", write)

    def groups(self, app_id: str) -> defer.Deferred[list[GroupRow]]:
        def read(cur: Cursor) -> list[GroupRow]:
            return [GroupRow(str(r[0]), str(r[1]), str(r[2]), str(r[3]), int(str(r[4])))
                    for r in cur.select_all(
                        "SELECT group_id, app_id, room_id, name, created_ts FROM app_groups"
                        " WHERE app_id = ? ORDER BY group_id", (app_id,))]

        return self.db.run_interaction("app_groups", read)
