"""Image pack rooms of organisations, the jobs that bring their members up to date, and the
merge of a pack room's entry into a user's image pack account data (``{"rooms": {room_id:
{state_key: {}}}}``), read and written in one transaction so the user's own entries stay."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from twisted.internet import defer

from storage.account_data import GLOBAL, select_account_data_txn, upsert_account_data_txn
from storage.database import Cursor, Database

#: A pack room's wanted entry: the pack state keys to list, or None to remove the room.
RoomEntries = Mapping[str, Sequence[str] | None]


@dataclass(frozen=True)
class PackJob:
    org_id: str
    generation: int
    after_user: str
    done: int
    total: int
    started_ts: int
    finished_ts: int | None

    def to_json(self) -> dict[str, Any]:
        return {"state": "done" if self.finished_ts is not None else "running",
                "done": self.done, "total": self.total, "started_ts": self.started_ts,
                "finished_ts": self.finished_ts}


_JOB_COLUMNS = "org_id, generation, after_user, done, total, started_ts, finished_ts"


def merged_rooms(content: dict[str, Any] | None, entries: RoomEntries) -> dict[str, Any]:
    """``content`` (a user's image pack rooms account data) with ``entries`` applied: every
    other room and key kept, a listed room's own settings of a key kept."""
    merged = dict(content or {})
    rooms = merged.get("rooms")
    rooms = dict(rooms) if isinstance(rooms, dict) else {}
    for room_id, keys in entries.items():
        if keys is None:
            rooms.pop(room_id, None)
            continue
        before = rooms.get(room_id)
        before = before if isinstance(before, dict) else {}
        rooms[room_id] = {key: before.get(key, {}) if isinstance(before.get(key), dict)
                          else {} for key in keys}
    merged["rooms"] = rooms
    return merged


class ImagePackStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    # -- pack rooms ------------------------------------------------------------------------
    def rooms(self) -> defer.Deferred[dict[str, str]]:
        """Organisation ID -> its image pack room."""
        def read(cur: Cursor) -> dict[str, str]:
            return {str(org_id): str(room_id) for org_id, room_id in cur.select_all(
                "SELECT org_id, room_id FROM image_pack_rooms")}

        return self.db.run_interaction("image_pack_rooms", read)

    def add_room(self, org_id: str, room_id: str, now_ms: int) -> defer.Deferred[None]:
        return self.db.run_interaction(
            "image_pack_room_add", lambda cur: cur.execute(
                "INSERT INTO image_pack_rooms (org_id, room_id, created_ts) VALUES (?, ?, ?)",
                (org_id, room_id, now_ms)))

    # -- jobs ------------------------------------------------------------------------------
    def count_members(self, org_ids: Sequence[str]) -> defer.Deferred[int]:
        """How many accounts (not deactivated) are placed in any of ``org_ids``."""
        def read(cur: Cursor) -> int:
            if not org_ids:
                return 0
            clause, args = cur.in_clause("m.org_id", org_ids)
            return int(cur.select_value(
                "SELECT COUNT(*) FROM organisation_members m JOIN users u"
                f" ON u.user_id = m.user_id WHERE {clause} AND NOT u.deactivated", args))

        return self.db.run_interaction("image_pack_count_members", read)

    def job(self, org_id: str) -> defer.Deferred[PackJob | None]:
        def read(cur: Cursor) -> PackJob | None:
            row = cur.select_one(f"SELECT {_JOB_COLUMNS} FROM image_pack_jobs WHERE org_id = ?",
                                 (org_id,))
            return None if row is None else PackJob(*row)

        return self.db.run_interaction("image_pack_job", read)

    def unfinished_jobs(self) -> defer.Deferred[list[str]]:
        def read(cur: Cursor) -> list[str]:
            return [str(r[0]) for r in cur.select_all(
                "SELECT org_id FROM image_pack_jobs WHERE finished_ts IS NULL ORDER BY org_id")]

        return self.db.run_interaction("image_pack_unfinished_jobs", read)

    def restart_job(self, org_id: str, total: int, now_ms: int) -> defer.Deferred[None]:
        """Start the organisation's job again from its first member (a newer generation)."""
        def write(cur: Cursor) -> None:
            cur.execute(
                "INSERT INTO image_pack_jobs (org_id, generation, after_user, done, total,"
                " started_ts, finished_ts) VALUES (?, 1, '', 0, ?, ?, NULL)"
                " ON CONFLICT (org_id) DO UPDATE SET"
                " generation = image_pack_jobs.generation + 1, after_user = '', done = 0,"
                " total = excluded.total, started_ts = excluded.started_ts,"
                " finished_ts = NULL", (org_id, total, now_ms))

        return self.db.run_interaction("image_pack_job_restart", write)

    def progress(self, job: PackJob, after_user: str, done: int, finished_ts: int | None
                 ) -> defer.Deferred[bool]:
        """Record a batch done, unless the job was restarted meanwhile (False)."""
        def write(cur: Cursor) -> bool:
            cur.execute("UPDATE image_pack_jobs SET after_user = ?, done = ?, finished_ts = ?"
                        " WHERE org_id = ? AND generation = ?",
                        (after_user, done, finished_ts, job.org_id, job.generation))
            return cur.rowcount == 1

        return self.db.run_interaction("image_pack_job_progress", write)

    # -- account data ----------------------------------------------------------------------
    def merge_entries(self, user_id: str, data_type: str, entries: RoomEntries,
                      stream_id: int) -> defer.Deferred[None]:
        """Apply ``entries`` to the user's ``data_type`` account data (read and written in
        this transaction, locked on PostgreSQL)."""
        def write(cur: Cursor) -> None:
            content = select_account_data_txn(cur, user_id, GLOBAL, data_type, for_update=True)
            merged = merged_rooms(content, entries)
            if json.dumps(merged, sort_keys=True) != json.dumps(content, sort_keys=True):
                upsert_account_data_txn(cur, user_id, GLOBAL, data_type, merged, stream_id)

        return self.db.run_interaction("image_pack_account_data", write)
