"""Two and three nodes of ours sharing rooms over the Server-Server API (real processes, TLS on
loopback, each node allowing the others)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from tests.node_harness import Client, NodeProcess, federated_nodes
from tests.room_helpers import V3, create_room, room_path, send_text, sync


@pytest.fixture(scope="module")
def pair(tmp_path_factory: Any) -> Iterator[tuple[NodeProcess, NodeProcess]]:
    with federated_nodes(tmp_path_factory, 2, "fed") as (a, b):
        yield a, b


def wait_for(client: Client, room_id: str, predicate: Any, timeout: float = 15.0) -> list[dict]:
    """Sync until an event of ``room_id`` matches; returns the room's timeline events seen."""
    deadline = time.monotonic() + timeout
    token = None
    seen: list[dict] = []
    while time.monotonic() < deadline:
        body = sync(client, token, timeout=1000)
        token = body["next_batch"]
        room = body["rooms"]["join"].get(room_id)
        if room:
            seen.extend(room["timeline"]["events"])
            if any(predicate(e) for e in seen):
                return seen
    raise AssertionError(f"nothing matching arrived in {room_id}: {seen}")


def test_user_joins_a_room_on_another_node(pair: tuple[NodeProcess, NodeProcess]) -> None:
    a, b = pair
    alice, bob = a.register(), b.register()
    room_id = create_room(alice, preset="public_chat", name="Inter-ministry")
    body = bob.post(f"{V3}/join/{quote(room_id)}", {}, params={"server_name": a.server_name})
    assert bob.status == 200, body
    assert bob.get(room_path(room_id, "state/m.room.name")) == {"name": "Inter-ministry"}
    wait_for(alice, room_id, lambda e: e["type"] == "m.room.member"
             and e["state_key"] == bob.user_id and e["content"]["membership"] == "join")


def test_messages_flow_both_ways(pair: tuple[NodeProcess, NodeProcess]) -> None:
    a, b = pair
    alice, bob = a.register(), b.register()
    room_id = create_room(alice, preset="public_chat")
    bob.post(f"{V3}/join/{quote(room_id)}", {}, params={"server_name": a.server_name})
    assert bob.status == 200
    send_text(alice, room_id, "from a")
    wait_for(bob, room_id, lambda e: e["content"].get("body") == "from a")
    send_text(bob, room_id, "from b")
    wait_for(alice, room_id, lambda e: e["content"].get("body") == "from b")


def test_join_by_remote_alias(pair: tuple[NodeProcess, NodeProcess]) -> None:
    a, b = pair
    alice, bob = a.register(), b.register()
    alias_name = "fed" + alice.user_id[2:8]
    room_id = create_room(alice, preset="public_chat", room_alias_name=alias_name)
    alias = f"#{alias_name}:{a.server_name}"
    body = bob.post(f"{V3}/join/{quote(alias)}", {})
    assert bob.status == 200 and body["room_id"] == room_id


def test_private_room_refuses_remote_join(pair: tuple[NodeProcess, NodeProcess]) -> None:
    a, b = pair
    alice, bob = a.register(), b.register()
    room_id = create_room(alice, preset="private_chat")
    body = bob.post(f"{V3}/join/{quote(room_id)}", {}, params={"server_name": a.server_name})
    assert bob.status == 403, body


def test_invite_to_a_user_on_another_node_then_join(pair: tuple[NodeProcess, NodeProcess]
                                                     ) -> None:
    a, b = pair
    alice, bob = a.register(), b.register()
    room_id = create_room(alice, preset="private_chat", name="Cabinet note")
    token = sync(bob)["next_batch"]
    body = alice.post(room_path(room_id, "invite"), {"user_id": bob.user_id})
    assert alice.status == 200, body
    invite = sync(bob, token)["rooms"]["invite"][room_id]["invite_state"]["events"]
    assert {"type": "m.room.name", "state_key": "", "content": {"name": "Cabinet note"},
            "sender": alice.user_id} in invite
    body = bob.post(f"{V3}/join/{quote(room_id)}", {})
    assert bob.status == 200, body
    send_text(alice, room_id, "welcome")
    wait_for(bob, room_id, lambda e: e["content"].get("body") == "welcome")


