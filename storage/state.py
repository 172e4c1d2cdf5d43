"""Room state: current state, state groups (state after each event) and room records."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from twisted.internet import defer

from protocol.events import Event
from storage.database import Cursor, Database
from storage.events import EventStore
from storage.room_snapshots import RoomSnapshot, load_rooms_txn, state_ids_for_groups_txn

StateKey = tuple[str, str]


class StateStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def max_state_group(self) -> defer.Deferred[int]:
        return self.db.run_interaction(
            "max_state_group",
            lambda cur: int(cur.select_value("SELECT MAX(id) FROM state_groups") or 0))

    def load_room(self, room_id: str) -> defer.Deferred[RoomSnapshot | None]:
        return self.load_rooms([room_id]).addCallback(lambda found: found.get(room_id))

    def load_rooms(self, room_ids: Sequence[str]) -> defer.Deferred[dict[str, RoomSnapshot]]:
        """Snapshots of those of ``room_ids`` we hold, by room ID, read in one transaction."""
        return self.db.run_interaction("load_rooms", load_rooms_txn, room_ids)

    def get_state_ids_for_group(self, group: int) -> defer.Deferred[dict[StateKey, str]]:
        return self.db.run_interaction("state_for_group", self.state_ids_for_group_txn, group)

    @staticmethod
    def state_ids_for_group_txn(cur: Cursor, group: int) -> dict[StateKey, str]:
        """The full state of a group (its delta chain walked in one recursive query)."""
        return state_ids_for_groups_txn(cur, [group]).get(group, {})

    def get_state_ids_at_event(self, event_id: str) -> defer.Deferred[dict[StateKey, str] | None]:
        """The state after ``event_id`` (None if we hold no state for it)."""

        def txn(cur: Cursor) -> dict[StateKey, str] | None:
            group = cur.select_value(
                "SELECT state_group FROM event_to_state_groups WHERE event_id = ?", (event_id,))
            if group is None:
                return None
            return self.state_ids_for_group_txn(cur, int(group))

        return self.db.run_interaction("state_at_event", txn)

    def get_current_state_events(self, room_id: str) -> defer.Deferred[list[Event]]:
        def txn(cur: Cursor) -> list[Event]:
            ids = [r[0] for r in cur.select_all(
                "SELECT event_id FROM current_state_events WHERE room_id = ?", (room_id,))]
            return list(EventStore.get_events_txn(cur, ids).values())

        return self.db.run_interaction("current_state_events", txn)

    def get_rooms_for_user(self, user_id: str) -> defer.Deferred[dict[str, str]]:
        """room_id -> current membership of ``user_id`` for every room we know it in."""

        def txn(cur: Cursor) -> dict[str, str]:
            rows = cur.select_all(
                "SELECT room_id, membership FROM current_state_events"
                " WHERE state_key = ? AND type = 'm.room.member'", (user_id,))
            return {room_id: membership for room_id, membership in rows}

        return self.db.run_interaction("rooms_for_user", txn)

    def members_of_rooms_with(self, state_type: str, memberships: Sequence[str]
                              ) -> defer.Deferred[list[tuple[str, str]]]:
        """(room_id, user_id) of every member with one of ``memberships`` in the rooms whose
        current state holds ``state_type`` (state key ''): one scan, for a check at start."""
        marks = ", ".join("?" for _ in memberships)

        def txn(cur: Cursor) -> list[tuple[str, str]]:
            return [(room_id, user_id) for room_id, user_id in cur.select_all(
                "SELECT m.room_id, m.state_key FROM current_state_events g"
                " JOIN current_state_events m ON m.room_id = g.room_id"
                " AND m.type = 'm.room.member'"
                f" WHERE g.type = ? AND g.state_key = '' AND m.membership IN ({marks})",
                (state_type, *memberships))]

        return self.db.run_interaction("members_of_rooms_with", txn)

    def get_membership_changes(
        self, user_id: str, after: int, up_to: int
    ) -> defer.Deferred[list[tuple[str, str, int]]]:
        """(room_id, event_id, stream) of membership events about ``user_id`` in the range."""

        def txn(cur: Cursor) -> list[tuple[str, str, int]]:
            rows = cur.select_all(
                "SELECT room_id, event_id, stream_ordering FROM events WHERE state_key = ?"
                " AND type = 'm.room.member' AND stream_ordering > ? AND stream_ordering <= ?"
                " ORDER BY stream_ordering", (user_id, after, up_to))
            return [(r[0], r[1], int(r[2])) for r in rows]

        return self.db.run_interaction("membership_changes", txn)

    def set_room_public(self, room_id: str, is_public: bool) -> defer.Deferred[None]:
        return self.db.run_interaction(
            "set_room_public",
            lambda cur: cur.execute("UPDATE rooms SET is_public = ? WHERE room_id = ?",
                                    (is_public, room_id)) and None)

    def get_public_room_ids(self) -> defer.Deferred[list[str]]:
        return self.db.run_interaction(
            "public_rooms",
            lambda cur: [r[0] for r in cur.select_all(
                "SELECT room_id FROM rooms WHERE is_public = ? ORDER BY created_ts", (True,))])

    def room_exists(self, room_id: str) -> defer.Deferred[bool]:
        return self.db.run_interaction(
            "room_exists",
            lambda cur: cur.select_one("SELECT 1 FROM rooms WHERE room_id = ?",
                                       (room_id,)) is not None)

    def room_info(self, room_id: str) -> defer.Deferred[dict[str, Any] | None]:
        def txn(cur: Cursor) -> dict[str, Any] | None:
            row = cur.select_one(
                "SELECT room_version, creator, is_public, created_ts FROM rooms WHERE room_id = ?",
                (room_id,))
            if row is None:
                return None
            return {"room_version": row[0], "creator": row[1], "is_public": bool(row[2]),
                    "created_ts": row[3]}

        return self.db.run_interaction("room_info", txn)

    def forget_room(self, user_id: str, room_id: str) -> defer.Deferred[None]:
        def txn(cur: Cursor) -> None:
            cur.execute("DELETE FROM room_forgotten WHERE user_id = ? AND room_id = ?",
                        (user_id, room_id))
            cur.execute("INSERT INTO room_forgotten (user_id, room_id) VALUES (?, ?)",
                        (user_id, room_id))

        return self.db.run_interaction("forget_room", txn)

    def unforget_room(self, user_id: str, room_id: str) -> defer.Deferred[None]:
        return self.db.run_interaction(
            "unforget_room",
            lambda cur: cur.execute(
                "DELETE FROM room_forgotten WHERE user_id = ? AND room_id = ?",
                (user_id, room_id)) and None)

    def get_forgotten_rooms(self, user_id: str) -> defer.Deferred[set[str]]:
        return self.db.run_interaction(
            "forgotten_rooms",
            lambda cur: {r[0] for r in cur.select_all(
                "SELECT room_id FROM room_forgotten WHERE user_id = ?", (user_id,))})

    # -- room summaries (the public room directory) ----------------------------------------------
    def get_room_summaries(
        self, room_ids: list[str], state_types: tuple[str, ...]
    ) -> defer.Deferred[dict[str, tuple[int, dict[str, dict[str, Any]]]]]:
        """room_id -> (joined member count, {type: content} of the rooms' current state events
        of ``state_types`` with state key ''), read without loading whole rooms."""

        def txn(cur: Cursor) -> dict[str, tuple[int, dict[str, dict[str, Any]]]]:
            counts: dict[str, int] = {room_id: 0 for room_id in room_ids}
            state: dict[str, dict[str, dict[str, Any]]] = {room_id: {} for room_id in room_ids}
            event_rooms: dict[str, str] = {}
            type_clause, type_args = cur.in_clause("type", list(state_types))
            for start in range(0, len(room_ids), 500):
                clause, args = cur.in_clause("room_id", room_ids[start:start + 500])
                for room_id, count in cur.select_all(
                        "SELECT room_id, COUNT(*) FROM current_state_events"
                        f" WHERE {clause} AND type = 'm.room.member' AND membership = 'join'"
                        " GROUP BY room_id", args):
                    counts[room_id] = int(count)
                for room_id, event_id in cur.select_all(
                        "SELECT room_id, event_id FROM current_state_events"
                        f" WHERE {clause} AND state_key = '' AND {type_clause}",
                        (*args, *type_args)):
                    event_rooms[event_id] = room_id
            for event in EventStore.get_events_txn(cur, list(event_rooms)).values():
                state[event_rooms[event.event_id]][event.type] = event.content
            return {room_id: (counts[room_id], state[room_id]) for room_id in room_ids}

        return self.db.run_interaction("room_summaries", txn)

    def get_state_group(self, event_id: str) -> defer.Deferred[int | None]:
        """The state group holding the state after ``event_id``."""
        return self.db.run_interaction(
            "state_group_of",
            lambda cur: cur.select_value(
                "SELECT state_group FROM event_to_state_groups WHERE event_id = ?", (event_id,)))

    def known_event_ids(self, event_ids: list[str]) -> defer.Deferred[set[str]]:
        """Which of ``event_ids`` we hold (as timeline events or outliers)."""

        def txn(cur: Cursor) -> set[str]:
            found: set[str] = set()
            for start in range(0, len(event_ids), 500):
                clause, args = cur.in_clause("event_id", event_ids[start:start + 500])
                found.update(r[0] for r in cur.select_all(
                    f"SELECT event_id FROM events WHERE {clause}", args))
            return found

        return self.db.run_interaction("known_event_ids", txn)
