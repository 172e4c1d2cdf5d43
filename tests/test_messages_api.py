"""History: /messages pagination in both directions, filters, and /context."""

from __future__ import annotations

import json
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
