"""A node rebuilds everything it keeps in memory from the database after a restart."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.node_harness import NodeProcess, node_on_engine
from tests.room_helpers import V3, create_room, room_path, send_text, sync


@pytest.mark.parametrize("engine", ["sqlite", "postgres"])
def test_rooms_and_sessions_survive_a_restart(engine: str, tmp_path: Path) -> None:
    with node_on_engine(engine, tmp_path) as node:
        alice = node.register()
        room_id = create_room(alice, name="Durable")
        first = send_text(alice, room_id, "before restart")
        node.stop()
        node.start()
        second = send_text(alice, room_id, "after restart")
        body = alice.get(room_path(room_id, "messages"), params={"dir": "b", "limit": 2})
        assert [e["event_id"] for e in body["chunk"]] == [second, first]
        event = alice.get(room_path(room_id, f"event/{second}"))
        assert event["content"]["body"] == "after restart"
        joined = sync(alice)["rooms"]["join"][room_id]
        assert joined["timeline"]["events"][-1]["event_id"] == second
        assert alice.get(f"{V3}/joined_rooms")["joined_rooms"] == [room_id]


def test_new_state_chains_onto_state_loaded_after_restart(tmp_path: Path) -> None:
    node = NodeProcess(tmp_path).start()
    try:
        alice = node.register()
        room_id = create_room(alice, name="Before")
        node.stop()
        node.start()
        alice.put(room_path(room_id, "state/m.room.name"), {"name": "After"})
        assert alice.status == 200
        assert alice.get(room_path(room_id, "state/m.room.name")) == {"name": "After"}
        create = alice.get(room_path(room_id, "state/m.room.create"), params={"format": "event"})
        assert create["type"] == "m.room.create"
    finally:
        node.stop()
