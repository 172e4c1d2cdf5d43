"""Events are shaped for clients once and the shape is shared by every requester: the
transaction ID still reaches only the sending device, and a redaction is never hidden by a
kept shape."""

from __future__ import annotations

from typing import Any

import pytest

from broker.auth import Requester
from broker.rooms.create_room import CreateRoomRequest
from protocol.events import Event
from tests.inprocess_node import InProcessNode


class Room:
    def __init__(self, local: InProcessNode) -> None:
        self.local = local
        self.node = local.node
        self.alice, _ = local.register("alice")
        self.bob, _ = local.register("bob")
        self.room_id, _alias = local.settle(self.node.room_creation.create(
            CreateRoomRequest(creator=self.alice.user_id, preset="public_chat")))
        local.settle(self.node.membership.join(self.room_id, self.bob.user_id))

    def send(self, text: str, txn_id: str) -> str:
        return self.local.settle(self.node.room_events.send(
            self.alice.user_id, self.alice.device_id, self.room_id, "m.room.message",
            {"msgtype": "m.text", "body": text}, txn_id))

    def latest(self, event_id: str) -> Event:
        room = self.node.rooms.registry.cached(self.room_id)
        assert room is not None
        return next(e for e in room.recent if e.event_id == event_id)

    def shaped(self, event_id: str, reader: Requester) -> dict[str, Any]:
        device = (reader.user_id, reader.device_id)
        return self.local.run(self.node.client_events.serialize(
            [self.latest(event_id)], device=device))[0]


@pytest.fixture
def room(local: InProcessNode) -> Room:
    return Room(local)


def test_the_shape_is_built_once_for_every_requester(room: Room) -> None:
    event_id = room.send("hello", "t1")
    before = room.node.client_events.cached_count()
    first, second = room.shaped(event_id, room.bob), room.shaped(event_id, room.alice)
    assert room.node.client_events.cached_count() == before + 1
    assert first["content"] is second["content"]


def test_the_transaction_id_reaches_only_the_sending_device(room: Room) -> None:
    event_id = room.send("hello", "t1")
    assert "transaction_id" not in room.shaped(event_id, room.bob)["unsigned"]
    assert room.shaped(event_id, room.alice)["unsigned"]["transaction_id"] == "t1"
    assert "transaction_id" not in room.shaped(event_id, room.bob)["unsigned"]


def test_a_requester_changing_its_copy_leaves_the_shape_alone(room: Room) -> None:
    event_id = room.send("hello", "t1")
    room.shaped(event_id, room.bob)["unsigned"]["age"] = -1
    assert room.shaped(event_id, room.bob)["unsigned"]["age"] >= 0


def test_the_age_is_the_requesters_own(room: Room) -> None:
    event_id = room.send("hello", "t1")
    first = room.shaped(event_id, room.bob)["unsigned"]["age"]
    room.local.advance(2)
    assert room.shaped(event_id, room.bob)["unsigned"]["age"] == first + 2000


def test_a_redaction_replaces_the_kept_shape(room: Room) -> None:
    event_id = room.send("secret", "t1")
    assert room.shaped(event_id, room.bob)["content"]["body"] == "secret"
    redaction_id = room.local.settle(room.node.room_events.redact(
        room.alice.user_id, room.alice.device_id, room.room_id, event_id, None, "t2"))
    shaped = room.shaped(event_id, room.bob)
    assert shaped["content"] == {}
    assert shaped["unsigned"]["redacted_because"]["event_id"] == redaction_id
