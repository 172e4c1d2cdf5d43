"""End-to-end encryption keys of devices, and the device-list change stream.

* identity keys of local devices (``e2e_device_keys``), as signed by the device;
* one-time keys (claimed at most once: claiming deletes them inside the claiming transaction) and
  fallback keys (one per device and algorithm; handed out when no one-time key is left and then
  marked used, until the device uploads a new one);
* ``device_list_changes``: one row per change of a user's device list, at a position of the
  node's stream, for /sync ``device_lists`` and /keys/changes;
* a cache of remote users' device keys, kept current by their server's ``m.device_list_update``
  EDUs (applied when they follow on from what we hold, else the cache is dropped).

Keys are opaque JSON objects to the store; the broker validates them before they get here.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from twisted.internet import defer

from storage.database import Cursor, Database

JsonDict = dict[str, Any]
# user_id -> device_id -> key object
DeviceKeyMap = dict[str, dict[str, JsonDict]]

MAX_CLAIM_ATTEMPTS = 5


class UnknownDevice(Exception):
    """Keys were uploaded for a device that does not exist (any more)."""


class OneTimeKeyConflict(Exception):
    """A one-time key ID is already held with different content."""

    def __init__(self, key_id: str) -> None:
        super().__init__(f"One-time key {key_id} already exists with different content")
        self.key_id = key_id


@dataclass(frozen=True)
class KeyCounts:
    """Unclaimed one-time keys per algorithm and the algorithms of unused fallback keys."""

    one_time: dict[str, int]
    unused_fallback: list[str]


@dataclass(frozen=True)
class DeviceListChange:
    """A change written to ``device_list_changes`` and the user's change before it."""

    device_id: str
    stream_id: int
    prev_stream_id: int | None


@dataclass(frozen=True)
class UploadResult:
    counts: KeyCounts
    change: DeviceListChange | None  # set when the device's identity keys are new or changed


@dataclass(frozen=True)
class LocalDevice:
    device_id: str
    display_name: str | None
    keys: JsonDict


@dataclass
class RemoteDeviceList:
    """The cached, complete device list of a remote user."""

    devices: dict[str, JsonDict] = field(default_factory=dict)
    cross_signing: JsonDict = field(default_factory=dict)


