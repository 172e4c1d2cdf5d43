"""/sync: initial, incremental, long-poll, limited timelines, invites and leaves."""

from __future__ import annotations

import json
import threading
import time

from tests.node_harness import NodeProcess
from tests.room_helpers import create_room, join, room_path, send_text, sync


def test_initial_sync_has_state_and_timeline(any_node: NodeProcess) -> None:
    alice = any_node.register()
    room_id = create_room(alice, name="Ops")
    send_text(alice, room_id, "hello")
    body = sync(alice)
    room = body["rooms"]["join"][room_id]
    state_types = {e["type"] for e in room["state"]["events"]} | {
        e["type"] for e in room["timeline"]["events"] if "state_key" in e}
    assert {"m.room.create", "m.room.name", "m.room.power_levels"} <= state_types
    assert room["timeline"]["events"][-1]["content"]["body"] == "hello"
    assert body["next_batch"].startswith("s")


def test_incremental_sync_has_only_new_events(node: NodeProcess) -> None:
    alice = node.register()
    room_id = create_room(alice)
    token = sync(alice)["next_batch"]
    send_text(alice, room_id, "new")
    body = sync(alice, token)
    events = body["rooms"]["join"][room_id]["timeline"]["events"]
    assert [e["content"]["body"] for e in events] == ["new"]


def test_sender_sees_its_transaction_id(node: NodeProcess) -> None:
    alice = node.register()
    room_id = create_room(alice)
    token = sync(alice)["next_batch"]
    alice.put(room_path(room_id, "send/m.room.message/my-txn"), {"msgtype": "m.text",
                                                                  "body": "x"})
    events = sync(alice, token)["rooms"]["join"][room_id]["timeline"]["events"]
    assert events[0]["unsigned"]["transaction_id"] == "my-txn"


def test_long_poll_wakes_when_a_message_arrives(node: NodeProcess) -> None:
    alice, bob = node.register(), node.register()
    room_id = create_room(alice, preset="public_chat")
    join(bob, room_id)
    token = sync(bob)["next_batch"]
    timer = threading.Timer(0.5, send_text, (alice, room_id, "wake up"))
    timer.start()
    started = time.monotonic()
    body = sync(bob, token, timeout=20000)
    elapsed = time.monotonic() - started
    timer.join()
    events = body["rooms"]["join"][room_id]["timeline"]["events"]
    assert [e["content"]["body"] for e in events] == ["wake up"]
    assert elapsed < 10


def test_long_poll_times_out_empty(node: NodeProcess) -> None:
    alice = node.register()
    create_room(alice)
    token = sync(alice)["next_batch"]
    body = sync(alice, token, timeout=300)
    assert body["rooms"]["join"] == {}
    assert body["next_batch"] == token


def test_gap_larger_than_limit_is_limited(node: NodeProcess) -> None:
    alice = node.register()
    room_id = create_room(alice)
    token = sync(alice)["next_batch"]
    for i in range(5):
        send_text(alice, room_id, f"n{i}")
    flt = json.dumps({"room": {"timeline": {"limit": 2}}})
    timeline = sync(alice, token, filter=flt)["rooms"]["join"][room_id]["timeline"]
    assert timeline["limited"] is True
    assert [e["content"]["body"] for e in timeline["events"]] == ["n3", "n4"]
    older = alice.get(room_path(room_id, "messages"),
                      params={"dir": "b", "from": timeline["prev_batch"], "limit": 1})
    assert older["chunk"][0]["content"]["body"] == "n2"


def test_gap_between_half_the_limit_and_the_limit_is_returned_whole(node: NodeProcess) -> None:
    alice = node.register()
    room_id = create_room(alice)
    token = sync(alice)["next_batch"]
    sent = [send_text(alice, room_id, f"n{i}") for i in range(7)]
    timeline = sync(alice, token)["rooms"]["join"][room_id]["timeline"]
    assert [e["event_id"] for e in timeline["events"]] == sent
    assert timeline["limited"] is False


