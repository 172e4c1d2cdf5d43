"""Expired events leave every read path at once, on the node's clock: /messages, /sync (initial
and incremental), /event and /context; state events stay; lowering a room's policy hides the
older events at once; clients read the node's bounds in /capabilities."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

import pytest

from broker.retention import CAPABILITY
from tests.inprocess_node import InProcessNode
from tests.retention_room import V3, Room

HOUR_MS = 3_600_000
RETENTION = {"enabled": True, "default_policy": {"max_lifetime": "2h"},
             "allowed_lifetime_min": "1h", "allowed_lifetime_max": "30d"}


@pytest.fixture
def node(tmp_path: Path, request: pytest.FixtureRequest) -> InProcessNode:
    made = InProcessNode(tmp_path, config={"retention": RETENTION})
    request.addfinalizer(made.close)
    return made


class ReadRoom(Room):
    """The room, read through every read path."""

    def messages(self) -> list[str]:
        return self.bodies()

    def bodies_in_sync(self, since: str | None = None) -> list[str]:
        query = f"?since={since}&timeout=0" if since else ""
        status, answer = self.local.call("GET", f"{V3}/sync{query}", self.alice)
        assert status == 200, answer
        room = answer["rooms"]["join"].get(self.room_id, {"timeline": {"events": []}})
        return [e["content"].get("body") for e in room["timeline"]["events"]
                if e["type"] == "m.room.message"]

    def event_status(self, event_id: str) -> int:
        return self.local.call("GET", f"{self.path}/event/{quote(event_id)}", self.alice)[0]

    def context_status(self, event_id: str) -> int:
        return self.local.call("GET", f"{self.path}/context/{quote(event_id)}", self.alice)[0]


def test_an_event_is_read_until_its_lifetime_has_passed(node: InProcessNode) -> None:
    room = ReadRoom(node)
    event_id = room.send("old")
    node.advance(2 * 3600)  # exactly the lifetime: not yet past it
    assert room.messages() == ["old"]
    assert room.bodies_in_sync() == ["old"]
    assert room.event_status(event_id) == 200


def test_an_expired_event_vanishes_from_messages_sync_event_and_context_at_once(
        node: InProcessNode) -> None:
    room = ReadRoom(node)
    old = room.send("old")
    node.advance(HOUR_MS / 1000)
    room.send("new")
    node.advance(HOUR_MS / 1000 + 1)
    assert room.messages() == ["new"]
    assert room.bodies_in_sync() == ["new"]
    assert room.event_status(old) == 404
    assert room.context_status(old) == 404


def test_an_event_expiring_between_two_syncs_leaves_the_incremental_timeline(
        node: InProcessNode) -> None:
    room = ReadRoom(node)
    status, first = node.call("GET", f"{V3}/sync", room.alice)
    assert status == 200
    room.send("soon gone")
    node.advance(2 * 3600 + 1)
    assert room.bodies_in_sync(first["next_batch"]) == []


def test_state_events_stay_after_the_lifetime(node: InProcessNode) -> None:
    room = ReadRoom(node)
    node.advance(3 * 3600)
    status, name = node.call("GET", f"{room.path}/state/m.room.name/", room.alice)
    assert (status, name) == (200, {"name": "Kept"})
    status, answer = node.call("GET", f"{room.path}/messages?dir=b&limit=50", room.alice)
    assert "m.room.create" in {e["type"] for e in answer["chunk"]}


def test_a_page_of_messages_is_filled_from_past_the_expired_events(
        node: InProcessNode) -> None:
    room = ReadRoom(node)
    for i in range(30):
        room.send(f"expired {i}")
    node.advance(2 * 3600 + 1)
    room.send("fresh")
    chunk = room.ok("GET", f"{room.path}/messages?dir=b&limit=5")["chunk"]
    assert chunk[0]["content"] == {"msgtype": "m.text", "body": "fresh"}
    assert len(chunk) == 5 and all("state_key" in e for e in chunk[1:])


def test_a_lowered_room_policy_hides_the_older_events_at_once(node: InProcessNode) -> None:
    room = ReadRoom(node)
    room.set_policy(10 * HOUR_MS)
    room.send("ninety minutes old")
    node.advance(90 * 60)
    room.send("fresh")
    assert room.messages() == ["fresh", "ninety minutes old"]
    room.set_policy(HOUR_MS)
    assert room.messages() == ["fresh"]


def test_a_room_policy_below_the_minimum_keeps_events_for_the_minimum(
        node: InProcessNode) -> None:
    room = ReadRoom(node)
    room.set_policy(60_000)
    room.send("kept an hour")
    node.advance(30 * 60)
    assert room.messages() == ["kept an hour"]


def test_clients_read_the_nodes_bounds_in_the_capabilities(node: InProcessNode) -> None:
    _, token = node.register("reader")
    status, answer = node.call("GET", f"{V3}/capabilities", token)
    assert status == 200
    assert answer["capabilities"][CAPABILITY] == {
        "enabled": True, "default_max_lifetime": 2 * HOUR_MS, "min_lifetime": HOUR_MS,
        "max_lifetime": 30 * 24 * HOUR_MS}
