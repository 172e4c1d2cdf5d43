"""Auto-delete messages on the node's clock, both engines: once the lifetime has passed the
node redacts the message in its sender's name and its content is gone from the database; before
that nothing happens; the due times survive a restart (also when they fell due while the node
was stopped); a message its sender can no longer redact is dropped and counted."""

from __future__ import annotations

from itertools import count
from typing import Any
from urllib.parse import quote

from broker.message_tags import LIFETIME_FIELD, TAGS_FIELD
from tests.inprocess_node import InProcessNode
from tests.node_engines import Engine, engines, run_for, stored_json
from tests.storage_helpers import result_of

V3 = "/_matrix/client/v3"
LIFETIME_S = 120
TXN = count()


engine = engines()


class Room:
    """A room of ``alice`` (the sender) and ``bob`` on one node."""

    def __init__(self, local: InProcessNode) -> None:
        self.local = local
        _, self.alice = local.register("alice")
        _, self.bob = local.register("bob")
        status, answer = local.call("POST", f"{V3}/createRoom", self.alice,
                                    {"preset": "public_chat"})
        assert status == 200, answer
        self.room_id = str(answer["room_id"])
        assert local.call("POST", f"{V3}/join/{quote(self.room_id)}", self.bob, {})[0] == 200

    def send(self, token: str, content: dict[str, Any]) -> str:
        status, answer = self.local.call(
            "PUT", f"{V3}/rooms/{quote(self.room_id)}/send/m.room.message/t{next(TXN)}",
            token, content)
        assert status == 200, answer
        return str(answer["event_id"])

    def send_auto_delete(self, body: str = "burn after reading") -> str:
        return self.send(self.alice, {"msgtype": "m.text", "body": body,
                                      TAGS_FIELD: ["auto_delete", "confidential"],
                                      LIFETIME_FIELD: LIFETIME_S * 1000})


def seen_by(local: InProcessNode, token: str, room_id: str, event_id: str) -> dict[str, Any]:
    status, event = local.call("GET", f"{V3}/rooms/{quote(room_id)}/event/{quote(event_id)}",
                               token)
    assert status == 200, event
    return dict(event)


def test_a_message_is_kept_until_its_lifetime_passes(engine: Engine) -> None:
    local = engine.node()
    room = Room(local)
    event_id = room.send_auto_delete()
    local.node.auto_delete.start(local.reactor)
    run_for(local, LIFETIME_S - 10)
    assert seen_by(local, room.bob, room.room_id, event_id)["content"]["body"] == \
        "burn after reading"


def test_after_its_lifetime_a_message_is_redacted_by_its_sender_and_purged(
        engine: Engine) -> None:
    local = engine.node()
    room = Room(local)
    event_id = room.send_auto_delete()
    kept = room.send(room.alice, {"msgtype": "m.text", "body": "kept"})
    local.node.auto_delete.start(local.reactor)
    run_for(local, LIFETIME_S + 1)
    event = seen_by(local, room.bob, room.room_id, event_id)
    assert event["content"] == {}
    assert event["unsigned"]["redacted_because"]["sender"] == event["sender"]
    assert "burn after reading" not in stored_json(local, event_id)
    assert result_of(local.node.stores.event_expiry.expiry_of(event_id)) is None
    assert seen_by(local, room.bob, room.room_id, kept)["content"]["body"] == "kept"


def test_the_due_time_survives_a_restart(engine: Engine) -> None:
    first = engine.node()
    room = Room(first)
    event_id = room.send_auto_delete()
    again = engine.restart(first)
    again.node.auto_delete.start(again.reactor)
    run_for(again, LIFETIME_S - 10)
    assert "burn after reading" in stored_json(again, event_id)
    run_for(again, 11)
    assert "burn after reading" not in stored_json(again, event_id)


def test_a_message_due_while_the_node_was_stopped_is_redacted_at_start(engine: Engine) -> None:
    first = engine.node()
    room = Room(first)
    event_id = room.send_auto_delete()
    again = engine.restart(first)
    again.advance(LIFETIME_S * 2)
    again.node.auto_delete.start(again.reactor)
    run_for(again, 0)
    assert seen_by(again, room.bob, room.room_id, event_id)["content"] == {}


def test_a_message_its_sender_has_left_is_dropped_and_counted(engine: Engine) -> None:
    local = engine.node()
    room = Room(local)
    event_id = room.send_auto_delete()
    assert local.call("POST", f"{V3}/rooms/{quote(room.room_id)}/leave", room.alice,
                      {})[0] == 200
    local.node.auto_delete.start(local.reactor)
    run_for(local, LIFETIME_S + 1)
    assert local.node.auto_delete.not_redacted == 1
    assert result_of(local.node.stores.event_expiry.expiry_of(event_id)) is None


def test_a_message_its_sender_redacted_first_is_no_longer_waiting(engine: Engine) -> None:
    local = engine.node()
    room = Room(local)
    event_id = room.send_auto_delete()
    status, _ = local.call(
        "PUT", f"{V3}/rooms/{quote(room.room_id)}/redact/{quote(event_id)}/r1", room.alice, {})
    assert status == 200
    assert result_of(local.node.stores.event_expiry.expiry_of(event_id)) is None


def test_the_policy_document_counts_the_messages_auto_deleted(engine: Engine) -> None:
    local = engine.node()
    room = Room(local)
    room.send_auto_delete()
    local.node.auto_delete.start(local.reactor)
    run_for(local, LIFETIME_S + 1)
    summary = local.node.policy_document.document()["message_tags"]
    assert summary["auto_deleted"] == {"redacted": 1, "not_redacted": 0}
