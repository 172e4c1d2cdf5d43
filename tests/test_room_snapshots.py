"""Loading many rooms at once: each snapshot holds what the writes put there, the same as a load
of that room alone, on both engines."""

from __future__ import annotations

from typing import Any

import pytest

from storage import room_snapshots
from storage.database import Database
from storage.events import PersistItem
from storage.room_snapshots import RECENT_ON_LOAD, RoomSnapshot
from tests.event_chain import ALICE, EventChain
from tests.storage_helpers import result_of
from tests.stored_rooms import Rooms


def _shape(snapshot: RoomSnapshot | None) -> dict[str, Any]:
    """A snapshot as comparable values."""
    assert snapshot is not None
    return {
        "room": (snapshot.room_id, snapshot.room_version, snapshot.creator, snapshot.is_public),
        "state": {key: (e.event_id, e.content) for key, e in snapshot.state.items()},
        "extremities": snapshot.extremities,
        "depth": snapshot.max_depth,
        "group": (snapshot.state_group, snapshot.state_group_depth),
        "last_stream": snapshot.last_stream,
        "recent": [(e.event_id, e.unsigned["stream_ordering"]) for e in snapshot.recent],
        "recent_complete": snapshot.recent_complete,
    }


def _written(chain: EventChain) -> dict[str, Any]:
    """What a snapshot of ``chain``'s room must hold: what was written to it."""
    recent = chain.events[-RECENT_ON_LOAD:]
    first = chain.stream - len(chain.events) + 1
    return {
        "room": (chain.room_id, "12", ALICE, False),
        "state": {key: (event_id, next(e.content for e in chain.events
                                       if e.event_id == event_id))
                  for key, event_id in chain.state.items()},
        "extremities": [chain.events[-1].event_id],
        "depth": len(chain.events),
        "group": (chain.group, chain.group - chain.first_group),
        "last_stream": chain.stream,
        "recent": [(e.event_id, first + chain.events.index(e)) for e in recent],
        "recent_complete": len(chain.events) < RECENT_ON_LOAD,
    }


@pytest.fixture
def rooms(database: Database) -> Rooms:
    return Rooms(database)


def test_each_room_of_a_batch_holds_what_was_written_to_it(rooms: Rooms) -> None:
    busy, quiet, renamed = rooms.room(30), rooms.room(0), rooms.room(2, name_changes=3)
    loaded = result_of(rooms.state.load_rooms([busy.room_id, quiet.room_id, renamed.room_id]))
    assert {room_id: _shape(s) for room_id, s in loaded.items()} == {
        chain.room_id: _written(chain) for chain in (busy, quiet, renamed)}


def test_a_room_in_a_batch_is_the_same_as_loaded_alone(rooms: Rooms) -> None:
    chains = [rooms.room(messages) for messages in (0, 5, RECENT_ON_LOAD, 40)]
    loaded = result_of(rooms.state.load_rooms([c.room_id for c in chains]))
    for chain in chains:
        assert _shape(loaded[chain.room_id]) == _shape(
            result_of(rooms.state.load_room(chain.room_id)))


def test_rooms_beyond_one_query_chunk_are_all_loaded(
        rooms: Rooms, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(room_snapshots, "ROOM_CHUNK", 2)
    chains = [rooms.room(messages) for messages in range(5)]
    loaded = result_of(rooms.state.load_rooms([c.room_id for c in chains]))
    assert {room_id: _shape(s) for room_id, s in loaded.items()} == {
        chain.room_id: _written(chain) for chain in chains}


def test_unknown_rooms_are_absent_from_a_batch(rooms: Rooms) -> None:
    known = rooms.room(1)
    loaded = result_of(rooms.state.load_rooms(["!nowhere:a.test", known.room_id]))
    assert list(loaded) == [known.room_id]
    assert result_of(rooms.state.load_room("!nowhere:a.test")) is None


def test_outliers_are_neither_recent_events_nor_state(rooms: Rooms) -> None:
    chain = rooms.room(2)
    other = EventChain()
    other.room_id = chain.room_id  # an event of this room learnt over federation
    outlier = other.item("m.room.member", {"membership": "join"}, "@bob:b.test")
    rooms.write(PersistItem(event=outlier.event, stream_ordering=rooms.next_stream(),
                            state_group_after=None, outlier=True))
    snapshot = result_of(rooms.state.load_rooms([chain.room_id]))[chain.room_id]
    shape = _shape(snapshot)
    assert shape["last_stream"] == rooms.stream  # outliers count towards the greatest position
    assert {**shape, "last_stream": chain.stream} == _written(chain)


def test_backfilled_history_is_part_of_the_recent_events(rooms: Rooms) -> None:
    chain = rooms.room(1)
    older = EventChain()
    older.room_id = chain.room_id
    backfilled = older.item("m.room.message", {"msgtype": "m.text", "body": "long ago"})
    rooms.write(PersistItem(event=backfilled.event, stream_ordering=-1,
                            state_group_after=None, backfilled=True))
    snapshot = result_of(rooms.state.load_rooms([chain.room_id]))[chain.room_id]
    assert [e.event_id for e in snapshot.recent] == [
        backfilled.event.event_id, *(e.event_id for e in chain.events)]
    assert snapshot.recent[0].unsigned["stream_ordering"] == -1


def test_current_state_other_than_the_newest_group_leaves_the_room_without_a_group(
        rooms: Rooms) -> None:
    chain = rooms.room(1)
    resolved = chain.item("m.room.message", {"msgtype": "m.text", "body": "after a fork"})
    # A resolution after a fork (here: without the name) is not the newest group's state.
    create, member = chain.events[0], chain.events[1]
    resolved.current_state = {("m.room.create", ""): create, ("m.room.member", ALICE): member}
    rooms.write(resolved)
    snapshot = result_of(rooms.state.load_rooms([chain.room_id]))[chain.room_id]
    assert (snapshot.state_group, snapshot.state_group_depth) == (0, 0)


def test_visibility_changes_of_several_rooms_are_each_rooms_own(rooms: Rooms) -> None:
    restricted = rooms.room(1)
    rooms.write(restricted.item("m.room.history_visibility", {"history_visibility": "joined"},
                                ""))
    rooms.write(restricted.item("m.room.member", {"membership": "leave"}, ALICE))
    rooms.group = restricted.group
    open_room = rooms.room(1)
    both = result_of(rooms.events.get_visibility_changes_in_rooms(
        [restricted.room_id, open_room.room_id], [ALICE]))
    assert both == {room_id: result_of(rooms.events.get_visibility_changes(room_id, [ALICE]))
                    for room_id in (restricted.room_id, open_room.room_id)}
    memberships, visibilities = both[restricted.room_id]
    assert [m for _, m in memberships[ALICE]] == ["join", "leave"]
    assert [v for _, v in visibilities] == ["joined"]
    assert both[open_room.room_id][1] == []
