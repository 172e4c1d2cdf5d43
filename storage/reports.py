"""Content reports (``/report`` endpoints): reported events, rooms and users, kept for admins.

One table, ``event_reports``, holds all three kinds:

- an event report has ``event_id`` set (and ``reported_user_id``, the event's sender, so the
  origin of reported misuse can be traced even after the event is gone);
- a room report has neither ``event_id`` nor ``reported_user_id``;
- a user report has ``reported_user_id`` and ``room_id`` '' (it concerns no room).

Ids are allocated inside the inserting transaction as MAX(id)+1; two concurrent inserts that pick
the same id make one of them fail on the primary key, and it is retried.

A report is open until an admin resolves it (``resolved_ts``, ``resolved_by``, ``resolution``);
resolving writes its audit entry in the same transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from twisted.internet import defer

from storage.audit import AuditDraft, append_entry
from storage.database import Cursor, Database, IntegrityError

NO_ROOM = ""  # room_id of a user report
_ATTEMPTS = 5
_INSERTED = "id, room_id, event_id, reported_user_id, user_id, reason, score, received_ts"
_COLUMNS = f"{_INSERTED}, resolved_ts, resolved_by, resolution"


@dataclass(frozen=True)
class Report:
    id: int
    room_id: str
    event_id: str | None
    reported_user_id: str | None
    user_id: str  # the reporter
    reason: str | None
    score: int | None
    received_ts: int
    resolved_ts: int | None = None
    resolved_by: str | None = None
    resolution: str | None = None

    @property
    def kind(self) -> str:
        if self.event_id is not None:
            return "event"
        return "user" if self.room_id == NO_ROOM else "room"

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "kind": self.kind, "room_id": self.room_id or None,
                "event_id": self.event_id, "reported_user_id": self.reported_user_id,
                "user_id": self.user_id, "reason": self.reason, "score": self.score,
                "received_ts": self.received_ts}


@dataclass(frozen=True)
class ReportQuery:
    """Which reports an admin lists: open or resolved ones (None: both), of one room."""

    state: str | None = None  # "open" | "resolved"
    room_id: str | None = None
    before_id: int | None = None
    limit: int = 100


def _row_to_report(row: tuple[Any, ...]) -> Report:
    return Report(id=int(row[0]), room_id=row[1], event_id=row[2], reported_user_id=row[3],
                  user_id=row[4], reason=row[5], score=row[6], received_ts=int(row[7]),
                  resolved_ts=None if row[8] is None else int(row[8]), resolved_by=row[9],
                  resolution=row[10])


class ReportStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def add_report(
        self, *, reporter: str, received_ts: int, room_id: str = NO_ROOM,
        event_id: str | None = None, reported_user_id: str | None = None,
        reason: str | None = None, score: int | None = None,
    ) -> defer.Deferred[int]:
        """Store one report; fires with its id."""
        row = (room_id, event_id, reported_user_id, reporter, reason, score, received_ts)
        return defer.ensureDeferred(self._add_report(row))

    async def _add_report(self, row: tuple[Any, ...]) -> int:
        def txn(cur: Cursor) -> int:
            report_id = int(cur.select_value("SELECT MAX(id) FROM event_reports") or 0) + 1
            cur.execute(
                f"INSERT INTO event_reports ({_INSERTED}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (report_id, *row))
            return report_id

        for attempt in range(_ATTEMPTS):
            try:
                return int(await self.db.run_interaction("add_report", txn))
            except IntegrityError:  # a concurrent report took the same id
                if attempt == _ATTEMPTS - 1:
                    raise
        raise AssertionError("unreachable")

    def get_report(self, report_id: int) -> defer.Deferred[Report | None]:
        def txn(cur: Cursor) -> Report | None:
            row = cur.select_one(f"SELECT {_COLUMNS} FROM event_reports WHERE id = ?",
                                 (report_id,))
            return _row_to_report(row) if row else None

        return self.db.run_interaction("get_report", txn)

    def find_reports(self, query: ReportQuery) -> defer.Deferred[list[Report]]:
        """Newest reports first, filtered by ``query``."""
        def txn(cur: Cursor) -> list[Report]:
            where: list[str] = []
            args: list[Any] = []
            if query.before_id is not None:
                where.append("id < ?")
                args.append(query.before_id)
            if query.room_id is not None:
                where.append("room_id = ?")
                args.append(query.room_id)
            if query.state is not None:
                where.append("resolved_ts IS NULL" if query.state == "open"
                             else "resolved_ts IS NOT NULL")
            clause = f"WHERE {' AND '.join(where)}" if where else ""
            rows = cur.select_all(
                f"SELECT {_COLUMNS} FROM event_reports {clause} ORDER BY id DESC LIMIT ?",
                (*args, query.limit))
            return [_row_to_report(row) for row in rows]

        return self.db.run_interaction("find_reports", txn)

    def resolve(self, report_id: int, by: str, ts: int, resolution: str | None,
                entry: AuditDraft) -> defer.Deferred[bool]:
        """Mark an open report resolved, with ``entry``; False (nothing written) if it is
        resolved already or unknown."""
        def txn(cur: Cursor) -> bool:
            cur.execute("UPDATE event_reports SET resolved_ts = ?, resolved_by = ?,"
                        " resolution = ? WHERE id = ? AND resolved_ts IS NULL",
                        (ts, by, resolution, report_id))
            if cur.rowcount != 1:
                return False
            append_entry(cur, entry)
            return True

        return self.db.run_interaction("resolve_report", txn)
