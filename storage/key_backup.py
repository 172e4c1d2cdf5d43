"""Server-side key backups: per-user backup versions and the encrypted room keys stored in them.

Everything stored is what the client encrypted or signed (``auth_data``, ``session_data``); the
node only reads the metadata the spec defines for choosing between two copies of a session key
(``is_verified``, ``first_message_index``, ``forwarded_count``).

Versions are numbered per user (1, 2, ...) and shown to clients as strings.  The *current*
version is the newest one not deleted.  Keys may only be stored into the current version; the
check and the write are one transaction, so a concurrent new version cannot slip in between.
Each change to a version's keys increments its ``etag``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from twisted.internet import defer

from protocol.canonical import MAX_SAFE_INT
from storage.at_rest import KEY_BACKUP_SESSION
from storage.database import Cursor, Database

JsonDict = dict[str, Any]


@dataclass(frozen=True)
class BackupVersion:
    version: str
    algorithm: str
    auth_data: JsonDict
    etag: str
    count: int

    def to_json(self) -> JsonDict:
        return {"version": self.version, "algorithm": self.algorithm,
                "auth_data": self.auth_data, "etag": self.etag, "count": self.count}


@dataclass(frozen=True)
class RoomKey:
    """One backed-up megolm session key."""

    room_id: str
    session_id: str
    first_message_index: int
    forwarded_count: int
    is_verified: bool
    session_data: JsonDict

    def to_json(self) -> JsonDict:
        return {"first_message_index": self.first_message_index,
                "forwarded_count": self.forwarded_count, "is_verified": self.is_verified,
                "session_data": self.session_data}


@dataclass(frozen=True)
class KeysUpdated:
    """The state of the version after a change: its etag and how many keys it holds."""

    etag: str
    count: int


@dataclass(frozen=True)
class NoBackup:
    """No current version exists (or the named one is unknown or deleted)."""


@dataclass(frozen=True)
class WrongVersion:
    """Keys may only be stored in the current version, which is ``current``."""

    current: str


def should_replace(existing: RoomKey, new: RoomKey) -> bool:
    """The spec's rule for a session already in the backup: prefer a verified key, then the
    one that decrypts from an earlier message, then the one forwarded fewer times; on a tie
    the stored key stays."""
    if existing.is_verified != new.is_verified:
        return new.is_verified
    if existing.first_message_index != new.first_message_index:
        return new.first_message_index < existing.first_message_index
    return new.forwarded_count < existing.forwarded_count


def parse_version(version: str) -> int | None:
    """The number behind a version string we handed out, or None for anything else (versions
    count up from 1, so one past canonical JSON's integers or not in ASCII digits is none)."""
    if not (version.isascii() and version.isdigit()) or len(version) > 16 \
            or version != str(int(version)) or int(version) > MAX_SAFE_INT:
        return None
    return int(version)


class KeyBackupStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    # -- versions ----------------------------------------------------------------------------
    def create_version(self, user_id: str, algorithm: str, auth_data: JsonDict
                       ) -> defer.Deferred[str]:
        """A new backup version, which becomes the current one."""

        def txn(cur: Cursor) -> str:
            latest = cur.select_value(
                "SELECT MAX(version) FROM room_key_backup_versions WHERE user_id = ?", (user_id,))
            number = int(latest or 0) + 1
            cur.execute(
                "INSERT INTO room_key_backup_versions (user_id, version, algorithm, auth_data,"
                " etag, deleted) VALUES (?, ?, ?, ?, ?, ?)",
                (user_id, number, algorithm, _dump(auth_data), 0, False))
            return str(number)

        return self.db.run_interaction("key_backup_create_version", txn)

    def get_version(self, user_id: str, version: str | None = None
                    ) -> defer.Deferred[BackupVersion | None]:
        """The named version (the current one when ``version`` is None), unless deleted."""

        def txn(cur: Cursor) -> BackupVersion | None:
            number = _live_version(cur, user_id, version)
            if number is None:
                return None
            row = cur.select_one(
                "SELECT algorithm, auth_data, etag FROM room_key_backup_versions"
                " WHERE user_id = ? AND version = ?", (user_id, number))
            assert row is not None
            return BackupVersion(str(number), row[0], json.loads(row[1]), str(row[2]),
                                 _count(cur, user_id, number))

        return self.db.run_interaction("key_backup_get_version", txn)

    def update_auth_data(self, user_id: str, version: str, auth_data: JsonDict
                         ) -> defer.Deferred[bool]:
        """Replace a live version's ``auth_data``; False if it does not exist."""

        def txn(cur: Cursor) -> bool:
            number = _live_version(cur, user_id, version)
            if number is None:
                return False
            cur.execute(
                "UPDATE room_key_backup_versions SET auth_data = ? WHERE user_id = ?"
                " AND version = ?", (_dump(auth_data), user_id, number))
            return True

        return self.db.run_interaction("key_backup_update_auth_data", txn)

    def delete_version(self, user_id: str, version: str) -> defer.Deferred[bool]:
        """Delete a version and every key in it.  True when it is gone now (including when it
        was deleted before), False when it never existed."""

        def txn(cur: Cursor) -> bool:
            number = parse_version(version)
            if number is None:
                return False
            cur.execute(
                "UPDATE room_key_backup_versions SET deleted = ? WHERE user_id = ?"
                " AND version = ?", (True, user_id, number))
            if cur.rowcount == 0:
                return False
            cur.execute("DELETE FROM room_key_backup_keys WHERE user_id = ? AND version = ?",
                        (user_id, number))
            return True

        return self.db.run_interaction("key_backup_delete_version", txn)

    # -- keys --------------------------------------------------------------------------------
    def put_keys(self, user_id: str, version: str, keys: Iterable[RoomKey]
                 ) -> defer.Deferred[KeysUpdated | NoBackup | WrongVersion]:
        """Store ``keys`` in the current version, each only where :func:`should_replace`
        prefers it to the key already stored for its session."""
        keys = list(keys)

        def txn(cur: Cursor) -> KeysUpdated | NoBackup | WrongVersion:
            current = _live_version(cur, user_id, None)
            if current is None:
                return NoBackup()
            if parse_version(version) != current:
                return WrongVersion(str(current))
            changed = 0
            for key in keys:
                existing = _get_key(cur, user_id, current, key.room_id, key.session_id)
                if existing is not None and not should_replace(existing, key):
                    continue
                cur.execute(
                    "DELETE FROM room_key_backup_keys WHERE user_id = ? AND version = ?"
                    " AND room_id = ? AND session_id = ?",
                    (user_id, current, key.room_id, key.session_id))
                cur.execute(
                    "INSERT INTO room_key_backup_keys (user_id, version, room_id, session_id,"
                    " first_message_index, forwarded_count, is_verified, session_data)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (user_id, current, key.room_id, key.session_id, key.first_message_index,
                     key.forwarded_count, key.is_verified,
                     cur.at_rest.seal_json(KEY_BACKUP_SESSION, key.session_data)))
                changed += 1
            return _updated(cur, user_id, current, bump=changed > 0)

        return self.db.run_interaction("key_backup_put_keys", txn)

    def get_keys(self, user_id: str, version: str, room_id: str | None = None,
                 session_id: str | None = None) -> defer.Deferred[list[RoomKey] | None]:
        """Keys of a live version (optionally of one room, or one session); None when the
        version is unknown or deleted."""

        def txn(cur: Cursor) -> list[RoomKey] | None:
            number = _live_version(cur, user_id, version)
            if number is None:
                return None
            where, args = _key_filter(user_id, number, room_id, session_id)
            rows = cur.select_all(
                "SELECT room_id, session_id, first_message_index, forwarded_count, is_verified,"
                f" session_data FROM room_key_backup_keys WHERE {where}"
                " ORDER BY room_id, session_id", args)
            return [_room_key(cur, row) for row in rows]

        return self.db.run_interaction("key_backup_get_keys", txn)

    def delete_keys(self, user_id: str, version: str, room_id: str | None = None,
                    session_id: str | None = None
                    ) -> defer.Deferred[KeysUpdated | None]:
        """Delete keys of a live version (all, one room's or one session); None when the
        version is unknown or deleted."""

        def txn(cur: Cursor) -> KeysUpdated | None:
            number = _live_version(cur, user_id, version)
            if number is None:
                return None
            where, args = _key_filter(user_id, number, room_id, session_id)
            cur.execute(f"DELETE FROM room_key_backup_keys WHERE {where}", args)
            return _updated(cur, user_id, number, bump=cur.rowcount > 0)

        return self.db.run_interaction("key_backup_delete_keys", txn)


