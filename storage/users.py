"""Accounts, devices and access tokens (tokens are stored as SHA-256 hashes, never in clear)."""

from __future__ import annotations

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


@dataclass(frozen=True)
class Device:
    user_id: str
    device_id: str
    display_name: str | None
    last_seen_ts: int | None
    last_seen_ip: str | None

    def to_json(self) -> dict[str, Any]:
        return {
            "device_id": self.device_id,
            "display_name": self.display_name,
            "last_seen_ts": self.last_seen_ts,
            "last_seen_ip": self.last_seen_ip,
        }


class UserStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    # -- accounts ------------------------------------------------------------------------------
    def create_user(
        self, user_id: str, password_hash: str | None, now_ms: int, *, is_admin: bool = False,
        is_guest: bool = False,
    ) -> defer.Deferred[None]:
        def txn(cur: Cursor) -> None:
            cur.execute(
                "INSERT INTO users (user_id, password_hash, created_ts, is_admin, is_guest)"
                " VALUES (?, ?, ?, ?, ?)",
                (user_id, password_hash, now_ms, is_admin, is_guest),
            )
            cur.execute("INSERT INTO profiles (user_id, displayname) VALUES (?, ?)",
                        (user_id, user_id[1:].split(":", 1)[0]))

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

    def set_admin(self, user_id: str, is_admin: bool) -> defer.Deferred[None]:
        return self.db.run_interaction(
            "set_admin",
            lambda cur: cur.execute(
                "UPDATE users SET is_admin = ? WHERE user_id = ?", (is_admin, user_id)
            ) and None,
        )

    def deactivate(self, user_id: str) -> defer.Deferred[list[str]]:
        """Mark the account deactivated and drop its devices and tokens; returns token hashes."""

        def txn(cur: Cursor) -> list[str]:
            hashes = [r[0] for r in cur.select_all(
                "SELECT token_hash FROM access_tokens WHERE user_id = ?", (user_id,))]
            cur.execute("UPDATE users SET deactivated = ?, password_hash = NULL WHERE user_id = ?",
                        (True, user_id))
            cur.execute("DELETE FROM access_tokens WHERE user_id = ?", (user_id,))
            cur.execute("DELETE FROM devices WHERE user_id = ?", (user_id,))
            return hashes

        return self.db.run_interaction("deactivate", txn)

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
                "SELECT t.user_id, t.device_id, u.is_admin, u.is_guest, u.deactivated"
                " FROM access_tokens t JOIN users u ON u.user_id = t.user_id"
                " WHERE t.token_hash = ?", (token_hash,))
            if row is None:
                return None
            return TokenOwner(row[0], row[1], bool(row[2]), bool(row[3]), bool(row[4]))

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

    def get_devices(self, user_id: str) -> defer.Deferred[list[Device]]:
        def txn(cur: Cursor) -> list[Device]:
            rows = cur.select_all(
                "SELECT user_id, device_id, display_name, last_seen_ts, last_seen_ip"
                " FROM devices WHERE user_id = ? ORDER BY device_id", (user_id,))
            return [Device(*row) for row in rows]

        return self.db.run_interaction("get_devices", txn)

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

    def set_profile_field(self, user_id: str, field: str, value: str | None) -> defer.Deferred[None]:
        if field not in ("displayname", "avatar_url"):
            raise ValueError(field)
        return self.db.run_interaction(
            "set_profile_field",
            lambda cur: cur.execute(
                f"UPDATE profiles SET {field} = ? WHERE user_id = ?", (value, user_id)) and None,
        )
