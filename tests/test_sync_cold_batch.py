"""An initial sync brings the user's rooms into memory in one batch read and keeps them while it
builds its answer, even beyond the live-room budget (in process, both engines)."""

from __future__ import annotations

import gc
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from twisted.internet import defer

from broker.filtering import Filter
from broker.rooms.create_room import CreateRoomRequest
from broker.sync.handler import SyncRequest
from storage.room_snapshots import RoomSnapshot
from tests.inprocess_node import InProcessNode
from tests.storage_helpers import result_of

ROOMS = 4


@pytest.fixture(params=["sqlite", "postgres"])
def small_budget(request: Any, tmp_path: Path) -> Iterator[InProcessNode]:
    """An in-process node that keeps one live room after its use."""
    harness = InProcessNode(tmp_path, engine=request.param,
                            config={"caches": {"live_rooms": 1}})
    try:
        yield harness
    finally:
        harness.close()


def test_an_initial_sync_reads_the_rooms_in_one_batch_beyond_the_budget(
        small_budget: InProcessNode, monkeypatch: pytest.MonkeyPatch) -> None:
    node = small_budget.node
    alice, _ = small_budget.register("alice")
    room_ids = []
    for i in range(ROOMS):
        small_budget.advance(1)  # rooms v12 take their ID from the create event and its time
        created = small_budget.start(node.new_rooms.create(CreateRoomRequest(
            creator=alice.user_id, preset="private_chat", name=f"room {i}")))
        small_budget.advance(0)
        room_ids.append(result_of(created))
    registry = node.rooms.registry
    for room_id in room_ids:
        registry.invalidate(room_id)
    gc.collect()
    store = registry.state_store
    reads: list[list[str]] = []
    read_rooms = store.load_rooms

    def noted(ids: Sequence[str]) -> defer.Deferred[dict[str, RoomSnapshot]]:
        reads.append(sorted(ids))
        return read_rooms(ids)

    monkeypatch.setattr(store, "load_rooms", noted)
    body = small_budget.run(node.sync.sync(SyncRequest(alice, None, Filter())))
    assert sorted(body["rooms"]["join"]) == sorted(room_ids)
    assert reads == [sorted(room_ids)]