def test_declining_a_remote_invite_tells_the_inviting_node(
        pair: tuple[NodeProcess, NodeProcess]) -> None:
    a, b = pair
    alice, bob = a.register(), b.register()
    room_id = create_room(alice, preset="private_chat")
    alice.post(room_path(room_id, "invite"), {"user_id": bob.user_id})
    assert alice.status == 200
    bob.post(room_path(room_id, "leave"), {})
    assert bob.status == 200
    member = alice.get(room_path(room_id, f"state/m.room.member/{quote(bob.user_id)}"))
    assert member["membership"] == "leave"
    assert room_id not in sync(bob)["rooms"]["invite"]


def test_inviting_an_unknown_remote_user_fails(pair: tuple[NodeProcess, NodeProcess]) -> None:
    a, b = pair
    alice = a.register()
    room_id = create_room(alice, preset="private_chat")
    body = alice.post(room_path(room_id, "invite"), {"user_id": f"@nobody:{b.server_name}"})
    assert alice.status == 404, body


def _knock_room(alice: Client) -> str:
    return create_room(alice, name="Knock here", initial_state=[
        {"type": "m.room.join_rules", "content": {"join_rule": "knock"}}])


def _knock(bob: Client, room_id: str, via: NodeProcess) -> None:
    body = bob.post(f"{V3}/knock/{quote(room_id)}", {"reason": "from b"},
                    params={"via": via.server_name})
    assert bob.status == 200 and body == {"room_id": room_id}, body


def _knocked(pair: tuple[NodeProcess, NodeProcess]) -> tuple[Client, Client, str]:
    """A user of the first node, a user of the second who knocked on a room of the first's."""
    a, b = pair
    alice, bob = a.register(), b.register()
    room_id = _knock_room(alice)
    _knock(bob, room_id, a)
    return alice, bob, room_id


def test_a_knock_on_a_room_of_another_node_reaches_its_members(
        pair: tuple[NodeProcess, NodeProcess]) -> None:
    alice, bob, room_id = _knocked(pair)
    member = alice.get(room_path(room_id, f"state/m.room.member/{quote(bob.user_id)}"))
    assert (member["membership"], member["reason"]) == ("knock", "from b")


def test_the_knocker_on_another_nodes_room_sees_the_knock_with_the_rooms_state(
        pair: tuple[NodeProcess, NodeProcess]) -> None:
    a, b = pair
    alice, bob = a.register(), b.register()
    room_id = _knock_room(alice)
    token = sync(bob)["next_batch"]
    _knock(bob, room_id, a)
    events = sync(bob, token)["rooms"]["knock"][room_id]["knock_state"]["events"]
    assert {"type": "m.room.name", "state_key": "", "content": {"name": "Knock here"},
            "sender": alice.user_id} in events
    assert [e["content"]["membership"] for e in events
            if e["type"] == "m.room.member" and e["state_key"] == bob.user_id] == ["knock"]


def test_a_knocker_on_another_node_let_in_by_an_invite_joins(
        pair: tuple[NodeProcess, NodeProcess]) -> None:
    alice, bob, room_id = _knocked(pair)
    token = sync(bob)["next_batch"]
    alice.post(room_path(room_id, "invite"), {"user_id": bob.user_id})
    assert alice.status == 200
    rooms = sync(bob, token)["rooms"]
    assert room_id in rooms["invite"] and room_id not in rooms["knock"]
    bob.post(f"{V3}/join/{quote(room_id)}", {})
    assert bob.status == 200
    send_text(alice, room_id, "welcome in")
    wait_for(bob, room_id, lambda e: e["content"].get("body") == "welcome in")


