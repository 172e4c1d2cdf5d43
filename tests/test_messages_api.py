"""History: /messages pagination in both directions, filters, and /context."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

from tests.node_harness import NodeProcess
from tests.room_helpers import create_room, room_path, send_text


def _texts(chunk: list[dict]) -> list[str]:
    return [e["content"]["body"] for e in chunk if e["type"] == "m.room.message"]


def test_messages_paginate_backwards_then_forwards(any_node: NodeProcess) -> None:
    alice = any_node.register()
    room_id = create_room(alice)
    for i in range(7):
        send_text(alice, room_id, f"m{i}")
    page1 = alice.get(room_path(room_id, "messages"), params={"dir": "b", "limit": 3})
    assert _texts(page1["chunk"]) == ["m6", "m5", "m4"]
    page2 = alice.get(room_path(room_id, "messages"),
                      params={"dir": "b", "limit": 3, "from": page1["end"]})
    assert _texts(page2["chunk"]) == ["m3", "m2", "m1"]
    forward = alice.get(room_path(room_id, "messages"),
                        params={"dir": "f", "limit": 2, "from": page2["end"]})
    assert _texts(forward["chunk"]) == ["m1", "m2"]


def test_messages_end_is_omitted_at_the_start_of_the_room(node: NodeProcess) -> None:
    alice = node.register()
    room_id = create_room(alice)
    body = alice.get(room_path(room_id, "messages"), params={"dir": "b", "limit": 100})
    assert "end" not in body
    assert body["chunk"][-1]["type"] == "m.room.create"


def test_messages_filter_by_type(node: NodeProcess) -> None:
    alice = node.register()
    room_id = create_room(alice)
    send_text(alice, room_id, "only")
    flt = json.dumps({"types": ["m.room.message"]})
    body = alice.get(room_path(room_id, "messages"), params={"dir": "b", "filter": flt})
    assert [e["type"] for e in body["chunk"]] == ["m.room.message"]


def test_messages_bad_direction_is_rejected(node: NodeProcess) -> None:
    alice = node.register()
    room_id = create_room(alice)
    body = alice.get(room_path(room_id, "messages"), params={"dir": "sideways"})
    assert alice.status == 400 and body["errcode"] == "M_INVALID_PARAM"


def test_messages_bad_token_is_rejected(node: NodeProcess) -> None:
    alice = node.register()
    room_id = create_room(alice)
    body = alice.get(room_path(room_id, "messages"), params={"from": "garbage"})
    assert alice.status == 400 and body["errcode"] == "M_INVALID_PARAM"


def test_context_returns_events_around_the_target(node: NodeProcess) -> None:
    alice = node.register()
    room_id = create_room(alice)
    ids = [send_text(alice, room_id, f"c{i}") for i in range(5)]
    body = alice.get(room_path(room_id, f"context/{quote(ids[2])}"), params={"limit": 4})
    assert body["event"]["event_id"] == ids[2]
    assert _texts(body["events_before"]) == ["c1", "c0"]
    assert _texts(body["events_after"]) == ["c3", "c4"]
    assert any(e["type"] == "m.room.create" for e in body["state"])


def test_context_of_unknown_event_is_not_found(node: NodeProcess) -> None:
    alice = node.register()
    room_id = create_room(alice)
    body = alice.get(room_path(room_id, "context/$missing"))
    assert alice.status == 404 and body["errcode"] == "M_NOT_FOUND"


def _joined_only_room(alice: Any, visibility: str) -> str:
    room_id = create_room(alice, preset="public_chat")
    alice.put(room_path(room_id, "state/m.room.history_visibility"),
              {"history_visibility": visibility})
    assert alice.status == 200
    return room_id


def test_joined_visibility_hides_history_from_before_joining(node: NodeProcess) -> None:
    alice, bob = node.register(), node.register()
    room_id = _joined_only_room(alice, "joined")
    send_text(alice, room_id, "before bob")
    bob.post(f"/_matrix/client/v3/join/{quote(room_id)}", {})
    send_text(alice, room_id, "after bob")
    texts = _texts(bob.get(room_path(room_id, "messages"),
                           params={"dir": "b", "limit": 50})["chunk"])
    assert texts == ["after bob"]
    assert _texts(alice.get(room_path(room_id, "messages"),
                            params={"dir": "b", "limit": 50})["chunk"]) == [
        "after bob", "before bob"]


def test_shared_visibility_shows_history_to_new_members(node: NodeProcess) -> None:
    alice, bob = node.register(), node.register()
    room_id = _joined_only_room(alice, "shared")
    send_text(alice, room_id, "before bob")
    bob.post(f"/_matrix/client/v3/join/{quote(room_id)}", {})
    texts = _texts(bob.get(room_path(room_id, "messages"),
                           params={"dir": "b", "limit": 50})["chunk"])
    assert texts == ["before bob"]


def test_context_of_an_event_before_joining_is_hidden(node: NodeProcess) -> None:
    alice, bob = node.register(), node.register()
    room_id = _joined_only_room(alice, "joined")
    early = send_text(alice, room_id, "secret")
    bob.post(f"/_matrix/client/v3/join/{quote(room_id)}", {})
    body = bob.get(room_path(room_id, f"context/{quote(early)}"))
    assert bob.status == 404, body


def test_event_before_joining_is_hidden_by_id_too(node: NodeProcess) -> None:
    alice, bob = node.register(), node.register()
    room_id = _joined_only_room(alice, "joined")
    early = send_text(alice, room_id, "secret")
    bob.post(f"/_matrix/client/v3/join/{quote(room_id)}", {})
    body = bob.get(room_path(room_id, f"event/{quote(early)}"))
    assert bob.status == 404, body
    assert alice.get(room_path(room_id, f"event/{quote(early)}"))["content"]["body"] == "secret"
