"""Reading what the node keeps in memory of a room, for a whole set of rooms at once.

After a restart the first sync of a user in many rooms needs all of them: each part of a
snapshot (room records, current state, extremities, depth, state group, recent events) is read
for a chunk of rooms in one query, so loading 500 rooms costs a few dozen queries in one
transaction instead of several per room.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from protocol.events import Event
from storage.database import Cursor
from storage.events import EVENT_COLUMNS, EventStore, row_to_event

StateKey = tuple[str, str]
# Timeline events loaded with a room, so a first sync after a restart is answered from memory.
RECENT_ON_LOAD = 20
# Rooms per query: well below either engine's limit on bound parameters.
ROOM_CHUNK = 200
# State groups named in one statement (well under SQLite's bound parameters).
GROUP_CHUNK = 500


@dataclass
class RoomSnapshot:
    """What the node needs in memory to keep extending a room."""

    room_id: str
    room_version: str
    creator: str
    is_public: bool
    state: dict[StateKey, Event]
    extremities: list[str]
    max_depth: int
    state_group: int
    state_group_depth: int
    last_stream: int
    recent: list[Event]  # the newest timeline events, oldest first
    # Whether ``recent`` is the room's whole timeline (fewer events than were asked for).
    recent_complete: bool = False


@dataclass
class _Parts:
    """The pieces of one chunk's snapshots, by room."""

    state: dict[str, dict[StateKey, Event]]
    extremities: dict[str, list[str]]
    depth_stream: dict[str, tuple[int, int]]
    groups: dict[str, tuple[int, int]]
    recent: dict[str, list[Event]]


def load_rooms_txn(cur: Cursor, room_ids: Sequence[str]) -> dict[str, RoomSnapshot]:
    """Snapshots of those of ``room_ids`` we hold, by room ID (unknown rooms are absent)."""
    unique = list(dict.fromkeys(room_ids))
    snapshots: dict[str, RoomSnapshot] = {}
    for start in range(0, len(unique), ROOM_CHUNK):
        snapshots.update(_load_chunk(cur, unique[start:start + ROOM_CHUNK]))
    return snapshots


def _load_chunk(cur: Cursor, room_ids: list[str]) -> dict[str, RoomSnapshot]:
    clause, args = cur.in_clause("room_id", room_ids)
    records = cur.select_all(
        f"SELECT room_id, room_version, creator, is_public FROM rooms WHERE {clause}", args)
    known = [row[0] for row in records]
    if not known:
        return {}
    parts = _Parts(state=_current_state(cur, known), extremities=_extremities(cur, known),
                   depth_stream=_depth_and_stream(cur, known),
                   groups=_state_groups(cur, known), recent={})
    parts.recent = _recent(cur, known, parts.state)
    _drop_stale_groups(cur, parts)
    snapshots: dict[str, RoomSnapshot] = {}
    for room_id, room_version, creator, is_public in records:
        depth, last_stream = parts.depth_stream.get(room_id, (0, 0))
        group, group_depth = parts.groups.get(room_id, (0, 0))
        recent = parts.recent.get(room_id, [])
        snapshots[room_id] = RoomSnapshot(
            room_id=room_id, room_version=room_version, creator=creator,
            is_public=bool(is_public), state=parts.state.get(room_id, {}),
            extremities=parts.extremities.get(room_id, []), max_depth=depth,
            state_group=group, state_group_depth=group_depth, last_stream=last_stream,
            recent=recent, recent_complete=len(recent) < RECENT_ON_LOAD)
    return snapshots


def _current_state(cur: Cursor, room_ids: list[str]) -> dict[str, dict[StateKey, Event]]:
    clause, args = cur.in_clause("room_id", room_ids)
    ids = [row[0] for row in cur.select_all(
        f"SELECT event_id FROM current_state_events WHERE {clause}", args)]
    state: dict[str, dict[StateKey, Event]] = {}
    for event in EventStore.get_events_txn(cur, ids).values():
        state.setdefault(event.room_id, {})[(event.type, event.state_key or "")] = event
    return state


