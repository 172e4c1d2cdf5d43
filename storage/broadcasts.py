"""Broadcasts from the portal and their recipients (:mod:`broker.broadcasts`): the audience
read from the organisations' members and role grants, a broadcast and its recipients written
with its audit entry in one transaction, the job's progress in batches, and who read it,
from the read receipts of the recipients' rooms (one query, no row per reader)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from twisted.internet import defer

from storage.audit import AuditDraft, append_entry
from storage.database import Cursor, Database
from storage.receipts import READ

BATCH = 500  # organisations or roles per IN clause


@dataclass(frozen=True)
class BroadcastRow:
    broadcast_id: str
    org_id: str
    sender: str
    sent_by: str
    room_name: str
    content: dict[str, Any]
    audience: dict[str, Any]
    leave_allowed: bool
    recipients: int
    done: int
    created_ts: int
    finished_ts: int | None


@dataclass(frozen=True)
class Sent:
    """What carried the broadcast to its recipient number ``seq`` (room "" and no position:
    none could)."""

    seq: int
    room_id: str
    event_id: str
    stream_ordering: int | None


_COLUMNS = ("broadcast_id, org_id, sender, sent_by, room_name, content, audience,"
            " leave_allowed, recipients, done, created_ts, finished_ts")


def _row(r: Sequence[Any]) -> BroadcastRow:
    return BroadcastRow(str(r[0]), str(r[1]), str(r[2]), str(r[3]), str(r[4]),
                        json.loads(r[5]), json.loads(r[6]), bool(r[7]), int(r[8]), int(r[9]),
                        int(r[10]), None if r[11] is None else int(r[11]))


def _chunks(values: Sequence[str]) -> list[list[str]]:
    return [list(values[i:i + BATCH]) for i in range(0, len(values), BATCH)]


class BroadcastStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    # -- the audience -------------------------------------------------------------------------
    def members(self, org_ids: Sequence[str]) -> defer.Deferred[list[tuple[str, str, str]]]:
        """(user ID, organisation, designation or "") of the active accounts placed in
        ``org_ids``, in user ID order."""
        def read(cur: Cursor) -> list[tuple[str, str, str]]:
            found: list[tuple[str, str, str]] = []
            for part in _chunks(org_ids):
                where, args = cur.in_clause("m.org_id", part)
                found += [(str(u), str(o), str(d or "")) for u, o, d in cur.select_all(
                    "SELECT m.user_id, m.org_id, m.designation FROM organisation_members m"
                    " JOIN users u ON u.user_id = m.user_id"
                    f" WHERE {where} AND NOT u.deactivated", args)]
            return sorted(found)

        return self.db.run_interaction("broadcast_members", read)

    def role_holders(self, roles: Sequence[str], org_ids: Sequence[str]
                     ) -> defer.Deferred[set[str]]:
        """Users holding one of ``roles`` over one of ``org_ids``."""
        def read(cur: Cursor) -> set[str]:
            found: set[str] = set()
            role_where, role_args = cur.in_clause("role", list(roles))
            for part in _chunks(org_ids):
                where, args = cur.in_clause("org_id", part)
                found.update(str(u) for (u,) in cur.select_all(
                    f"SELECT user_id FROM role_grants WHERE {role_where} AND {where}",
                    [*role_args, *args]))
            return found

        return self.db.run_interaction("broadcast_role_holders", read)

    # -- broadcasts ---------------------------------------------------------------------------
    def create(self, row: BroadcastRow, recipients: Sequence[str], entry: AuditDraft
               ) -> defer.Deferred[None]:
        def write(cur: Cursor) -> None:
            append_entry(cur, entry)
            cur.execute(f"INSERT INTO broadcasts ({_COLUMNS}) VALUES"
                        " (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (row.broadcast_id, row.org_id, row.sender, row.sent_by, row.room_name,
                         json.dumps(row.content), json.dumps(row.audience), row.leave_allowed,
                         row.recipients, row.done, row.created_ts, row.finished_ts))
            cur.executemany("INSERT INTO broadcast_recipients (broadcast_id, seq, user_id)"
                            " VALUES (?, ?, ?)",
                            [(row.broadcast_id, seq, user) for seq, user in
                             enumerate(recipients)])

        return self.db.run_interaction("broadcast_create", write)

    def get(self, broadcast_id: str) -> defer.Deferred[BroadcastRow | None]:
        def read(cur: Cursor) -> BroadcastRow | None:
            found = cur.select_one(f"SELECT {_COLUMNS} FROM broadcasts WHERE broadcast_id = ?",
                                   (broadcast_id,))
            return None if found is None else _row(found)

        return self.db.run_interaction("broadcast_get", read)

    def listing(self, org_ids: Sequence[str] | None, before_ts: int | None, limit: int
                ) -> defer.Deferred[list[BroadcastRow]]:
        """The newest broadcasts of ``org_ids`` (None: all), created before ``before_ts``."""
        def read(cur: Cursor) -> list[BroadcastRow]:
            where, args = ("1 = 1", []) if org_ids is None else cur.in_clause(
                "org_id", list(org_ids))
            if before_ts is not None:
                where, args = f"{where} AND created_ts < ?", [*args, before_ts]
            return [_row(r) for r in cur.select_all(
                f"SELECT {_COLUMNS} FROM broadcasts WHERE {where}"
                " ORDER BY created_ts DESC, broadcast_id LIMIT ?", [*args, limit])]

        return self.db.run_interaction("broadcast_listing", read)

    def unfinished(self) -> defer.Deferred[list[BroadcastRow]]:
        def read(cur: Cursor) -> list[BroadcastRow]:
            return [_row(r) for r in cur.select_all(
                f"SELECT {_COLUMNS} FROM broadcasts WHERE finished_ts IS NULL"
                " ORDER BY created_ts")]

        return self.db.run_interaction("broadcast_unfinished", read)

    # -- the job ------------------------------------------------------------------------------
    def pending(self, broadcast_id: str, limit: int) -> defer.Deferred[list[tuple[int, str]]]:
        """(seq, user ID) of the next recipients not reached yet."""
        def read(cur: Cursor) -> list[tuple[int, str]]:
            return [(int(s), str(u)) for s, u in cur.select_all(
                "SELECT seq, user_id FROM broadcast_recipients WHERE broadcast_id = ?"
                " AND room_id IS NULL ORDER BY seq LIMIT ?", (broadcast_id, limit))]

        return self.db.run_interaction("broadcast_pending", read)

    def progress(self, broadcast_id: str, sent: Sequence[Sent], done: int,
                 finished_ts: int | None) -> defer.Deferred[None]:
        def write(cur: Cursor) -> None:
            cur.executemany(
                "UPDATE broadcast_recipients SET room_id = ?, event_id = ?, stream_ordering = ?"
                " WHERE broadcast_id = ? AND seq = ?",
                [(s.room_id, s.event_id, s.stream_ordering, broadcast_id, s.seq) for s in sent])
            cur.execute("UPDATE broadcasts SET done = ?, finished_ts = ? WHERE broadcast_id = ?",
                        (done, finished_ts, broadcast_id))

        return self.db.run_interaction("broadcast_progress", write)

    # -- statistics ---------------------------------------------------------------------------
    def recipients(self, broadcast_id: str
                   ) -> defer.Deferred[list[tuple[str, int | None]]]:
        """(user ID, the position of their message, None until sent), in ``seq`` order."""
        def read(cur: Cursor) -> list[tuple[str, int | None]]:
            return [(str(u), None if p is None else int(p)) for u, p in cur.select_all(
                "SELECT user_id, stream_ordering FROM broadcast_recipients"
                " WHERE broadcast_id = ? ORDER BY seq", (broadcast_id,))]

        return self.db.run_interaction("broadcast_recipients", read)

    def readers(self, broadcast_id: str) -> defer.Deferred[set[str]]:
        """Recipients whose (public) read receipt in their room is at or after their message."""
        def read(cur: Cursor) -> set[str]:
            return {str(u) for (u,) in cur.select_all(
                "SELECT DISTINCT b.user_id FROM broadcast_recipients b"
                " JOIN receipts r ON r.room_id = b.room_id AND r.user_id = b.user_id"
                " AND r.receipt_type = ?"
                " JOIN events e ON e.event_id = r.event_id"
                " WHERE b.broadcast_id = ? AND e.stream_ordering >= b.stream_ordering",
                (READ, broadcast_id))}

        return self.db.run_interaction("broadcast_readers", read)
