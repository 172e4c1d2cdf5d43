"""The room registry brings a set of rooms into memory in one batch read: the live rooms are the
same as loaded one by one, and a room already loading is not read twice (both engines)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
from twisted.internet import defer

from broker.rooms.live_room import LiveRoom, RoomRegistry
from storage.database import Database
from storage.room_snapshots import RECENT_ON_LOAD, RoomSnapshot
from storage.state import StateStore
from tests.storage_helpers import result_of
from tests.stored_rooms import Rooms


class HeldStateStore(StateStore):
    """A state store that notes each batch read and, while ``hold`` is set, answers only when
    the test releases it."""

    def __init__(self, database: Database) -> None:
        super().__init__(database)
        self.reads: list[list[str]] = []
        self.hold = False
        self.held: list[tuple[defer.Deferred[dict[str, RoomSnapshot]], Any]] = []

    def load_rooms(self, room_ids: Sequence[str]) -> defer.Deferred[dict[str, RoomSnapshot]]:
        self.reads.append(list(room_ids))
        read = super().load_rooms(room_ids)
        if not self.hold:
            return read
        answer: defer.Deferred[dict[str, RoomSnapshot]] = defer.Deferred()
        self.held.append((answer, result_of(read)))
        return answer

    def release(self) -> None:
        for answer, result in self.held:
            answer.callback(result)
        self.held.clear()


def _get(registry: RoomRegistry, room_id: str) -> LiveRoom | None:
    return result_of(defer.ensureDeferred(registry.get(room_id)))


def _get_many(registry: RoomRegistry, room_ids: list[str]) -> dict[str, LiveRoom]:
    return result_of(defer.ensureDeferred(registry.get_many(room_ids)))


def _contents(room: LiveRoom | None) -> dict[str, Any]:
    assert room is not None
    return {
        "version": room.room_version.identifier,
        "state": {key: e.event_id for key, e in room.state.items()},
        "extremities": room.extremities, "depth": room.depth,
        "group": (room.state_group, room.state_group_depth), "last_stream": room.last_stream,
        "public": room.is_public, "recent": [e.event_id for e in room.recent],
        "recent_after": room.recent_after,
    }


@pytest.fixture
def rooms(database: Database) -> Rooms:
    return Rooms(database)


def test_rooms_loaded_together_are_the_same_as_loaded_one_by_one(
        rooms: Rooms, database: Database) -> None:
    chains = [rooms.room(messages) for messages in (0, 3, RECENT_ON_LOAD + 5)]
    together = _get_many(RoomRegistry(StateStore(database)), [c.room_id for c in chains])
    alone = RoomRegistry(StateStore(database))
    assert {room_id: _contents(room) for room_id, room in together.items()} == {
        c.room_id: _contents(_get(alone, c.room_id)) for c in chains}


def test_a_set_of_rooms_is_read_in_one_batch_and_kept(rooms: Rooms, database: Database) -> None:
    chains = [rooms.room(1) for _ in range(4)]
    store = HeldStateStore(database)
    registry = RoomRegistry(store)
    loaded = _get_many(registry, [c.room_id for c in chains])
    assert store.reads == [[c.room_id for c in chains]]
    assert all(_get(registry, c.room_id) is loaded[c.room_id] for c in chains)
    assert _get_many(registry, [c.room_id for c in chains]) == loaded
    assert len(store.reads) == 1


def test_unknown_rooms_are_absent_from_a_set(rooms: Rooms, database: Database) -> None:
    known = rooms.room(1)
    registry = RoomRegistry(StateStore(database))
    assert list(_get_many(registry, ["!nowhere:a.test", known.room_id])) == [known.room_id]
    assert _get(registry, "!nowhere:a.test") is None


def test_a_room_already_loading_is_shared_not_read_again(
        rooms: Rooms, database: Database) -> None:
    first, second = rooms.room(1), rooms.room(2)
    store = HeldStateStore(database)
    registry = RoomRegistry(store)
    store.hold = True
    alone = defer.ensureDeferred(registry.get(first.room_id))
    together = defer.ensureDeferred(registry.get_many([first.room_id, second.room_id]))
    assert store.reads == [[first.room_id], [second.room_id]]
    store.release()
    assert result_of(together)[first.room_id] is result_of(alone)


def test_a_room_with_fewer_events_than_a_load_reads_has_its_whole_timeline_in_memory(
        rooms: Rooms, database: Database) -> None:
    small, large = rooms.room(2), rooms.room(RECENT_ON_LOAD + 5)
    loaded = _get_many(RoomRegistry(StateStore(database)), [small.room_id, large.room_id])
    assert loaded[small.room_id].recent_after == 0
    newest = loaded[large.room_id].recent
    assert len(newest) == RECENT_ON_LOAD
    assert loaded[large.room_id].recent_after == newest[0].unsigned["stream_ordering"] - 1


def test_a_whole_timeline_in_memory_is_no_longer_whole_once_older_history_is_added(
        rooms: Rooms, database: Database) -> None:
    small = rooms.room(2)
    room = _get_many(RoomRegistry(StateStore(database)), [small.room_id])[small.room_id]
    room.older_history_added()
    assert room.recent_after == room.recent[0].unsigned["stream_ordering"] - 1
    assert room.recent_since(room.recent_after, room.last_stream) == list(room.recent)
