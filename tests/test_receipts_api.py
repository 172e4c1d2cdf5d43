"""Receipts and read markers through the Client-Server API, and how /sync delivers them."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from tests.node_harness import Client, NodeProcess
from tests.room_helpers import create_room, join, room_path, send_text, sync


def _receipt(client: Client, room_id: str, event_id: str, kind: str = "m.read",
             body: dict[str, Any] | None = None) -> Any:
    return client.post(room_path(room_id, f"receipt/{kind}/{quote(event_id)}"), body or {})


def _ephemeral_receipts(response: dict[str, Any], room_id: str) -> dict[str, Any]:
    room = response.get("rooms", {}).get("join", {}).get(room_id, {})
    for event in room.get("ephemeral", {}).get("events", []):
        if event["type"] == "m.receipt":
            return dict(event["content"])
    return {}


def _pair(node: NodeProcess) -> tuple[Client, Client, str, str]:
    alice, bob = node.register(), node.register()
    room_id = create_room(alice, preset="public_chat")
    join(bob, room_id)
    event_id = send_text(alice, room_id, "hello")
    return alice, bob, room_id, event_id


def test_read_receipt_reaches_other_members_sync(node: NodeProcess) -> None:
    alice, bob, room_id, event_id = _pair(node)
    since = sync(alice)["next_batch"]
    assert _receipt(bob, room_id, event_id) == {} and bob.status == 200
    receipts = _ephemeral_receipts(sync(alice, since, timeout=5000), room_id)
    assert set(receipts[event_id]["m.read"]) == {bob.user_id}
    assert isinstance(receipts[event_id]["m.read"][bob.user_id]["ts"], int)


def test_initial_sync_shows_current_receipts(node: NodeProcess) -> None:
    alice, bob, room_id, event_id = _pair(node)
    _receipt(bob, room_id, event_id)
    assert bob.user_id in _ephemeral_receipts(sync(alice), room_id)[event_id]["m.read"]


def test_private_receipt_is_seen_only_by_its_owner(node: NodeProcess) -> None:
    alice, bob, room_id, event_id = _pair(node)
    _receipt(bob, room_id, event_id, "m.read.private")
    assert bob.status == 200
    assert _ephemeral_receipts(sync(alice), room_id) == {}
    mine = _ephemeral_receipts(sync(bob), room_id)
    assert set(mine[event_id]["m.read.private"]) == {bob.user_id}


def test_threaded_receipt_carries_its_thread_id(node: NodeProcess) -> None:
    alice, bob, room_id, event_id = _pair(node)
    _receipt(bob, room_id, event_id, body={"thread_id": "main"})
    assert bob.status == 200
    receipts = _ephemeral_receipts(sync(alice), room_id)
    assert receipts[event_id]["m.read"][bob.user_id]["thread_id"] == "main"


def test_reposting_a_receipt_keeps_one_entry(node: NodeProcess) -> None:
    alice, bob, room_id, event_id = _pair(node)
    _receipt(bob, room_id, event_id)
    since = sync(alice)["next_batch"]
    _receipt(bob, room_id, event_id)
    assert bob.status == 200
    assert _ephemeral_receipts(sync(alice, since), room_id) == {}


def test_fully_read_receipt_is_room_account_data(node: NodeProcess) -> None:
    alice, bob, room_id, event_id = _pair(node)
    _receipt(bob, room_id, event_id, "m.fully_read")
    assert bob.status == 200
    stored = bob.get(f"/_matrix/client/v3/user/{quote(bob.user_id)}/rooms/{quote(room_id)}"
                     "/account_data/m.fully_read")
    assert stored == {"event_id": event_id}
    assert _ephemeral_receipts(sync(alice), room_id) == {}


def test_read_markers_set_marker_and_receipts_together(node: NodeProcess) -> None:
    alice, bob, room_id, event_id = _pair(node)
    second = send_text(alice, room_id, "again")
    body = bob.post(room_path(room_id, "read_markers"),
                    {"m.fully_read": event_id, "m.read": second})
    assert bob.status == 200 and body == {}
    stored = bob.get(f"/_matrix/client/v3/user/{quote(bob.user_id)}/rooms/{quote(room_id)}"
                     "/account_data/m.fully_read")
    assert stored == {"event_id": event_id}
    assert bob.user_id in _ephemeral_receipts(sync(alice), room_id)[second]["m.read"]


def test_read_markers_with_a_foreign_event_write_nothing(node: NodeProcess) -> None:
    alice, bob, room_id, event_id = _pair(node)
    other_room = create_room(bob)
    foreign = send_text(bob, other_room, "elsewhere")
    body = bob.post(room_path(room_id, "read_markers"),
                    {"m.read": event_id, "m.fully_read": foreign})
    assert bob.status == 404 and body["errcode"] == "M_NOT_FOUND"
    assert _ephemeral_receipts(sync(alice), room_id) == {}


def test_unknown_receipt_type_is_invalid(node: NodeProcess) -> None:
    _alice, bob, room_id, event_id = _pair(node)
    body = _receipt(bob, room_id, event_id, "m.seen")
    assert bob.status == 400 and body["errcode"] == "M_INVALID_PARAM"


def test_bad_thread_ids_are_invalid(node: NodeProcess) -> None:
    _alice, bob, room_id, event_id = _pair(node)
    for kind, thread_id in (("m.read", ""), ("m.read", 5), ("m.fully_read", "main"),
                            ("m.read", "not-an-event")):
        body = _receipt(bob, room_id, event_id, kind, {"thread_id": thread_id})
        assert bob.status == 400 and body["errcode"] == "M_INVALID_PARAM", (kind, thread_id)


def test_receipt_in_another_thread_is_invalid(node: NodeProcess) -> None:
    alice, bob, room_id, root = _pair(node)
    reply = alice.put(room_path(room_id, "send/m.room.message/t1"), {
        "msgtype": "m.text", "body": "in thread",
        "m.relates_to": {"rel_type": "m.thread", "event_id": root}})["event_id"]
    body = _receipt(bob, room_id, reply, body={"thread_id": "$someotherroot"})
    assert bob.status == 400 and body["errcode"] == "M_INVALID_PARAM"
    _receipt(bob, room_id, reply, body={"thread_id": root})
    assert bob.status == 200


def test_receipt_for_an_event_of_another_room_is_not_found(node: NodeProcess) -> None:
    _alice, bob, room_id, _event_id = _pair(node)
    other_room = create_room(bob)
    foreign = send_text(bob, other_room, "elsewhere")
    body = _receipt(bob, room_id, foreign)
    assert bob.status == 404 and body["errcode"] == "M_NOT_FOUND"
    body = _receipt(bob, room_id, "$unknown")
    assert bob.status == 404 and body["errcode"] == "M_NOT_FOUND"


def test_receipt_from_a_non_member_is_forbidden(node: NodeProcess) -> None:
    _alice, _bob, room_id, event_id = _pair(node)
    carol = node.register()
    body = _receipt(carol, room_id, event_id)
    assert carol.status == 403 and body["errcode"] == "M_FORBIDDEN"
    body = carol.post(room_path(room_id, "read_markers"), {"m.read": event_id})
    assert carol.status == 403 and body["errcode"] == "M_FORBIDDEN"


def test_receipts_need_an_access_token(node: NodeProcess) -> None:
    _alice, _bob, room_id, event_id = _pair(node)
    anonymous = node.client()
    body = _receipt(anonymous, room_id, event_id)
    assert anonymous.status == 401 and body["errcode"] == "M_MISSING_TOKEN"


def test_receipts_survive_on_both_engines(any_node: NodeProcess) -> None:
    alice, bob, room_id, event_id = _pair(any_node)
    _receipt(bob, room_id, event_id)
    _receipt(bob, room_id, event_id, "m.read.private")
    assert bob.status == 200
    assert set(_ephemeral_receipts(sync(bob), room_id)[event_id]) == {"m.read", "m.read.private"}
    assert set(_ephemeral_receipts(sync(alice), room_id)[event_id]) == {"m.read"}