def test_leaving_withdraws_a_knock_on_another_nodes_room(
        pair: tuple[NodeProcess, NodeProcess]) -> None:
    alice, bob, room_id = _knocked(pair)
    bob.post(room_path(room_id, "leave"), {})
    assert bob.status == 200
    member = alice.get(room_path(room_id, f"state/m.room.member/{quote(bob.user_id)}"))
    assert member["membership"] == "leave"
    assert room_id not in sync(bob)["rooms"]["knock"]


def test_a_knock_the_other_node_refuses_is_no_longer_shown_to_the_knocker(
        pair: tuple[NodeProcess, NodeProcess]) -> None:
    alice, bob, room_id = _knocked(pair)
    token = sync(bob)["next_batch"]
    alice.post(room_path(room_id, "kick"), {"user_id": bob.user_id, "reason": "not now"})
    assert alice.status == 200
    deadline = time.monotonic() + 15
    while room_id in sync(bob)["rooms"]["knock"]:
        assert time.monotonic() < deadline, "the refusal did not reach the knocker's node"
        token = sync(bob, token, timeout=1000)["next_batch"]  # until the next change for bob


def test_a_knock_on_another_nodes_invite_only_room_is_refused(
        pair: tuple[NodeProcess, NodeProcess]) -> None:
    a, b = pair
    alice, bob = a.register(), b.register()
    room_id = create_room(alice, preset="private_chat")
    bob.post(f"{V3}/knock/{quote(room_id)}", {}, params={"via": a.server_name})
    assert bob.status == 403
    assert room_id not in sync(bob)["rooms"]["knock"]


@pytest.fixture(scope="module")
def trio(tmp_path_factory: Any) -> Iterator[tuple[NodeProcess, NodeProcess, NodeProcess]]:
    with federated_nodes(tmp_path_factory, 3, "trio") as (a, b, c):
        yield a, b, c


def test_three_nodes_share_one_room(trio: tuple[NodeProcess, NodeProcess, NodeProcess]
                                    ) -> None:
    a, b, c = trio
    alice, bob, carol = a.register(), b.register(), c.register()
    room_id = create_room(alice, preset="public_chat", name="Three ministries")
    bob.post(f"{V3}/join/{quote(room_id)}", {}, params={"server_name": a.server_name})
    assert bob.status == 200
    # Carol joins through Bob's node: any resident server can help.
    body = carol.post(f"{V3}/join/{quote(room_id)}", {}, params={"server_name": b.server_name})
    assert carol.status == 200, body
    send_text(carol, room_id, "hello from c")
    wait_for(alice, room_id, lambda e: e["content"].get("body") == "hello from c")
    wait_for(bob, room_id, lambda e: e["content"].get("body") == "hello from c")
    send_text(alice, room_id, "hello from a")
    wait_for(carol, room_id, lambda e: e["content"].get("body") == "hello from a")
    members = set(alice.get(room_path(room_id, "joined_members"))["joined"])
    assert members == {alice.user_id, bob.user_id, carol.user_id}
    assert set(carol.get(room_path(room_id, "joined_members"))["joined"]) == members


def test_a_ban_on_one_node_applies_on_all(trio: tuple[NodeProcess, NodeProcess, NodeProcess]
                                          ) -> None:
    a, b, c = trio
    alice, bob, carol = a.register(), b.register(), c.register()
    room_id = create_room(alice, preset="public_chat")
    for client, via in ((bob, a), (carol, a)):
        client.post(f"{V3}/join/{quote(room_id)}", {}, params={"server_name": via.server_name})
        assert client.status == 200
    assert bob.user_id in carol.get(room_path(room_id, "joined_members"))["joined"]
    alice.post(room_path(room_id, "ban"), {"user_id": bob.user_id, "reason": "test"})
    assert alice.status == 200
    wait_for(carol, room_id, lambda e: e["type"] == "m.room.member"
             and e["state_key"] == bob.user_id and e["content"]["membership"] == "ban")
    body = bob.put(room_path(room_id, "send/m.room.message/after-ban"),
                   {"msgtype": "m.text", "body": "still here?"})
    assert bob.status == 403, body


