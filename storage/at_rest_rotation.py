"""Key rotation for encryption at rest: re-sealing every sealed column under a new key.

A rotation (``at_rest_rotations``) has one *part* per sealed column and one for the media files
(``at_rest_rotation_parts``).  A part walks its table in primary-key order, a batch at a time;
each batch re-seals the rows not under the target key (clear rows written before encryption
was on included) and saves the last primary key it read in the same transaction, so a rotation
stopped anywhere, a ``kill -9`` included, goes on from there.  A row is re-sealed only if it
still holds what the batch read (compare and set), so a concurrent write by the node is never
overwritten; a row the node wrote under the old key (before it took up the new key file) is
found by a later pass.  A part is done after a whole pass that started late enough
(``settled_ts``: every node has read the new key file by then) re-sealed nothing.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from storage.at_rest import (
    ACCOUNT_DATA_CONTENT,
    APP_OUTBOX,
    APPS_CALLBACK_SECRET,
    EVENTS_JSON,
    FEDERATION_EDU,
    FEDERATION_PDU,
    KEY_BACKUP_SESSION,
    MEDIA_FILE,
    REMOTE_INVITES_EVENT,
    REMOTE_INVITES_STATE,
    REMOTE_KNOCKS_EVENT,
    REMOTE_KNOCKS_STATE,
    TO_DEVICE_CONTENT,
    DataKey,
    register_key_txn,
    seal_with,
    sealed_key_id,
)
from storage.database import Cursor


@dataclass(frozen=True)
class SealedColumn:
    """A column the stores seal: its context (the part's name), table and primary key."""

    context: str
    table: str
    column: str
    key_columns: tuple[str, ...]


SEALED_COLUMNS = (
    SealedColumn(EVENTS_JSON, "events", "json", ("stream_ordering",)),
    SealedColumn(TO_DEVICE_CONTENT, "to_device_inbox", "content",
                 ("user_id", "device_id", "stream_id")),
    SealedColumn(KEY_BACKUP_SESSION, "room_key_backup_keys", "session_data",
                 ("user_id", "version", "room_id", "session_id")),
    SealedColumn(ACCOUNT_DATA_CONTENT, "account_data", "content",
                 ("user_id", "room_id", "type")),
    # Undelivered data: what waits for another server.
    SealedColumn(FEDERATION_PDU, "federation_outbound_pdus", "pdu_json",
                 ("destination", "position")),
    SealedColumn(FEDERATION_EDU, "federation_outbound_edus", "content_json",
                 ("destination", "position")),
    # Invites and knocks from other servers: the event and the room's stripped state.
    *(SealedColumn(context, table, column, ("user_id", "room_id")) for context, table, column in (
        (REMOTE_INVITES_EVENT, "remote_invites", "event_json"),
        (REMOTE_INVITES_STATE, "remote_invites", "invite_state"),
        (REMOTE_KNOCKS_EVENT, "remote_knocks", "event_json"),
        (REMOTE_KNOCKS_STATE, "remote_knocks", "knock_state"))),
    # Secrets: the HMAC key of each application's callbacks.
    SealedColumn(APPS_CALLBACK_SECRET, "apps", "callback_secret", ("app_id",)),
    # Application messages accepted and not yet in their room.
    SealedColumn(APP_OUTBOX, "app_outbox", "contents", ("message_id",)),
)
# The media files are walked through the ``media`` table, one upload (and its thumbnails) a row.
MEDIA_TABLE = SealedColumn(MEDIA_FILE, "media", "", ("media_id",))
PARTS = (*(c.context for c in SEALED_COLUMNS), MEDIA_FILE)


@dataclass(frozen=True)
class Rotation:
    rotation_id: int
    target_key_id: str
    started_ts: int


@dataclass(frozen=True)
class PartProgress:
    part: str
    position: list[Any] | None  # the primary key of the last row read; None: a pass begins
    resealed: int
    passes: int
    pass_started_ts: int
    pass_resealed: int
    done: bool


@dataclass(frozen=True)
class Batch:
    """What one batch did: rows re-sealed, whether it ended a pass and whether the part is
    now done."""

    resealed: int
    pass_ended: bool
    done: bool


def current_rotation_txn(cur: Cursor) -> Rotation | None:
    """The rotation not finished yet, if any."""
    row = cur.select_one("SELECT rotation_id, target_key_id, started_ts FROM at_rest_rotations"
                         " WHERE done_ts IS NULL ORDER BY rotation_id LIMIT 1")
    return Rotation(int(row[0]), row[1], int(row[2])) if row else None


def begin_rotation_txn(cur: Cursor, target: DataKey, now_ms: int) -> Rotation:
    """Record a new rotation to ``target`` (which may seal data from now on)."""
    register_key_txn(cur, target.key_id, now_ms)
    rotation_id = int(cur.select_value(
        "SELECT COALESCE(MAX(rotation_id), 0) + 1 FROM at_rest_rotations"))
    cur.execute("INSERT INTO at_rest_rotations (rotation_id, target_key_id, started_ts)"
                " VALUES (?, ?, ?)", (rotation_id, target.key_id, now_ms))
    cur.executemany("INSERT INTO at_rest_rotation_parts (rotation_id, part, pass_started_ts)"
                    " VALUES (?, ?, ?)", [(rotation_id, part, now_ms) for part in PARTS])
    return Rotation(rotation_id, target.key_id, now_ms)


def progress_txn(cur: Cursor, rotation_id: int) -> list[PartProgress]:
    return [PartProgress(row[0], json.loads(row[1]) if row[1] else None, int(row[2]),
                         int(row[3]), int(row[4]), int(row[5]), bool(row[6]))
            for row in cur.select_all(
                "SELECT part, position, resealed, passes, pass_started_ts, pass_resealed, done"
                " FROM at_rest_rotation_parts WHERE rotation_id = ? ORDER BY part",
                (rotation_id,))]


def abandon_rotation_txn(cur: Cursor, rotation: Rotation) -> None:
    """Forget a rotation whose key never reached the key file (nothing was sealed with it)."""
    cur.execute("DELETE FROM at_rest_rotation_parts WHERE rotation_id = ?",
                (rotation.rotation_id,))
    cur.execute("DELETE FROM at_rest_rotations WHERE rotation_id = ?", (rotation.rotation_id,))
    cur.execute("DELETE FROM at_rest_keys WHERE key_id = ?", (rotation.target_key_id,))


def finish_rotation_txn(cur: Cursor, rotation: Rotation, now_ms: int) -> list[str]:
    """Mark the rotation done and forget the keys no data is sealed with any more (their IDs)."""
    cur.execute("UPDATE at_rest_rotations SET done_ts = ? WHERE rotation_id = ?",
                (now_ms, rotation.rotation_id))
    retired = [row[0] for row in cur.select_all(
        "SELECT key_id FROM at_rest_keys WHERE key_id <> ? ORDER BY key_id",
        (rotation.target_key_id,))]
    cur.execute("DELETE FROM at_rest_keys WHERE key_id <> ?", (rotation.target_key_id,))
    return retired


def next_rows_txn(cur: Cursor, table: SealedColumn, position: Sequence[Any] | None,
                  limit: int) -> list[tuple[Any, ...]]:
    """Up to ``limit`` rows after ``position`` in primary-key order: the key's columns, then
    the sealed column when the table has one."""
    keys = ", ".join(table.key_columns)
    columns = f"{keys}, {table.column}" if table.column else keys
    where, args = "", [limit]
    if position is not None:
        marks = ", ".join("?" for _ in table.key_columns)
        where, args = f" WHERE ({keys}) > ({marks})", [*position, limit]
    return cur.select_all(
        f"SELECT {columns} FROM {table.table}{where} ORDER BY {keys} LIMIT ?", args)


def save_batch_txn(cur: Cursor, rotation_id: int, part: PartProgress, rows_read: int,
                   last_key: Sequence[Any] | None, resealed: int, limit: int,
                   settled_ts: int, now_ms: int) -> Batch:
    """Record a batch of a part: where it stopped, what it re-sealed; a batch that read fewer
    than ``limit`` rows ends its pass, and the part is done when that pass started at or after
    ``settled_ts`` and re-sealed nothing."""
    pass_resealed = part.pass_resealed + resealed
    done = False
    position: str | None = json.dumps(list(last_key)) if last_key is not None else None
    passes, pass_started = part.passes, part.pass_started_ts
    if rows_read < limit:
        passes += 1
        done = pass_resealed == 0 and part.pass_started_ts >= settled_ts
        position, pass_resealed, pass_started = None, 0, now_ms
    cur.execute(
        "UPDATE at_rest_rotation_parts SET position = ?, resealed = resealed + ?, passes = ?,"
        " pass_started_ts = ?, pass_resealed = ?, done = ? WHERE rotation_id = ? AND part = ?",
        (position, resealed, passes, pass_started, pass_resealed, done, rotation_id, part.part))
    return Batch(resealed, rows_read < limit, done)


def reseal_batch_txn(cur: Cursor, rotation_id: int, column: SealedColumn, target: DataKey,
                     limit: int, settled_ts: int, now_ms: int) -> Batch:
    """One batch of a sealed column's part, in one transaction."""
    part = next(p for p in progress_txn(cur, rotation_id) if p.part == column.context)
    if part.done:
        return Batch(0, True, True)
    rows = next_rows_txn(cur, column, part.position, limit)
    width = len(column.key_columns)
    match = " AND ".join(f"{name} = ?" for name in column.key_columns)
    resealed = 0
    for row in rows:
        stored = row[width]
        if sealed_key_id(stored) == target.key_id:
            continue
        clear = cur.at_rest.open(column.context, stored)
        cur.execute(
            f"UPDATE {column.table} SET {column.column} = ? WHERE {match}"
            f" AND {column.column} = ?",
            (seal_with(target, column.context, clear), *row[:width], stored))
        resealed += cur.rowcount
    last = rows[-1][:width] if rows else None
    return save_batch_txn(cur, rotation_id, part, len(rows), last, resealed, limit,
                          settled_ts, now_ms)