def _extremities(cur: Cursor, room_ids: list[str]) -> dict[str, list[str]]:
    clause, args = cur.in_clause("room_id", room_ids)
    extremities: dict[str, list[str]] = {}
    for room_id, event_id in cur.select_all(
            f"SELECT room_id, event_id FROM forward_extremities WHERE {clause}"
            " ORDER BY room_id, event_id", args):
        extremities.setdefault(room_id, []).append(event_id)
    return extremities


def _depth_and_stream(cur: Cursor, room_ids: list[str]) -> dict[str, tuple[int, int]]:
    """Room ID -> (greatest depth, greatest stream position) of its events, outliers too: each
    found through its (room, ...) index, without reading the room's events."""
    clause, args = cur.in_clause("r.room_id", room_ids)
    return {room_id: (int(depth or 0), int(stream or 0)) for room_id, depth, stream in
            cur.select_all(
                "SELECT r.room_id,"
                " (SELECT MAX(e.depth) FROM events e WHERE e.room_id = r.room_id),"
                " (SELECT MAX(e.stream_ordering) FROM events e WHERE e.room_id = r.room_id)"
                f" FROM rooms r WHERE {clause}", args)}


def _state_groups(cur: Cursor, room_ids: list[str]) -> dict[str, tuple[int, int]]:
    """Room ID -> (state group, its delta depth) of the room's newest event that has one."""
    clause, args = cur.in_clause("r.room_id", room_ids)
    newest = {room_id: int(group) for room_id, group in cur.select_all(
        "SELECT r.room_id, (SELECT sg.state_group FROM events e"
        " JOIN event_to_state_groups sg ON sg.event_id = e.event_id"
        " WHERE e.room_id = r.room_id ORDER BY e.stream_ordering DESC LIMIT 1)"
        f" FROM rooms r WHERE {clause}", args) if group is not None}
    group_clause, group_args = cur.in_clause("id", sorted(set(newest.values())))
    depths = {int(group): int(depth) for group, depth in cur.select_all(
        f"SELECT id, delta_depth FROM state_groups WHERE {group_clause}", group_args)}
    return {room_id: (group, depths[group]) for room_id, group in newest.items()
            if group in depths}


def _drop_stale_groups(cur: Cursor, parts: _Parts) -> None:
    """Forget a room's state group when it is not the room's current state: after a fork the
    current state is a resolution, not the state after the newest event, and the next event
    starts a fresh snapshot (see EventCreator)."""
    groups = {group for group, _depth in parts.groups.values() if group}
    held = state_ids_for_groups_txn(cur, sorted(groups))
    for room_id, (group, _depth) in list(parts.groups.items()):
        current = {key: event.event_id for key, event in parts.state.get(room_id, {}).items()}
        if group and held.get(group, {}) != current:
            parts.groups[room_id] = (0, 0)


def state_ids_for_groups_txn(cur: Cursor, groups: list[int]) -> dict[int, dict[StateKey, str]]:
    """The full state of each group: its delta chain, oldest delta first so newer entries win.

    The chains are walked a link at a time for all groups at once (one indexed lookup of the
    groups' predecessors per link), then their deltas read in one statement.  A recursive
    query did the same in one statement, but PostgreSQL planned its step as a scan of every
    state group (~0.5 ms a room read back once the database held 100,000 groups).  SQLite
    keeps the recursive query: its plan follows the index, and it has no round trips to save."""
    if cur.engine != "postgres":
        return _state_by_recursive_query(cur, groups)
    previous = _chain_links(cur, groups)
    chains: dict[int, list[int]] = {}
    for head in groups:
        if head not in previous:
            continue
        chain, link = [head], previous[head]
        while link is not None and link not in chain:
            chain.append(link)
            link = previous.get(link)
        chains[head] = chain
    deltas: dict[int, list[tuple[StateKey, str]]] = {}
    members = sorted({group for chain in chains.values() for group in chain})
    for start in range(0, len(members), GROUP_CHUNK):
        clause, args = cur.in_clause("state_group", members[start:start + GROUP_CHUNK])
        for group, type_, state_key, event_id in cur.select_all(
                f"SELECT state_group, type, state_key, event_id FROM state_groups_state"
                f" WHERE {clause}", args):
            deltas.setdefault(int(group), []).append(((type_, state_key), event_id))
    state: dict[int, dict[StateKey, str]] = {}
    for head, chain in chains.items():
        full: dict[StateKey, str] = {}
        for group in reversed(chain):
            full.update(deltas.get(group, ()))
        if full:
            state[head] = full
    return state