def test_leave_section_keeps_every_event_within_the_limit(node: NodeProcess) -> None:
    alice, bob = node.register(), node.register()
    room_id = create_room(alice, preset="public_chat")
    join(bob, room_id)
    token = sync(bob)["next_batch"]
    sent = [send_text(alice, room_id, f"n{i}") for i in range(6)]
    bob.post(room_path(room_id, "leave"), {})
    timeline = sync(bob, token)["rooms"]["leave"][room_id]["timeline"]
    assert [e["event_id"] for e in timeline["events"]][:6] == sent
    assert timeline["limited"] is False


def test_invite_appears_with_stripped_state(node: NodeProcess) -> None:
    alice, bob = node.register(), node.register()
    token = sync(bob)["next_batch"]
    room_id = create_room(alice, name="Invite only", invite=[bob.user_id])
    body = sync(bob, token)
    invite = body["rooms"]["invite"][room_id]["invite_state"]["events"]
    assert {"m.room.name", "m.room.member"} <= {e["type"] for e in invite}


def test_leaving_shows_the_room_under_leave(node: NodeProcess) -> None:
    alice, bob = node.register(), node.register()
    room_id = create_room(alice, preset="public_chat")
    join(bob, room_id)
    token = sync(bob)["next_batch"]
    bob.post(room_path(room_id, "leave"), {})
    body = sync(bob, token)
    assert room_id in body["rooms"]["leave"]
    assert room_id not in body["rooms"]["join"]


def test_sync_rejects_malformed_since_token(node: NodeProcess) -> None:
    alice = node.register()
    body = alice.get("/_matrix/client/v3/sync", params={"since": "bogus"})
    assert alice.status == 400 and body["errcode"] == "M_INVALID_PARAM"


def test_typing_shows_in_ephemeral(node: NodeProcess) -> None:
    alice, bob = node.register(), node.register()
    room_id = create_room(alice, preset="public_chat")
    join(bob, room_id)
    token = sync(bob)["next_batch"]
    alice.put(room_path(room_id, f"typing/{alice.user_id}"), {"typing": True, "timeout": 5000})
    assert alice.status == 200
    ephemeral = sync(bob, token)["rooms"]["join"][room_id]["ephemeral"]["events"]
    typing = [e for e in ephemeral if e["type"] == "m.typing"]
    assert typing and typing[0]["content"]["user_ids"] == [alice.user_id]


def test_private_receipt_reaches_its_owners_incremental_sync(node: NodeProcess) -> None:
    alice, bob = node.register(), node.register()
    room_id = create_room(alice, preset="public_chat")
    join(bob, room_id)
    event_id = send_text(alice, room_id, "read me")
    token = sync(bob)["next_batch"]
    bob.post(room_path(room_id, f"receipt/m.read.private/{event_id}"), {})
    assert bob.status == 200
    ephemeral = sync(bob, token)["rooms"]["join"][room_id]["ephemeral"]["events"]
    receipts = [e for e in ephemeral if e["type"] == "m.receipt"]
    assert receipts and bob.user_id in receipts[0]["content"][event_id]["m.read.private"]


def test_newly_joined_room_hides_history_under_joined_visibility(node: NodeProcess) -> None:
    alice, bob = node.register(), node.register()
    room_id = create_room(alice, preset="public_chat")
    alice.put(room_path(room_id, "state/m.room.history_visibility"),
              {"history_visibility": "joined"})
    send_text(alice, room_id, "before bob")
    token = sync(bob)["next_batch"]
    join(bob, room_id)
    timeline = sync(bob, token)["rooms"]["join"][room_id]["timeline"]["events"]
    assert "before bob" not in [e["content"].get("body") for e in timeline]
    assert any(e["type"] == "m.room.member" and e["state_key"] == bob.user_id for e in timeline)