def _dump(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def _live_version(cur: Cursor, user_id: str, version: str | None) -> int | None:
    """The number of the named (or current) version if it exists and is not deleted."""
    if version is None:
        value = cur.select_value(
            "SELECT MAX(version) FROM room_key_backup_versions WHERE user_id = ?"
            " AND deleted = ?", (user_id, False))
        return int(value) if value is not None else None
    number = parse_version(version)
    if number is None:
        return None
    found = cur.select_one(
        "SELECT 1 FROM room_key_backup_versions WHERE user_id = ? AND version = ?"
        " AND deleted = ?", (user_id, number, False))
    return number if found else None


def _count(cur: Cursor, user_id: str, number: int) -> int:
    return int(cur.select_value(
        "SELECT COUNT(*) FROM room_key_backup_keys WHERE user_id = ? AND version = ?",
        (user_id, number)))


def _updated(cur: Cursor, user_id: str, number: int, *, bump: bool) -> KeysUpdated:
    if bump:
        cur.execute("UPDATE room_key_backup_versions SET etag = etag + 1 WHERE user_id = ?"
                    " AND version = ?", (user_id, number))
    etag = cur.select_value(
        "SELECT etag FROM room_key_backup_versions WHERE user_id = ? AND version = ?",
        (user_id, number))
    return KeysUpdated(str(etag), _count(cur, user_id, number))


def _key_filter(user_id: str, number: int, room_id: str | None, session_id: str | None
                ) -> tuple[str, list[Any]]:
    where = "user_id = ? AND version = ?"
    args: list[Any] = [user_id, number]
    if room_id is not None:
        where += " AND room_id = ?"
        args.append(room_id)
        if session_id is not None:
            where += " AND session_id = ?"
            args.append(session_id)
    return where, args


def _get_key(cur: Cursor, user_id: str, number: int, room_id: str, session_id: str
             ) -> RoomKey | None:
    row = cur.select_one(
        "SELECT room_id, session_id, first_message_index, forwarded_count, is_verified,"
        " session_data FROM room_key_backup_keys WHERE user_id = ? AND version = ?"
        " AND room_id = ? AND session_id = ?", (user_id, number, room_id, session_id))
    return _room_key(cur, row) if row is not None else None


def _room_key(cur: Cursor, row: tuple[Any, ...]) -> RoomKey:
    return RoomKey(row[0], row[1], int(row[2]), int(row[3]), bool(row[4]),
                   cur.at_rest.open_json(KEY_BACKUP_SESSION, row[5]))