def _state_by_recursive_query(cur: Cursor, groups: list[int]) -> dict[int, dict[StateKey, str]]:
    if not groups:
        return {}
    clause, args = cur.in_clause("id", groups)
    rows = cur.select_all(
        "WITH RECURSIVE chain(head, id, depth) AS ("
        f" SELECT id, id, 0 FROM state_groups WHERE {clause}"
        " UNION ALL"
        " SELECT c.head, g.prev_group, c.depth + 1 FROM state_groups g"
        " JOIN chain c ON g.id = c.id WHERE g.prev_group IS NOT NULL)"
        " SELECT c.head, s.type, s.state_key, s.event_id FROM chain c"
        " JOIN state_groups_state s ON s.state_group = c.id ORDER BY c.head, c.depth DESC",
        args)
    state: dict[int, dict[StateKey, str]] = {}
    for head, type_, state_key, event_id in rows:
        state.setdefault(int(head), {})[(type_, state_key)] = event_id
    return state


def _chain_links(cur: Cursor, groups: list[int]) -> dict[int, int | None]:
    """Group -> its previous group (None for a full snapshot), for ``groups`` and every group
    their chains pass through that the database holds."""
    previous: dict[int, int | None] = {}
    asked: set[int] = set()
    wanted = set(groups)
    while wanted:
        asked |= wanted
        batch = sorted(wanted)
        wanted = set()
        for start in range(0, len(batch), GROUP_CHUNK):
            clause, args = cur.in_clause("id", batch[start:start + GROUP_CHUNK])
            for group, prev in cur.select_all(
                    f"SELECT id, prev_group FROM state_groups WHERE {clause}", args):
                previous[int(group)] = None if prev is None else int(prev)
                if prev is not None and int(prev) not in asked:
                    wanted.add(int(prev))
    return previous


def _recent(cur: Cursor, room_ids: list[str],
            state: dict[str, dict[StateKey, Event]]) -> dict[str, list[Event]]:
    """Room ID -> its newest ``RECENT_ON_LOAD`` timeline events, oldest first: each room's
    lower bound is found through the (room, stream) index, then its events from there.  An
    event that is also current state is the same object as in ``state`` (decoded once)."""
    held = {event.event_id: event for events in state.values() for event in events.values()}
    clause, args = cur.in_clause("r0.room_id", room_ids)
    rows = cur.select_all(
        f"SELECT {EVENT_COLUMNS} FROM ("
        " SELECT r0.room_id AS room_id, (SELECT e0.stream_ordering FROM events e0"
        "  WHERE e0.room_id = r0.room_id AND e0.outlier = ?"
        "  ORDER BY e0.stream_ordering DESC LIMIT 1 OFFSET ?) AS low"
        f" FROM rooms r0 WHERE {clause}) b"
        " JOIN events e ON e.room_id = b.room_id AND e.outlier = ?"
        " AND e.stream_ordering >= COALESCE(b.low, ?)"
        " JOIN rooms r ON r.room_id = e.room_id"
        " ORDER BY e.room_id, e.stream_ordering",
        [False, RECENT_ON_LOAD - 1, *args, False, -(2 ** 62)])
    recent: dict[str, list[Event]] = {}
    for row in rows:
        event = held.get(row[0]) or row_to_event(row, cur.at_rest)
        recent.setdefault(event.room_id, []).append(event)
    return recent
