"""Accounts, devices and access tokens (tokens are stored as SHA-256 hashes, never in clear)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from twisted.internet import defer

from storage.database import Cursor, Database


@dataclass(frozen=True)
class TokenOwner:
    user_id: str
    device_id: str
    is_admin: bool
    is_guest: bool
    deactivated: bool
    expires_ts: int | None = None  # account validity: None, no expiry


@dataclass(frozen=True)
class Device:
    user_id: str
    device_id: str
    display_name: str | None
    last_seen_ts: int | None
    last_seen_ip: str | None

    def to_json(self) -> dict[str, Any]:
        """The Client-Server API shape; unknown fields are left out rather than null."""
        fields = (("device_id", self.device_id), ("display_name", self.display_name),
                  ("last_seen_ts", self.last_seen_ts), ("last_seen_ip", self.last_seen_ip))
        return {key: value for key, value in fields if value is not None}


@dataclass(frozen=True)
class UiAuthSession:
    """A user-interactive authentication session and the stages completed in it."""

    session_id: str
    user_id: str  # '' when the request is not authenticated (register)
    method: str
    uri: str
    created_ts: int
    completed: dict[str, str]  # stage type -> what it proved (e.g. a user ID)


def _grant_node_admin(cur: Cursor, user_id: str, now_ms: int) -> None:
    """The node admin flag stands for a ``node_admin`` grant over the whole node."""
    cur.execute("INSERT INTO role_grants (user_id, role, org_id, granted_by, granted_ts)"
                " VALUES (?, 'node_admin', '', 'node admin flag', ?)"
                " ON CONFLICT (user_id, role, org_id) DO NOTHING", (user_id, now_ms))


def insert_user(cur: Cursor, user_id: str, password_hash: str | None, now_ms: int, *,
                is_admin: bool = False, is_guest: bool = False,
                displayname: str | None = None) -> None:
    """Insert an account and its profile (the display name defaults to the localpart)."""
    insert_users(cur, [NewUser(user_id, password_hash, now_ms, displayname)],
                 is_admin=is_admin, is_guest=is_guest)
    if is_admin:
        _grant_node_admin(cur, user_id, now_ms)


@dataclass(frozen=True)
class NewUser:
    user_id: str
    password_hash: str | None
    created_ts: int
    displayname: str | None = None  # None: the localpart


def insert_users(cur: Cursor, users: Sequence[NewUser], *, is_admin: bool = False,
                 is_guest: bool = False) -> None:
    """Insert accounts and their profiles, in batches (see :func:`insert_user`)."""
    cur.executemany(
        "INSERT INTO users (user_id, password_hash, created_ts, is_admin, is_guest)"
        " VALUES (?, ?, ?, ?, ?)",
        [(u.user_id, u.password_hash, u.created_ts, is_admin, is_guest) for u in users])
    cur.executemany("INSERT INTO profiles (user_id, displayname) VALUES (?, ?)",
                    [(u.user_id, u.displayname or u.user_id[1:].split(":", 1)[0])
                     for u in users])


def change_password_in(cur: Cursor, user_id: str, password_hash: str,
                       keep_device_id: str | None, logout_other_devices: bool) -> list[str]:
    """Set a new password hash (and delete the other devices), in the caller's transaction;
    the revoked token hashes."""
    cur.execute("UPDATE users SET password_hash = ? WHERE user_id = ?", (password_hash, user_id))
    if not logout_other_devices:
        return []
    return _delete_devices_except(cur, user_id, keep_device_id)


class UserStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    # -- accounts ------------------------------------------------------------------------------
    def create_user(
        self, user_id: str, password_hash: str | None, now_ms: int, *, is_admin: bool = False,
        is_guest: bool = False, expires_ts: int | None = None,
    ) -> defer.Deferred[None]:
        """Create the account; ``expires_ts`` is its expiry (account validity)."""
        def txn(cur: Cursor) -> None:
            insert_user(cur, user_id, password_hash, now_ms, is_admin=is_admin,
                        is_guest=is_guest)
            if expires_ts is not None:
                cur.execute("UPDATE users SET expires_ts = ? WHERE user_id = ?",
                            (expires_ts, user_id))

        return self.db.run_interaction("create_user", txn)

    def get_user(self, user_id: str) -> defer.Deferred[dict[str, Any] | None]:
        def txn(cur: Cursor) -> dict[str, Any] | None:
            row = cur.select_one(
                "SELECT user_id, password_hash, is_admin, is_guest, deactivated, created_ts"
                " FROM users WHERE user_id = ?", (user_id,))
            if row is None:
                return None
            keys = ("user_id", "password_hash", "is_admin", "is_guest", "deactivated",
                    "created_ts")
            return dict(zip(keys, row, strict=True))

        return self.db.run_interaction("get_user", txn)

    def set_password_hash(self, user_id: str, password_hash: str) -> defer.Deferred[None]:
        return self.db.run_interaction(
            "set_password_hash",
            lambda cur: cur.execute(
                "UPDATE users SET password_hash = ? WHERE user_id = ?", (password_hash, user_id)
            ) and None,
        )

    def set_admin(self, user_id: str, is_admin: bool, now_ms: int = 0) -> defer.Deferred[None]:
        """Set the node admin flag and the ``node_admin`` grant it stands for."""
        def txn(cur: Cursor) -> None:
            cur.execute("UPDATE users SET is_admin = ? WHERE user_id = ?", (is_admin, user_id))
            if is_admin:
                _grant_node_admin(cur, user_id, now_ms)
            else:
                cur.execute("DELETE FROM role_grants WHERE user_id = ? AND role = 'node_admin'",
                            (user_id,))

        return self.db.run_interaction("set_admin", txn)

    def change_password(
        self, user_id: str, password_hash: str, *, keep_device_id: str | None,
        logout_other_devices: bool,
    ) -> defer.Deferred[list[str]]:
        """Set a new password hash and, if asked, delete every device but ``keep_device_id``
        (with their tokens), in one transaction.  Returns the revoked token hashes."""

        return self.db.run_interaction("change_password", change_password_in, user_id,
                                       password_hash, keep_device_id, logout_other_devices)

    def deactivate(self, user_id: str, *, erase: bool = False) -> defer.Deferred[list[str]]:
        """Mark the account deactivated and drop its devices and tokens (and, with ``erase``,
        its display name and avatar); returns the revoked token hashes."""

        return self.db.run_interaction("deactivate", deactivate_in, user_id, erase)

    # -- devices and tokens ---------------------------------------------------------------------
    def add_device_and_token(
        self, user_id: str, device_id: str, display_name: str | None, token_hash: str,
        now_ms: int, ip: str | None,
    ) -> defer.Deferred[list[str]]:
        """Create (or re-use) a device and give it a new token, replacing the device's old
        tokens (a device has one live session).  Returns the replaced token hashes."""

        def txn(cur: Cursor) -> list[str]:
            exists = cur.select_one(
                "SELECT 1 FROM devices WHERE user_id = ? AND device_id = ?", (user_id, device_id))
            if exists:
                if display_name is not None:
                    cur.execute(
                        "UPDATE devices SET display_name = ? WHERE user_id = ? AND device_id = ?",
                        (display_name, user_id, device_id))
            else:
                cur.execute(
                    "INSERT INTO devices (user_id, device_id, display_name, created_ts,"
                    " last_seen_ts, last_seen_ip) VALUES (?, ?, ?, ?, ?, ?)",
                    (user_id, device_id, display_name, now_ms, now_ms, ip))
            old = [r[0] for r in cur.select_all(
                "SELECT token_hash FROM access_tokens WHERE user_id = ? AND device_id = ?",
                (user_id, device_id))]
            cur.execute("DELETE FROM access_tokens WHERE user_id = ? AND device_id = ?",
                        (user_id, device_id))
            cur.execute(
                "INSERT INTO access_tokens (token_hash, user_id, device_id, created_ts)"
                " VALUES (?, ?, ?, ?)", (token_hash, user_id, device_id, now_ms))
            return old

        return self.db.run_interaction("add_device_and_token", txn)

    def get_token_owner(self, token_hash: str) -> defer.Deferred[TokenOwner | None]:
        def txn(cur: Cursor) -> TokenOwner | None:
            row = cur.select_one(
                "SELECT t.user_id, t.device_id, u.is_admin, u.is_guest, u.deactivated,"
                " u.expires_ts FROM access_tokens t JOIN users u ON u.user_id = t.user_id"
                " WHERE t.token_hash = ?", (token_hash,))
            if row is None:
                return None
            return TokenOwner(row[0], row[1], bool(row[2]), bool(row[3]), bool(row[4]), row[5])

        return self.db.run_interaction("get_token_owner", txn)

    def delete_devices(self, user_id: str, device_ids: list[str]) -> defer.Deferred[list[str]]:
        """Delete devices and their tokens; returns the deleted token hashes."""

        def txn(cur: Cursor) -> list[str]:
            clause, args = cur.in_clause("device_id", device_ids)
            hashes = [r[0] for r in cur.select_all(
                f"SELECT token_hash FROM access_tokens WHERE user_id = ? AND {clause}",
                [user_id, *args])]
            cur.execute(f"DELETE FROM access_tokens WHERE user_id = ? AND {clause}",
                        [user_id, *args])
            cur.execute(f"DELETE FROM devices WHERE user_id = ? AND {clause}", [user_id, *args])
            return hashes

        return self.db.run_interaction("delete_devices", txn)

    def delete_all_devices(
        self, user_id: str, *, except_device_id: str | None = None
    ) -> defer.Deferred[list[str]]:
        """Delete every device of ``user_id`` (but ``except_device_id``) and their tokens;
        returns the deleted token hashes."""
        return self.db.run_interaction(
            "delete_all_devices", _delete_devices_except, user_id, except_device_id)

    def get_device(self, user_id: str, device_id: str) -> defer.Deferred[Device | None]:
        def txn(cur: Cursor) -> Device | None:
            row = cur.select_one(
                "SELECT user_id, device_id, display_name, last_seen_ts, last_seen_ip"
                " FROM devices WHERE user_id = ? AND device_id = ?", (user_id, device_id))
            return Device(*row) if row is not None else None

        return self.db.run_interaction("get_device", txn)

    def get_devices(self, user_id: str) -> defer.Deferred[list[Device]]:
        def txn(cur: Cursor) -> list[Device]:
            rows = cur.select_all(
                "SELECT user_id, device_id, display_name, last_seen_ts, last_seen_ip"
                " FROM devices WHERE user_id = ? ORDER BY device_id", (user_id,))
            return [Device(*row) for row in rows]

        return self.db.run_interaction("get_devices", txn)

    def update_last_seen(
        self, seen: list[tuple[str, str, int, str | None]]
    ) -> defer.Deferred[None]:
        """Record (user_id, device_id, last_seen_ts, last_seen_ip) for many devices at once."""

        def txn(cur: Cursor) -> None:
            cur.executemany(
                "UPDATE devices SET last_seen_ts = ?, last_seen_ip = ?"
                " WHERE user_id = ? AND device_id = ?",
                [(ts, ip, user, device) for user, device, ts, ip in seen])

        return self.db.run_interaction("update_last_seen", txn)

    def rename_device(self, user_id: str, device_id: str, name: str) -> defer.Deferred[bool]:
        def txn(cur: Cursor) -> bool:
            cur.execute("UPDATE devices SET display_name = ? WHERE user_id = ? AND device_id = ?",
                        (name, user_id, device_id))
            return cur.rowcount > 0

        return self.db.run_interaction("rename_device", txn)

    # -- profiles -------------------------------------------------------------------------------
    def get_profile(self, user_id: str) -> defer.Deferred[dict[str, Any] | None]:
        def txn(cur: Cursor) -> dict[str, Any] | None:
            row = cur.select_one(
                "SELECT displayname, avatar_url FROM profiles WHERE user_id = ?", (user_id,))
            if row is None:
                return None
            return {k: v for k, v in (("displayname", row[0]), ("avatar_url", row[1]))
                    if v is not None}

        return self.db.run_interaction("get_profile", txn)

    def profile_and_organisation(self, user_id: str
                                 ) -> defer.Deferred[tuple[dict[str, Any], str | None]]:
        """The user's display name and avatar (those set) and the organisation their account
        is placed in (None: none), in one query."""
        def txn(cur: Cursor) -> tuple[dict[str, Any], str | None]:
            row = cur.select_one(
                "SELECT p.displayname, p.avatar_url, m.org_id FROM users u"
                " LEFT JOIN profiles p ON p.user_id = u.user_id"
                " LEFT JOIN organisation_members m ON m.user_id = u.user_id"
                " WHERE u.user_id = ?", (user_id,))
            if row is None:
                return {}, None
            return {k: v for k, v in (("displayname", row[0]), ("avatar_url", row[1]))
                    if v is not None}, row[2]

        return self.db.run_interaction("profile_and_organisation", txn)

    def set_profile_field(self, user_id: str, field: str, value: str | None) -> defer.Deferred[None]:
        if field not in ("displayname", "avatar_url"):
            raise ValueError(field)
        return self.db.run_interaction(
            "set_profile_field",
            lambda cur: cur.execute(
                f"UPDATE profiles SET {field} = ? WHERE user_id = ?", (value, user_id)) and None,
        )

    # -- user-interactive auth sessions ---------------------------------------------------------
    def create_ui_auth_session(
        self, session_id: str, user_id: str, method: str, uri: str, now_ms: int
    ) -> defer.Deferred[None]:
        return self.db.run_interaction(
            "create_ui_auth_session",
            lambda cur: cur.execute(
                "INSERT INTO ui_auth_sessions (session_id, user_id, method, uri, created_ts)"
                " VALUES (?, ?, ?, ?, ?)", (session_id, user_id, method, uri, now_ms)) and None,
        )

    def get_ui_auth_session(self, session_id: str) -> defer.Deferred[UiAuthSession | None]:
        def txn(cur: Cursor) -> UiAuthSession | None:
            row = cur.select_one(
                "SELECT session_id, user_id, method, uri, created_ts FROM ui_auth_sessions"
                " WHERE session_id = ?", (session_id,))
            if row is None:
                return None
            stages = cur.select_all(
                "SELECT stage, result FROM ui_auth_stages WHERE session_id = ?", (session_id,))
            return UiAuthSession(row[0], row[1], row[2], row[3], int(row[4]),
                                 {stage: result for stage, result in stages})

        return self.db.run_interaction("get_ui_auth_session", txn)

    def complete_ui_auth_stage(
        self, session_id: str, stage: str, result: str
    ) -> defer.Deferred[None]:
        """Record a completed stage (completing it again replaces what it proved)."""

        def txn(cur: Cursor) -> None:
            cur.execute("DELETE FROM ui_auth_stages WHERE session_id = ? AND stage = ?",
                        (session_id, stage))
            cur.execute("INSERT INTO ui_auth_stages (session_id, stage, result) VALUES (?, ?, ?)",
                        (session_id, stage, result))

        return self.db.run_interaction("complete_ui_auth_stage", txn)

    def delete_ui_auth_session(self, session_id: str) -> defer.Deferred[None]:
        def txn(cur: Cursor) -> None:
            cur.execute("DELETE FROM ui_auth_stages WHERE session_id = ?", (session_id,))
            cur.execute("DELETE FROM ui_auth_sessions WHERE session_id = ?", (session_id,))

        return self.db.run_interaction("delete_ui_auth_session", txn)

    def purge_ui_auth_sessions(self, created_before_ms: int) -> defer.Deferred[int]:
        """Delete sessions created before ``created_before_ms``; returns how many."""

        def txn(cur: Cursor) -> int:
            old = [r[0] for r in cur.select_all(
                "SELECT session_id FROM ui_auth_sessions WHERE created_ts < ?",
                (created_before_ms,))]
            clause, args = cur.in_clause("session_id", old)
            cur.execute(f"DELETE FROM ui_auth_stages WHERE {clause}", args)
            cur.execute(f"DELETE FROM ui_auth_sessions WHERE {clause}", args)
            return len(old)

        return self.db.run_interaction("purge_ui_auth_sessions", txn)


def deactivate_in(cur: Cursor, user_id: str, erase: bool = False) -> list[str]:
    """Deactivate the account in the caller's transaction (see :meth:`UserStore.deactivate`)."""
    cur.execute("UPDATE users SET deactivated = ?, password_hash = NULL WHERE user_id = ?",
                (True, user_id))
    if erase:
        cur.execute("UPDATE profiles SET displayname = NULL, avatar_url = NULL WHERE user_id = ?",
                    (user_id,))
    return _delete_devices_except(cur, user_id, None)


def _delete_devices_except(cur: Cursor, user_id: str, keep_device_id: str | None) -> list[str]:
    """Delete a user's devices and tokens, sparing ``keep_device_id``; returns token hashes."""
    keep = keep_device_id if keep_device_id is not None else ""
    hashes = [r[0] for r in cur.select_all(
        "SELECT token_hash FROM access_tokens WHERE user_id = ? AND device_id <> ?",
        (user_id, keep))]
    cur.execute("DELETE FROM access_tokens WHERE user_id = ? AND device_id <> ?", (user_id, keep))
    cur.execute("DELETE FROM devices WHERE user_id = ? AND device_id <> ?", (user_id, keep))
    return hashes
