"""Events: writing batches of new events (group commit) and reading them back.

A batch is written in one transaction: the event rows, the room's forward extremities, state
groups, current state, applied redactions and send transaction IDs (in ``event_txn_ids``, to
find the event of a repeated send, and on the event's row, so that reads return it as
``unsigned["txn"]`` for the sending device's ``transaction_id``).  Reads return
:class:`protocol.events.Event` objects with redacted content already pruned.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from twisted.internet import defer

from protocol.events import Event
from protocol.redaction import prune_event_dict
from protocol.room_versions import get_room_version
from storage.at_rest import EVENTS_JSON, AtRest
from storage.database import Cursor, Database
from storage.media_references import record_references
from storage.relations import forget_relation, record_relations

StateKey = tuple[str, str]
# Per user, their membership over time; and the room's history visibility over time: (stream
# position, value) pairs in stream order.
VisibilityChanges = tuple[dict[str, list[tuple[int, str]]], list[tuple[int, str]]]

EVENT_COLUMNS = ("e.event_id, e.json, e.redacted_by, e.stream_ordering, r.room_version,"
                  " e.txn_device_id, e.txn_id")


@dataclass
class NewStateGroup:
    """A state group to create: ``delta`` against ``prev_group`` (full state if it is None)."""

    group_id: int
    room_id: str
    prev_group: int | None
    delta_depth: int
    delta: dict[StateKey, str]


@dataclass
class PersistItem:
    """One new event and everything written with it."""

    event: Event
    stream_ordering: int
    state_group_after: int | None  # None for outliers: events whose state we do not hold
    new_state_group: NewStateGroup | None = None
    txn_key: tuple[str, str, str] | None = None  # (user_id, device_id, txn_id)
    redaction_target: str | None = None  # event to prune, already authorised
    new_room: dict[str, Any] | None = None  # rooms row for a create event
    # Outliers (state and auth events learnt over federation) are stored but are not part of
    # the timeline, current state or forward extremities.
    outlier: bool = False
    # The room's whole current state after this event, when it is not simply "previous current
    # state plus this event" (state resolution after a fork, joining a remote room).
    current_state: dict[StateKey, Event] | None = None
    # History fetched from another server: part of the timeline (at a negative stream
    # position, before everything else) but not of current state or forward extremities.
    backfilled: bool = False
    # When an auto-delete message is due to be redacted (ms since the epoch); None: never.
    expires_ts: int | None = None


# Local metadata kept in memory only; everything else in ``unsigned`` is stored with the event.
PRIVATE_UNSIGNED = ("stream_ordering", "redacted_by", "txn")


def event_json(event: Event) -> str:
    stored = {k: v for k, v in event.unsigned.items() if k not in PRIVATE_UNSIGNED}
    pdu = {**event.pdu, "unsigned": stored} if stored else event.pdu
    return json.dumps(pdu, ensure_ascii=False, separators=(",", ":"))


def _loads(raw: str) -> dict[str, Any]:
    """A stored event's JSON: orjson reads it several times faster than the standard library
    (a cold sync decodes thousands); what orjson refuses (an integer beyond 64 bits, say) is
    read by the standard library as before."""
    try:
        return orjson.loads(raw)  # type: ignore[no-any-return]
    except orjson.JSONDecodeError:
        return json.loads(raw)  # type: ignore[no-any-return]


def read_event_json(at_rest: AtRest, stored: str) -> dict[str, Any]:
    """An ``events.json`` value as stored (sealed or clear), decoded."""
    return _loads(at_rest.open(EVENTS_JSON, stored))


def write_event_json(cur: Cursor, pdu: dict[str, Any]) -> str:
    """A pruned or rewritten event dict as ``events.json`` stores it."""
    return cur.at_rest.seal(
        EVENTS_JSON, json.dumps(pdu, ensure_ascii=False, separators=(",", ":")))


def row_to_event(row: Sequence[Any], at_rest: AtRest) -> Event:
    event_id, raw, redacted_by, stream_ordering, room_version_id, txn_device, txn_id = row
    room_version = get_room_version(room_version_id)
    pdu = read_event_json(at_rest, raw)
    unsigned = pdu.pop("unsigned", None) or {}
    event = Event(pdu, room_version, event_id=event_id, unsigned=dict(unsigned))
    if redacted_by:
        event.unsigned["redacted_by"] = redacted_by
    event.unsigned["stream_ordering"] = stream_ordering
    if txn_id is not None:
        event.unsigned["txn"] = (event.sender, txn_device, txn_id)
    return event


class EventStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    # -- writing ----------------------------------------------------------------------------
    def persist_batch(self, items: list[PersistItem]) -> defer.Deferred[list[PersistItem]]:
        """Write ``items`` in one transaction; fires with the items actually written (an event
        already held, or repeated in the batch, is left out: writing it again is a no-op)."""
        return self.db.run_interaction("persist_events", self._persist_batch_txn, items)

    def _persist_batch_txn(self, cur: Cursor, items: list[PersistItem]) -> list[PersistItem]:
        items = self._not_yet_held(cur, items)
        cur.executemany(
            "INSERT INTO rooms (room_id, room_version, creator, is_public, created_ts)"
            " VALUES (?, ?, ?, ?, ?)",
            [(room["room_id"], room["room_version"], room["creator"],
              bool(room.get("is_public", False)), room["created_ts"])
             for room in (i.new_room for i in items) if room is not None])
        timeline = [i for i in items if not i.outlier]
        texts = [event_json(i.event) for i in items]
        cur.executemany(
            "INSERT INTO events (stream_ordering, event_id, room_id, type, state_key, sender,"
            " depth, origin_server_ts, json, outlier, txn_device_id, txn_id)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(i.stream_ordering, i.event.event_id, i.event.room_id, i.event.type,
              i.event.state_key, i.event.sender, i.event.depth, i.event.origin_server_ts,
              cur.at_rest.seal(EVENTS_JSON, text), i.outlier,
              *(i.txn_key[1:] if i.txn_key else (None, None)))
             for i, text in zip(items, texts, strict=True)])
        record_references(cur, ((i.event.event_id, text, i.event.content)
                                for i, text in zip(items, texts, strict=True)))
        record_relations(cur, ((i.event, i.stream_ordering) for i in timeline))
        groups = [i.new_state_group for i in items if i.new_state_group is not None]
        cur.executemany(
            "INSERT INTO state_groups (id, room_id, prev_group, delta_depth) VALUES (?, ?, ?, ?)",
            [(g.group_id, g.room_id, g.prev_group, g.delta_depth) for g in groups])
        cur.executemany(
            "INSERT INTO state_groups_state (state_group, type, state_key, event_id)"
            " VALUES (?, ?, ?, ?)",
            [(g.group_id, key[0], key[1], event_id) for g in groups
             for key, event_id in g.delta.items()])
        cur.executemany(
            "INSERT INTO event_to_state_groups (event_id, state_group) VALUES (?, ?)",
            [(i.event.event_id, i.state_group_after) for i in timeline
             if i.state_group_after is not None])
        live = [i for i in timeline if not i.backfilled]
        changed: list[Event] = []  # state events since the last whole replacement
        for item in live:
            if item.current_state is not None:
                self._update_current_state(cur, changed)
                changed = []
                self._replace_current_state(cur, item.event.room_id, item.current_state)
            elif item.event.is_state():
                changed.append(item.event)
        self._update_current_state(cur, changed)
        self._update_extremities(cur, [i.event for i in live])
        cur.executemany(
            "INSERT INTO event_txn_ids (user_id, device_id, room_id, txn_id, event_id,"
            " inserted_ts) VALUES (?, ?, ?, ?, ?, ?)",
            [(i.txn_key[0], i.txn_key[1], i.event.room_id, i.txn_key[2], i.event.event_id,
              i.event.origin_server_ts) for i in items if i.txn_key is not None])
        cur.executemany(
            "INSERT INTO event_expiry (event_id, room_id, sender, expires_ts)"
            " VALUES (?, ?, ?, ?)",
            [(i.event.event_id, i.event.room_id, i.event.sender, i.expires_ts)
             for i in items if i.expires_ts is not None])
        for item in items:
            if item.redaction_target is not None:
                self._apply_redaction(cur, item.redaction_target, item.event.event_id)
        return items

    @staticmethod
    def _not_yet_held(cur: Cursor, items: list[PersistItem]) -> list[PersistItem]:
        """The items to write: not those whose event we already hold (as a timeline event, or
        as an outlier when the item is an outlier too) or that repeat an earlier item.  An
        outlier row that becomes part of the timeline is deleted here, to be written again."""
        ids = list(dict.fromkeys(item.event.event_id for item in items))
        held: dict[str, bool] = {}
        for start in range(0, len(ids), 500):
            clause, args = cur.in_clause("event_id", ids[start:start + 500])
            held.update((row[0], bool(row[1])) for row in cur.select_all(
                f"SELECT event_id, outlier FROM events WHERE {clause}", args))
        written: list[PersistItem] = []
        promoted: list[str] = []
        seen: set[str] = set()
        in_timeline = {item.event.event_id for item in items if not item.outlier}
        for item in items:
            event_id = item.event.event_id
            if event_id in seen or (item.outlier and event_id in in_timeline):
                continue
            seen.add(event_id)
            if event_id in held:
                if item.outlier or not held[event_id]:
                    continue
                promoted.append(event_id)
            written.append(item)
        for start in range(0, len(promoted), 500):
            clause, args = cur.in_clause("event_id", promoted[start:start + 500])
            cur.execute(f"DELETE FROM events WHERE {clause}", args)
        return written

    @staticmethod
    def _update_current_state(cur: Cursor, state_events: list[Event]) -> None:
        latest: dict[tuple[str, str, str], Event] = {}
        for event in state_events:
            assert event.state_key is not None
            latest[(event.room_id, event.type, event.state_key)] = event
        cur.delete_many("current_state_events", ("room_id", "type", "state_key"), list(latest))
        cur.executemany(
            "INSERT INTO current_state_events (room_id, type, state_key, event_id, membership)"
            " VALUES (?, ?, ?, ?, ?)",
            [(*key, event.event_id, event.membership) for key, event in latest.items()])

    @staticmethod
    def _replace_current_state(cur: Cursor, room_id: str, state: dict[StateKey, Event]) -> None:
        cur.execute("DELETE FROM current_state_events WHERE room_id = ?", (room_id,))
        cur.executemany(
            "INSERT INTO current_state_events (room_id, type, state_key, event_id, membership)"
            " VALUES (?, ?, ?, ?, ?)",
            [(room_id, key[0], key[1], event.event_id, event.membership)
             for key, event in state.items()])

    @staticmethod
    def _update_extremities(cur: Cursor, events: list[Event]) -> None:
        by_room: dict[str, list[Event]] = {}
        for event in events:
            by_room.setdefault(event.room_id, []).append(event)
        gone: list[tuple[str, str]] = []
        new: list[tuple[str, str]] = []
        for room_id, room_events in by_room.items():
            referenced = {p for e in room_events for p in e.prev_event_ids}
            gone += [(room_id, event_id) for event_id in sorted(referenced)]
            new += [(room_id, e.event_id) for e in room_events if e.event_id not in referenced]
        cur.delete_many("forward_extremities", ("room_id", "event_id"), gone)
        cur.executemany("INSERT INTO forward_extremities (room_id, event_id) VALUES (?, ?)", new)

    @staticmethod
    def _apply_redaction(cur: Cursor, target_id: str, redaction_id: str) -> None:
        row = cur.select_one(
            "SELECT e.json, r.room_version FROM events e JOIN rooms r ON r.room_id = e.room_id"
            " WHERE e.event_id = ?", (target_id,))
        if row is None:
            return
        pruned = prune_event_dict(get_room_version(row[1]), read_event_json(cur.at_rest, row[0]))
        cur.execute("UPDATE events SET json = ?, redacted_by = ? WHERE event_id = ?",
                    (write_event_json(cur, pruned), redaction_id, target_id))
        forget_relation(cur, target_id)
        # A redacted message has nothing left to auto-delete.
        cur.execute("DELETE FROM event_expiry WHERE event_id = ?", (target_id,))

    # -- reading ----------------------------------------------------------------------------
    def get_events(self, event_ids: Iterable[str]) -> defer.Deferred[dict[str, Event]]:
        ids = list(dict.fromkeys(event_ids))
        return self.db.run_interaction("get_events", self.get_events_txn, ids)

    @staticmethod
    def get_events_txn(cur: Cursor, event_ids: list[str]) -> dict[str, Event]:
        found: dict[str, Event] = {}
        for start in range(0, len(event_ids), 500):
            clause, args = cur.in_clause("e.event_id", event_ids[start:start + 500])
            for row in cur.select_all(
                f"SELECT {EVENT_COLUMNS} FROM events e JOIN rooms r ON r.room_id = e.room_id"
                f" WHERE {clause}", args):
                event = row_to_event(row, cur.at_rest)
                found[event.event_id] = event
        return found

    def get_txn_event_id(
        self, user_id: str, device_id: str, room_id: str, txn_id: str
    ) -> defer.Deferred[str | None]:
        return self.db.run_interaction(
            "get_txn_event_id",
            lambda cur: cur.select_value(
                "SELECT event_id FROM event_txn_ids WHERE user_id = ? AND device_id = ?"
                " AND room_id = ? AND txn_id = ?", (user_id, device_id, room_id, txn_id)))

    def get_room_events(
        self, room_id: str, *, after: int | None, up_to: int | None, limit: int,
        backwards: bool, sent_since: int | None = None,
    ) -> defer.Deferred[list[Event]]:
        """Events of a room with ``after < stream_ordering <= up_to``, ``limit`` of them from
        the newest end when ``backwards`` (returned newest first) or the oldest end;
        ``sent_since``: non-state events sent before it (expired by retention) are left out."""

        def txn(cur: Cursor) -> list[Event]:
            return self.get_room_events_txn(cur, room_id, after, up_to, limit, backwards,
                                            sent_since)

        return self.db.run_interaction("get_room_events", txn)

    @staticmethod
    def get_room_events_txn(
        cur: Cursor, room_id: str, after: int | None, up_to: int | None, limit: int,
        backwards: bool, sent_since: int | None = None,
    ) -> list[Event]:
        conditions = ["e.room_id = ?", "e.outlier = ?"]
        args: list[Any] = [room_id, False]
        if sent_since is not None:
            conditions.append("(e.state_key IS NOT NULL OR e.origin_server_ts >= ?)")
            args.append(sent_since)
        if after is not None:
            conditions.append("e.stream_ordering > ?")
            args.append(after)
        if up_to is not None:
            conditions.append("e.stream_ordering <= ?")
            args.append(up_to)
        order = "DESC" if backwards else "ASC"
        rows = cur.select_all(
            f"SELECT {EVENT_COLUMNS} FROM events e JOIN rooms r ON r.room_id = e.room_id"
            f" WHERE {' AND '.join(conditions)} ORDER BY e.stream_ordering {order} LIMIT ?",
            [*args, limit])
        return [row_to_event(row, cur.at_rest) for row in rows]

    def timeline_event_ids(self, event_ids: list[str]) -> defer.Deferred[set[str]]:
        """Which of ``event_ids`` we hold as timeline events (not outliers)."""

        def txn(cur: Cursor) -> set[str]:
            clause, args = cur.in_clause("event_id", event_ids)
            return {r[0] for r in cur.select_all(
                f"SELECT event_id FROM events WHERE outlier = ? AND {clause}", [False, *args])}

        return self.db.run_interaction("timeline_event_ids", txn)

    def min_stream_ordering(self) -> defer.Deferred[int]:
        return self.db.run_interaction(
            "min_stream_ordering",
            lambda cur: int(cur.select_value("SELECT MIN(stream_ordering) FROM events") or 0))

    def get_visibility_changes(
        self, room_id: str, user_ids: Collection[str]
    ) -> defer.Deferred[VisibilityChanges]:
        """The memberships of each of the users and the room's history visibility over time,
        as (stream position, value) pairs in stream order (timeline events only)."""
        return self.get_visibility_changes_in_rooms([room_id], user_ids).addCallback(
            lambda found: found[room_id])

    def get_visibility_changes_in_rooms(
        self, room_ids: Sequence[str], user_ids: Collection[str]
    ) -> defer.Deferred[dict[str, VisibilityChanges]]:
        """:meth:`get_visibility_changes` of several rooms, read together (up to 200 rooms a
        query)."""

        def txn(cur: Cursor) -> dict[str, VisibilityChanges]:
            users = sorted(user_ids)
            found: dict[str, VisibilityChanges] = {
                room_id: ({user: [] for user in users}, []) for room_id in room_ids}
            user_clause, user_args = cur.in_clause("state_key", users)
            for start in range(0, len(room_ids), 200):
                clause, args = cur.in_clause("room_id", room_ids[start:start + 200])
                for room_id, position, event_type, state_key, raw in cur.select_all(
                        "SELECT room_id, stream_ordering, type, state_key, json FROM events"
                        f" WHERE {clause} AND outlier = ? AND ((type = 'm.room.member'"
                        f" AND {user_clause}) OR (type = 'm.room.history_visibility'"
                        " AND state_key = '')) ORDER BY room_id, stream_ordering",
                        (*args, False, *user_args)):
                    memberships, visibilities = found[room_id]
                    content = read_event_json(cur.at_rest, raw).get("content") or {}
                    if event_type == "m.room.member":
                        memberships[state_key].append(
                            (int(position), str(content.get("membership", ""))))
                    else:
                        visibilities.append(
                            (int(position), str(content.get("history_visibility", "shared"))))
            return found

        return self.db.run_interaction("visibility_changes", txn)

    def get_stream_ordering(self, event_id: str) -> defer.Deferred[int | None]:
        return self.db.run_interaction(
            "get_stream_ordering",
            lambda cur: cur.select_value(
                "SELECT stream_ordering FROM events WHERE event_id = ?", (event_id,)))

    def get_state_events_between(
        self, room_id: str, after: int, up_to: int
    ) -> defer.Deferred[list[Event]]:
        """State events of a room with ``after < stream_ordering <= up_to``, oldest first."""

        def txn(cur: Cursor) -> list[Event]:
            rows = cur.select_all(
                f"SELECT {EVENT_COLUMNS} FROM events e JOIN rooms r ON r.room_id = e.room_id"
                " WHERE e.room_id = ? AND e.state_key IS NOT NULL AND e.stream_ordering > ?"
                " AND e.stream_ordering <= ? ORDER BY e.stream_ordering", (room_id, after, up_to))
            return [row_to_event(row, cur.at_rest) for row in rows]

        return self.db.run_interaction("get_state_events_between", txn)
