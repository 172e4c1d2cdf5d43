"""The relations index: which event relates to which (``m.relates_to`` of its content).

Written in the relating event's own transaction (:func:`record_relations`, called by the event
write for local and remote events alike) and dropped when the relating event is redacted
(:func:`forget_relation`): a redacted relation drops out of ``/relations`` and a redacted edit
no longer applies.  Events stored before the index was kept (migration 270) are indexed by a
resumable background fill, newest first (:meth:`RelationStore.fill_step`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from twisted.internet import defer

from protocol.events import Event
from storage.at_rest import EVENTS_JSON
from storage.database import Cursor, Database


@dataclass(frozen=True)
class Relation:
    """One indexed relation: ``event_id`` relates to ``relates_to_id`` as ``rel_type``."""

    event_id: str
    relates_to_id: str
    rel_type: str
    room_id: str
    type: str
    sender: str
    aggregation_key: str | None
    stream_ordering: int


def relation_of(event_id: str, room_id: str, event_type: str, sender: str,
                content: Any, stream_ordering: int) -> Relation | None:
    """The relation an event's content declares, if any (a well-formed ``m.relates_to`` with
    string ``rel_type`` and ``event_id``; an annotation's string ``key``)."""
    if not isinstance(content, dict):
        return None
    relates_to = content.get("m.relates_to")
    if not isinstance(relates_to, dict):
        return None
    rel_type, target = relates_to.get("rel_type"), relates_to.get("event_id")
    if not isinstance(rel_type, str) or not isinstance(target, str) or target == event_id:
        return None
    key = relates_to.get("key")
    return Relation(event_id, target, rel_type, room_id, event_type, sender,
                    key if isinstance(key, str) else None, stream_ordering)


def _insert(cur: Cursor, relations: Iterable[Relation]) -> None:
    cur.executemany(
        "INSERT INTO event_relations (event_id, relates_to_id, rel_type, room_id, type, sender,"
        " aggregation_key, stream_ordering) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (event_id) DO NOTHING",
        [(r.event_id, r.relates_to_id, r.rel_type, r.room_id, r.type, r.sender,
          r.aggregation_key, r.stream_ordering) for r in relations])


def record_relations(cur: Cursor, events: Iterable[tuple[Event, int]]) -> None:
    """Index the relations of ``(timeline event, stream position)``, in the events' own
    transaction."""
    found = (relation_of(e.event_id, e.room_id, e.type, e.sender, e.content, position)
             for e, position in events)
    _insert(cur, (r for r in found if r is not None))


def forget_relation(cur: Cursor, event_id: str) -> None:
    """``event_id`` was redacted: it relates to nothing any more (the redaction's
    transaction)."""
    cur.execute("DELETE FROM event_relations WHERE event_id = ?", (event_id,))


def _row_to_relation(row: Sequence[Any]) -> Relation:
    return Relation(row[0], row[1], row[2], row[3], row[4], row[5], row[6], int(row[7]))


RELATION_COLUMNS = ("event_id, relates_to_id, rel_type, room_id, type, sender,"
                    " aggregation_key, stream_ordering")


class RelationStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def fill_step(self, limit: int) -> defer.Deferred[bool]:
        """Index the relations of up to ``limit`` more events stored before the index was
        kept (newest first); fires True while some remain."""
        return self.db.run_interaction("relations_fill", self._fill_step_txn, limit)

    @staticmethod
    def _fill_step_txn(cur: Cursor, limit: int) -> bool:
        below = cur.select_value("SELECT below FROM event_relations_fill")
        if below is None:
            return False
        rows = cur.select_all(
            "SELECT event_id, room_id, type, sender, json, stream_ordering FROM events"
            " WHERE outlier = ? AND stream_ordering < ? ORDER BY stream_ordering DESC LIMIT ?",
            (False, below, limit))
        found = (relation_of(event_id, room_id, event_type, sender,
                             json.loads(cur.at_rest.open(EVENTS_JSON, raw)).get("content"),
                             int(position))
                 for event_id, room_id, event_type, sender, raw, position in rows)
        _insert(cur, (r for r in found if r is not None))
        if len(rows) < limit:
            cur.execute("DELETE FROM event_relations_fill")
            return False
        cur.execute("UPDATE event_relations_fill SET below = ?", (int(rows[-1][5]),))
        return True

    def relations_of(self, event_ids: Sequence[str]) -> defer.Deferred[list[Relation]]:
        """Every indexed relation to any of ``event_ids``, oldest first."""

        def txn(cur: Cursor) -> list[Relation]:
            found: list[Relation] = []
            for start in range(0, len(event_ids), 500):
                clause, args = cur.in_clause("relates_to_id", list(event_ids[start:start + 500]))
                found += [_row_to_relation(row) for row in cur.select_all(
                    f"SELECT {RELATION_COLUMNS} FROM event_relations WHERE {clause}", args)]
            return sorted(found, key=lambda r: r.stream_ordering)

        return self.db.run_interaction("relations_of", txn)

    def page(self, event_id: str, *, rel_type: str | None, event_type: str | None,
             after: int | None, before: int | None, limit: int, backwards: bool,
             ) -> defer.Deferred[list[Relation]]:
        """Relations to ``event_id`` (of ``rel_type`` / ``event_type`` if given) with
        ``after < stream_ordering < before``: ``limit`` of them from the newest end when
        ``backwards`` (newest first), else from the oldest end."""

        def txn(cur: Cursor) -> list[Relation]:
            conditions, args = ["relates_to_id = ?"], [event_id]
            for column, value in (("rel_type", rel_type), ("type", event_type)):
                if value is not None:
                    conditions.append(f"{column} = ?")
                    args.append(value)
            for condition, position in (("stream_ordering > ?", after),
                                        ("stream_ordering < ?", before)):
                if position is not None:
                    conditions.append(condition)
                    args.append(position)  # type: ignore[arg-type]
            order = "DESC" if backwards else "ASC"
            return [_row_to_relation(row) for row in cur.select_all(
                f"SELECT {RELATION_COLUMNS} FROM event_relations"
                f" WHERE {' AND '.join(conditions)} ORDER BY stream_ordering {order} LIMIT ?",
                [*args, limit])]

        return self.db.run_interaction("relations_page", txn)

    def threads_page(self, room_id: str, *, up_to: int, before: int | None,
                     participant: str | None, limit: int
                     ) -> defer.Deferred[list[tuple[str, int]]]:
        """See :func:`threads_page_txn`."""
        return self.db.run_interaction(
            "threads_page", lambda cur: threads_page_txn(
                cur, room_id, up_to=up_to, before=before, participant=participant,
                limit=limit))

    def has_annotation(self, target_id: str, sender: str, key: str,
                       other_than_txn: tuple[str, str] | None = None) -> defer.Deferred[bool]:
        """Whether ``sender`` already annotated ``target_id`` with ``key`` (not redacted),
        other than by the send transaction ``(device_id, txn_id)`` (a retried send)."""
        sql = ("SELECT 1 FROM event_relations r JOIN events e ON e.event_id = r.event_id"
               " WHERE r.relates_to_id = ? AND r.rel_type = ? AND r.sender = ?"
               " AND r.aggregation_key = ?")
        args: list[Any] = [target_id, "m.annotation", sender, key]
        if other_than_txn is not None:
            sql += (" AND NOT (COALESCE(e.txn_device_id, '') = ?"
                    " AND COALESCE(e.txn_id, '') = ?)")
            args += other_than_txn
        return self.db.run_interaction(
            "has_annotation", lambda cur: cur.select_one(sql, args) is not None)


def threads_page_txn(cur: Cursor, room_id: str, *, up_to: int, before: int | None,
                     participant: str | None, limit: int) -> list[tuple[str, int]]:
    """The threads of a room by latest reply (at or before ``up_to``), newest first, whose
    latest reply is before ``before``: (root event ID, latest reply's position).  With
    ``participant``: only threads they started or replied to."""
    args: list[Any] = [room_id, "m.thread", up_to]
    having = ""
    if before is not None:
        having = " HAVING MAX(r.stream_ordering) < ?"
        args.append(before)
    participated = ""
    if participant is not None:
        participated = (" AND r.relates_to_id IN (SELECT t.relates_to_id FROM event_relations t"
                        " WHERE t.room_id = ? AND t.rel_type = ? AND t.sender = ?"
                        " UNION SELECT e.event_id FROM events e WHERE e.room_id = ?"
                        " AND e.sender = ?)")
        args[3:3] = [room_id, "m.thread", participant, room_id, participant]
    rows = cur.select_all(
        "SELECT r.relates_to_id, MAX(r.stream_ordering) FROM event_relations r"
        " WHERE r.room_id = ? AND r.rel_type = ? AND r.stream_ordering <= ?"
        f"{participated} GROUP BY r.relates_to_id{having}"
        " ORDER BY MAX(r.stream_ordering) DESC LIMIT ?", [*args, limit])
    return [(str(row[0]), int(row[1])) for row in rows]