def test_history_before_joining_is_backfilled(pair: tuple[NodeProcess, NodeProcess]) -> None:
    a, b = pair
    alice, bob = a.register(), b.register()
    room_id = create_room(alice, preset="public_chat")
    for i in range(5):
        send_text(alice, room_id, f"early {i}")
    bob.post(f"{V3}/join/{quote(room_id)}", {}, params={"server_name": a.server_name})
    assert bob.status == 200
    body = bob.get(room_path(room_id, "messages"), params={"dir": "b", "limit": 20})
    texts = [e["content"].get("body") for e in body["chunk"] if e["type"] == "m.room.message"]
    assert texts == [f"early {i}" for i in reversed(range(5))]
    assert body["chunk"][-1]["type"] == "m.room.create"


def test_public_rooms_of_another_node(pair: tuple[NodeProcess, NodeProcess]) -> None:
    a, b = pair
    alice, bob = a.register(), b.register()
    room_id = create_room(alice, preset="public_chat", visibility="public", name="Open notice")
    body = bob.get(f"{V3}/publicRooms", params={"server": a.server_name})
    assert bob.status == 200, body
    assert room_id in [r["room_id"] for r in body["chunk"]]
    body = bob.post(f"{V3}/publicRooms", {"filter": {"generic_search_term": "open notice"}},
                    params={"server": a.server_name})
    assert [r["room_id"] for r in body["chunk"]] == [room_id]


def test_messages_queued_while_a_node_is_down_arrive_when_it_returns(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a = NodeProcess(tmp_path / "a", federation=True)
    b = NodeProcess(tmp_path / "b", federation=True)
    a.allow(b)
    b.allow(a)
    a.start()
    b.start()
    try:
        alice, bob = a.register(), b.register()
        room_id = create_room(alice, preset="public_chat")
        bob.post(f"{V3}/join/{quote(room_id)}", {}, params={"server_name": a.server_name})
        assert bob.status == 200
        b.stop()
        sent = [send_text(alice, room_id, f"while down {i}") for i in range(3)]
        b.start()
        # B speaking again tells A that B is back: A retries its queue at once.
        send_text(bob, room_id, "back")
        seen = wait_for(bob, room_id, lambda e: e["event_id"] == sent[-1], timeout=30)
        assert {e["event_id"] for e in seen} >= set(sent)
    finally:
        a.stop()
        b.stop()


def test_a_node_far_behind_catches_up_from_the_state_at_the_gap(tmp_path_factory: Any) -> None:
    import sqlite3

    with federated_nodes(tmp_path_factory, 2, "gap") as (a, b):
        alice, bob = a.register(), b.register()
        room_id = create_room(alice, preset="public_chat")
        bob.post(f"{V3}/join/{quote(room_id)}", {}, params={"server_name": a.server_name})
        assert bob.status == 200
        b.stop()
        for i in range(30):
            send_text(alice, room_id, f"missed {i}")
        # A would replay these when B returns; drop them so B faces a gap of 30 events,
        # more than it may fetch with get_missing_events.
        with sqlite3.connect(a.workdir / "data" / "broker.db") as db:
            db.execute("DELETE FROM federation_outbound_pdus")
        b.start()
        send_text(bob, room_id, "back")  # tells A that B is reachable again
        alice.put(room_path(room_id, "state/m.room.topic"), {"topic": "after the gap"})
        last = send_text(alice, room_id, "after the gap")
        wait_for(bob, room_id, lambda e: e["event_id"] == last, timeout=30)
        assert bob.get(room_path(room_id, "state/m.room.topic")) == {"topic": "after the gap"}
        # The newest missed events were fetched into the timeline too (no hole before them).
        history = bob.get(room_path(room_id, "messages"), params={"dir": "b", "limit": 40})
        texts = [e["content"].get("body") for e in history["chunk"]]
        assert "missed 29" in texts and "missed 20" in texts