def encode(obj: Any) -> str:
    """A stable text form (sorted keys), so equal objects compare equal as text."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def split_key_id(full_id: str) -> tuple[str, str]:
    """``"<algorithm>:<key_id>"`` -> (algorithm, key_id)."""
    algorithm, _, key_id = full_id.partition(":")
    return algorithm, key_id


class DeviceKeyStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    # -- uploads --------------------------------------------------------------------------------
    def upload_keys(
        self, user_id: str, device_id: str, *, device_keys: JsonDict | None,
        one_time_keys: Mapping[str, Any], fallback_keys: Mapping[str, Any], now_ms: int,
        stream_id: int,
    ) -> defer.Deferred[UploadResult]:
        """Store what a device uploaded, in one transaction.

        New or changed identity keys add a ``device_list_changes`` row at ``stream_id`` (the
        result's ``change``; None when they are unchanged or absent).  A one-time key ID already
        held with other content raises :class:`OneTimeKeyConflict` and nothing is written; the
        same key uploaded again is ignored.  A fallback key replaces the device's fallback key of
        its algorithm (an identical one keeps its used flag).  Raises :class:`UnknownDevice` when
        the device is gone.
        """

        def txn(cur: Cursor) -> UploadResult:
            if cur.select_one("SELECT 1 FROM devices WHERE user_id = ? AND device_id = ?",
                              (user_id, device_id)) is None:
                raise UnknownDevice(device_id)
            change = None
            if device_keys is not None:
                change = _store_device_keys(cur, user_id, device_id, device_keys, now_ms,
                                            stream_id)
            _store_one_time_keys(cur, user_id, device_id, one_time_keys, now_ms)
            _store_fallback_keys(cur, user_id, device_id, fallback_keys)
            return UploadResult(_key_counts(cur, user_id, device_id), change)

        return self.db.run_interaction("upload_keys", txn)

    def get_key_counts(self, user_id: str, device_id: str) -> defer.Deferred[KeyCounts]:
        return self.db.run_interaction("get_key_counts", _key_counts, user_id, device_id)

    # -- queries of local devices --------------------------------------------------------------
    def get_device_keys(
        self, query: Mapping[str, Sequence[str]], *, include_display_names: bool = True,
    ) -> defer.Deferred[DeviceKeyMap]:
        """Identity keys of the queried devices (an empty list means every device of the
        user), with ``unsigned.device_display_name`` when asked and the device has a name.
        Users and devices without keys are left out."""

        def txn(cur: Cursor) -> DeviceKeyMap:
            found: DeviceKeyMap = {}
            for user_id, device_ids in query.items():
                sql = ("SELECT k.device_id, k.key_json, d.display_name FROM e2e_device_keys k"
                       " LEFT JOIN devices d ON d.user_id = k.user_id"
                       " AND d.device_id = k.device_id WHERE k.user_id = ?")
                args: list[Any] = [user_id]
                if device_ids:
                    clause, more = cur.in_clause("k.device_id", list(device_ids))
                    sql += f" AND {clause}"
                    args += more
                for device_id, key_json, display_name in cur.select_all(sql, args):
                    keys = json.loads(key_json)
                    if include_display_names and display_name is not None:
                        unsigned = dict(keys.get("unsigned") or {})
                        unsigned["device_display_name"] = display_name
                        keys["unsigned"] = unsigned
                    found.setdefault(user_id, {})[device_id] = keys
            return found

        return self.db.run_interaction("get_device_keys", txn)

    def get_devices_with_keys(self, user_id: str) -> defer.Deferred[list[LocalDevice]]:
        """Every device of a local user that has identity keys, by device ID."""

        def txn(cur: Cursor) -> list[LocalDevice]:
            rows = cur.select_all(
                "SELECT k.device_id, d.display_name, k.key_json FROM e2e_device_keys k"
                " LEFT JOIN devices d ON d.user_id = k.user_id AND d.device_id = k.device_id"
                " WHERE k.user_id = ? ORDER BY k.device_id", (user_id,))
            return [LocalDevice(r[0], r[1], json.loads(r[2])) for r in rows]

        return self.db.run_interaction("get_devices_with_keys", txn)

    # -- claims ---------------------------------------------------------------------------------
    def claim_keys(
        self, wanted: Iterable[tuple[str, str, str]],
    ) -> defer.Deferred[DeviceKeyMap]:
        """Claim one key per (user_id, device_id, algorithm), all in one transaction: a one-time
        key (deleted as it is claimed) or, when none is left, the fallback key of that
        algorithm (marked used).  Answers ``{user: {device: {"<alg>:<key_id>": key}}}``;
        devices with no key of the algorithm are left out."""
        wanted = list(wanted)

        def txn(cur: Cursor) -> DeviceKeyMap:
            claimed: DeviceKeyMap = {}
            for user_id, device_id, algorithm in wanted:
                key = _claim_one_time_key(cur, user_id, device_id, algorithm)
                if key is None:
                    key = _claim_fallback_key(cur, user_id, device_id, algorithm)
                if key is not None:
                    claimed.setdefault(user_id, {})[device_id] = {key[0]: key[1]}
            return claimed

        return self.db.run_interaction("claim_keys", txn)

    # -- device deletion ------------------------------------------------------------------------
    def delete_devices_keys(
        self, user_id: str, device_ids: Sequence[str], stream_ids: Sequence[int],
    ) -> defer.Deferred[list[DeviceListChange]]:
        """Remove every key of deleted devices, in one transaction that also records a
        device-list change for each device that had identity keys (``stream_ids[i]`` for
        ``device_ids[i]``; the ids of devices without identity keys stay unused)."""
        if len(device_ids) != len(stream_ids):
            raise ValueError("one stream id per device")

        def txn(cur: Cursor) -> list[DeviceListChange]:
            clause, args = cur.in_clause("device_id", list(device_ids))
            had_keys = {r[0] for r in cur.select_all(
                f"SELECT device_id FROM e2e_device_keys WHERE user_id = ? AND {clause}",
                [user_id, *args])}
            for table in ("e2e_device_keys", "e2e_one_time_keys", "e2e_fallback_keys"):
                cur.execute(f"DELETE FROM {table} WHERE user_id = ? AND {clause}",
                            [user_id, *args])
            return [_record_change(cur, user_id, device_id, stream_id)
                    for device_id, stream_id in zip(device_ids, stream_ids, strict=True)
                    if device_id in had_keys]

        return self.db.run_interaction("delete_devices_keys", txn)

    # -- the change stream ----------------------------------------------------------------------
    def get_changed_users(self, after: int, up_to: int) -> defer.Deferred[set[str]]:
        """Users whose device lists changed at positions in ``(after, up_to]``."""

        def txn(cur: Cursor) -> set[str]:
            rows = cur.select_all(
                "SELECT DISTINCT user_id FROM device_list_changes"
                " WHERE stream_id > ? AND stream_id <= ?", (after, up_to))
            return {r[0] for r in rows}

        return self.db.run_interaction("get_changed_users", txn)

    def get_membership_changes(
        self, room_ids: Sequence[str], after: int, up_to: int,
    ) -> defer.Deferred[list[tuple[str, str]]]:
        """(room_id, user_id) of membership events in ``room_ids`` at positions in
        ``(after, up_to]``, in stream order."""

        def txn(cur: Cursor) -> list[tuple[str, str]]:
            clause, args = cur.in_clause("room_id", list(room_ids))
            rows = cur.select_all(
                "SELECT room_id, state_key FROM events WHERE type = 'm.room.member'"
                f" AND outlier = ? AND stream_ordering > ? AND stream_ordering <= ? AND {clause}"
                " ORDER BY stream_ordering", [False, after, up_to, *args])
            return [(r[0], r[1]) for r in rows]

        return self.db.run_interaction("device_lists_membership_changes", txn)

    def get_last_change(self, user_id: str) -> defer.Deferred[int]:
        """The position of the user's latest device-list change (0 if none)."""
        return self.db.run_interaction(
            "get_last_change",
            lambda cur: int(cur.select_value(
                "SELECT MAX(stream_id) FROM device_list_changes WHERE user_id = ?",
                (user_id,)) or 0))

    # -- remote users ---------------------------------------------------------------------------
    def get_remote_cache(
        self, user_ids: Sequence[str],
    ) -> defer.Deferred[dict[str, RemoteDeviceList]]:
        """The cached device lists of those ``user_ids`` whose cache is complete and current."""

        def txn(cur: Cursor) -> dict[str, RemoteDeviceList]:
            clause, args = cur.in_clause("user_id", list(user_ids))
            found: dict[str, RemoteDeviceList] = {}
            for user_id, cross_json in cur.select_all(
                    "SELECT user_id, cross_signing_json FROM e2e_remote_device_lists"
                    f" WHERE cached_ts IS NOT NULL AND {clause}", args):
                found[user_id] = RemoteDeviceList(
                    cross_signing=json.loads(cross_json) if cross_json else {})
            clause, args = cur.in_clause("user_id", list(found))
            for user_id, device_id, key_json in cur.select_all(
                    f"SELECT user_id, device_id, key_json FROM e2e_remote_device_keys"
                    f" WHERE {clause}", args):
                found[user_id].devices[device_id] = json.loads(key_json)
            return found

        return self.db.run_interaction("get_remote_cache", txn)

    def set_remote_cache(
        self, user_id: str, devices: Mapping[str, JsonDict], cross_signing: JsonDict,
        now_ms: int,
    ) -> defer.Deferred[None]:
        """Replace the cached device list of a remote user with a complete, fresh answer."""

        def txn(cur: Cursor) -> None:
            cur.execute("DELETE FROM e2e_remote_device_keys WHERE user_id = ?", (user_id,))
            cur.executemany(
                "INSERT INTO e2e_remote_device_keys (user_id, device_id, key_json)"
                " VALUES (?, ?, ?)",
                [(user_id, device_id, encode(keys)) for device_id, keys in devices.items()])
            updated = cur.execute(
                "UPDATE e2e_remote_device_lists SET cached_ts = ?, cross_signing_json = ?"
                " WHERE user_id = ?", (now_ms, encode(cross_signing), user_id)).rowcount
            if not updated:
                cur.execute(
                    "INSERT INTO e2e_remote_device_lists (user_id, remote_stream_id, cached_ts,"
                    " cross_signing_json) VALUES (?, NULL, ?, ?)",
                    (user_id, now_ms, encode(cross_signing)))

        return self.db.run_interaction("set_remote_cache", txn)

    def forget_remote_cache(self, user_ids: Iterable[str]) -> defer.Deferred[None]:
        """Drop the cached device lists of remote users (the next query asks their server)."""
        users = sorted(set(user_ids))

        def txn(cur: Cursor) -> None:
            for user_id in users:
                _drop_remote_cache(cur, user_id)

        return self.db.run_interaction("forget_remote_cache", txn)

    def apply_remote_update(
        self, user_id: str, device_id: str, *, remote_stream_id: int, prev_ids: Sequence[int],
        deleted: bool, keys: JsonDict | None, stream_id: int,
    ) -> defer.Deferred[bool]:
        """Record an ``m.device_list_update`` of a remote user, in one transaction.

        An update seen before (``remote_stream_id`` not above the last one) changes nothing and
        answers False.  Otherwise a ``device_list_changes`` row is written at ``stream_id`` and
        the cache is updated when the update follows on from what it holds (its ``prev_id``
        names only the last update seen) and says what changed (``deleted`` or ``keys``);
        otherwise the cache is dropped, so the next /keys/query asks the user's server."""

        def txn(cur: Cursor) -> bool:
            row = cur.select_one(
                "SELECT remote_stream_id, cached_ts FROM e2e_remote_device_lists"
                " WHERE user_id = ?", (user_id,))
            last, cached = (row[0], row[1]) if row is not None else (None, None)
            if last is not None and remote_stream_id <= int(last):
                return False
            follows = (cached is not None and last is not None and bool(prev_ids)
                       and set(prev_ids) <= {int(last)})
            if follows and deleted:
                cur.execute(
                    "DELETE FROM e2e_remote_device_keys WHERE user_id = ? AND device_id = ?",
                    (user_id, device_id))
            elif follows and keys is not None:
                cur.execute(
                    "DELETE FROM e2e_remote_device_keys WHERE user_id = ? AND device_id = ?",
                    (user_id, device_id))
                cur.execute(
                    "INSERT INTO e2e_remote_device_keys (user_id, device_id, key_json)"
                    " VALUES (?, ?, ?)", (user_id, device_id, encode(keys)))
            else:
                _drop_remote_cache(cur, user_id)
            if row is None:
                cur.execute(
                    "INSERT INTO e2e_remote_device_lists (user_id, remote_stream_id, cached_ts,"
                    " cross_signing_json) VALUES (?, ?, NULL, NULL)", (user_id, remote_stream_id))
            else:
                cur.execute("UPDATE e2e_remote_device_lists SET remote_stream_id = ?"
                            " WHERE user_id = ?", (remote_stream_id, user_id))
            _record_change(cur, user_id, device_id, stream_id)
            return True

        return self.db.run_interaction("apply_remote_update", txn)


# -- transaction helpers ---------------------------------------------------------------------------
def _record_change(cur: Cursor, user_id: str, device_id: str, stream_id: int) -> DeviceListChange:
    prev = cur.select_value(
        "SELECT MAX(stream_id) FROM device_list_changes WHERE user_id = ?", (user_id,))
    cur.execute("INSERT INTO device_list_changes (user_id, stream_id, device_id) VALUES (?, ?, ?)",
                (user_id, stream_id, device_id))
    return DeviceListChange(device_id, stream_id, int(prev) if prev is not None else None)


def _store_device_keys(cur: Cursor, user_id: str, device_id: str, keys: JsonDict, now_ms: int,
                       stream_id: int) -> DeviceListChange | None:
    text = encode(keys)
    old = cur.select_value(
        "SELECT key_json FROM e2e_device_keys WHERE user_id = ? AND device_id = ?",
        (user_id, device_id))
    if old == text:
        return None
    if old is None:
        cur.execute("INSERT INTO e2e_device_keys (user_id, device_id, key_json, ts)"
                    " VALUES (?, ?, ?, ?)", (user_id, device_id, text, now_ms))
    else:
        cur.execute("UPDATE e2e_device_keys SET key_json = ?, ts = ?"
                    " WHERE user_id = ? AND device_id = ?", (text, now_ms, user_id, device_id))
    return _record_change(cur, user_id, device_id, stream_id)


def _store_one_time_keys(cur: Cursor, user_id: str, device_id: str, keys: Mapping[str, Any],
                         now_ms: int) -> None:
    for full_id, key in keys.items():
        algorithm, key_id = split_key_id(full_id)
        text = encode(key)
        old = cur.select_value(
            "SELECT key_json FROM e2e_one_time_keys WHERE user_id = ? AND device_id = ?"
            " AND algorithm = ? AND key_id = ?", (user_id, device_id, algorithm, key_id))
        if old is None:
            cur.execute(
                "INSERT INTO e2e_one_time_keys (user_id, device_id, algorithm, key_id, key_json,"
                " ts) VALUES (?, ?, ?, ?, ?, ?)",
                (user_id, device_id, algorithm, key_id, text, now_ms))
        elif old != text:
            raise OneTimeKeyConflict(full_id)


def _store_fallback_keys(cur: Cursor, user_id: str, device_id: str,
                         keys: Mapping[str, Any]) -> None:
    for full_id, key in keys.items():
        algorithm, key_id = split_key_id(full_id)
        text = encode(key)
        old = cur.select_one(
            "SELECT key_id, key_json FROM e2e_fallback_keys WHERE user_id = ? AND device_id = ?"
            " AND algorithm = ?", (user_id, device_id, algorithm))
        if old is not None and old[0] == key_id and old[1] == text:
            continue
        cur.execute("DELETE FROM e2e_fallback_keys WHERE user_id = ? AND device_id = ?"
                    " AND algorithm = ?", (user_id, device_id, algorithm))
        cur.execute(
            "INSERT INTO e2e_fallback_keys (user_id, device_id, algorithm, key_id, key_json, used)"
            " VALUES (?, ?, ?, ?, ?, ?)", (user_id, device_id, algorithm, key_id, text, False))


def _key_counts(cur: Cursor, user_id: str, device_id: str) -> KeyCounts:
    counts = {algorithm: int(n) for algorithm, n in cur.select_all(
        "SELECT algorithm, COUNT(*) FROM e2e_one_time_keys WHERE user_id = ? AND device_id = ?"
        " GROUP BY algorithm", (user_id, device_id))}
    unused = sorted(r[0] for r in cur.select_all(
        "SELECT algorithm FROM e2e_fallback_keys WHERE user_id = ? AND device_id = ?"
        " AND used = ?", (user_id, device_id, False)))
    return KeyCounts(counts, unused)


def _claim_one_time_key(cur: Cursor, user_id: str, device_id: str,
                        algorithm: str) -> tuple[str, Any] | None:
    # Select then delete by primary key.  On PostgreSQL concurrent claims skip the rows another
    # claim has locked; should a row still vanish under us (our DELETE touches no row), the
    # next key is taken instead.  SQLite has a single writer.
    lock = " FOR UPDATE SKIP LOCKED" if cur.engine == "postgres" else ""
    for _ in range(MAX_CLAIM_ATTEMPTS):
        row = cur.select_one(
            "SELECT key_id, key_json FROM e2e_one_time_keys WHERE user_id = ? AND device_id = ?"
            f" AND algorithm = ? ORDER BY key_id LIMIT 1{lock}", (user_id, device_id, algorithm))
        if row is None:
            return None
        deleted = cur.execute(
            "DELETE FROM e2e_one_time_keys WHERE user_id = ? AND device_id = ? AND algorithm = ?"
            " AND key_id = ?", (user_id, device_id, algorithm, row[0])).rowcount
        if deleted == 1:
            return f"{algorithm}:{row[0]}", json.loads(row[1])
    return None


def _claim_fallback_key(cur: Cursor, user_id: str, device_id: str,
                        algorithm: str) -> tuple[str, Any] | None:
    row = cur.select_one(
        "SELECT key_id, key_json FROM e2e_fallback_keys WHERE user_id = ? AND device_id = ?"
        " AND algorithm = ?", (user_id, device_id, algorithm))
    if row is None:
        return None
    cur.execute("UPDATE e2e_fallback_keys SET used = ? WHERE user_id = ? AND device_id = ?"
                " AND algorithm = ?", (True, user_id, device_id, algorithm))
    return f"{algorithm}:{row[0]}", json.loads(row[1])


def _drop_remote_cache(cur: Cursor, user_id: str) -> None:
    cur.execute("DELETE FROM e2e_remote_device_keys WHERE user_id = ?", (user_id,))
    cur.execute("UPDATE e2e_remote_device_lists SET cached_ts = NULL, cross_signing_json = NULL"
                " WHERE user_id = ?", (user_id,))
