"""Sync tokens held across a restart (kill -9 or a clean stop) still see every later change.

Each test takes a token, consumes stream positions or typing serials that leave no row behind,
restarts the node and checks that the next change reaches a client syncing from that token.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest

from storage.room_snapshots import RECENT_ON_LOAD
from tests.node_harness import Client, NodeProcess, node_on_engine
from tests.room_helpers import V3, create_room, join, send_text, sync
from tests.test_typing_api import _pair, _typing_users


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def restartable(request: Any, tmp_path_factory: Any) -> Iterator[NodeProcess]:
    """A node of this module's own (the tests restart it), on each engine."""
    with node_on_engine(request.param,
                        tmp_path_factory.mktemp(f"restart_{request.param}")) as node:
        yield node


@pytest.fixture(params=["kill", "stop"])
def restart(request: Any, restartable: NodeProcess) -> Any:
    """Restart the node after a crash (SIGKILL) or after a clean stop."""

    def again() -> None:
        restartable.kill() if request.param == "kill" else restartable.stop()
        restartable.start()

    return again


def _next_event_reaches(token: str, restart: Any, sender: Client, reader: Client,
                        room_id: str) -> None:
    """After a restart, the next message is the one thing a sync from ``token`` reports."""
    restart()
    sent = send_text(sender, room_id, "after restart")
    room = sync(reader, token)["rooms"]["join"].get(room_id, {})
    assert [e["event_id"] for e in room.get("timeline", {}).get("events", [])] == [sent]


def test_event_after_restart_reaches_a_token_past_a_no_op_tag_delete(
        restartable: NodeProcess, restart: Any) -> None:
    alice = restartable.register()
    room_id = create_room(alice)
    sync(alice)
    alice.delete(f"{V3}/user/{quote(alice.user_id)}/rooms/{quote(room_id)}/tags/never.set")
    assert alice.status == 200
    _next_event_reaches(sync(alice)["next_batch"], restart, alice, alice, room_id)


def test_event_after_restart_reaches_a_token_past_a_delivered_to_device_message(
        restartable: NodeProcess, restart: Any) -> None:
    alice, bob, room_id = _pair(restartable)
    first = sync(bob)["next_batch"]
    alice.put(f"{V3}/sendToDevice/org.example.ping/{uuid.uuid4().hex}",
              {"messages": {bob.user_id: {bob.device_id: {"n": 1}}}})
    assert alice.status == 200
    delivered = sync(bob, first)
    assert [e["content"] for e in delivered["to_device"]["events"]] == [{"n": 1}]
    acknowledged = sync(bob, delivered["next_batch"])  # the message is deleted now
    _next_event_reaches(acknowledged["next_batch"], restart, alice, bob, room_id)


def test_typing_after_restart_reaches_a_token_from_before(
        restartable: NodeProcess, restart: Any) -> None:
    alice, bob, room_id = _pair(restartable)
    typing_path = f"{V3}/rooms/{quote(room_id)}/typing/{quote(alice.user_id)}"
    alice.put(typing_path, {"typing": True, "timeout": 30000})
    alice.put(typing_path, {"typing": False})
    token = sync(bob)["next_batch"]
    restart()
    alice.put(typing_path, {"typing": True, "timeout": 30000})
    assert alice.status == 200
    assert _typing_users(sync(bob, token), room_id) == [alice.user_id]


def test_typing_that_ended_with_a_restart_is_reported_ended_to_a_token_from_before(
        restartable: NodeProcess, restart: Any) -> None:
    alice, bob, room_id = _pair(restartable)
    alice.put(f"{V3}/rooms/{quote(room_id)}/typing/{quote(alice.user_id)}",
              {"typing": True, "timeout": 30000})
    seen = sync(bob)
    assert _typing_users(seen, room_id) == [alice.user_id]
    restart()  # the node forgets who was typing
    assert _typing_users(sync(bob, seen["next_batch"]), room_id) == []


def test_messages_sent_before_a_restart_reach_a_token_from_before_them_once_in_order(
        restartable: NodeProcess, restart: Any) -> None:
    alice, bob, room_id = _pair(restartable)
    token = sync(bob)["next_batch"]
    sent = [send_text(alice, room_id, f"before restart {i}") for i in range(3)]
    restart()
    first = sync(bob, token)
    timeline = first["rooms"]["join"][room_id]["timeline"]
    assert [e["event_id"] for e in timeline["events"]] == sent
    assert timeline["limited"] is False
    assert room_id not in sync(bob, first["next_batch"])["rooms"]["join"]


def test_a_token_past_every_message_sees_none_again_after_a_restart(
        restartable: NodeProcess, restart: Any) -> None:
    alice, bob, room_id = _pair(restartable)
    send_text(alice, room_id, "seen before the restart")
    token = sync(bob)["next_batch"]
    restart()
    room = sync(bob, token)["rooms"]["join"].get(room_id, {})
    assert room.get("timeline", {}).get("events", []) == []


def test_account_data_set_before_a_restart_reaches_a_token_from_before(
        restartable: NodeProcess, restart: Any) -> None:
    alice = restartable.register()
    token = sync(alice)["next_batch"]
    alice.put(f"{V3}/user/{quote(alice.user_id)}/account_data/org.example.setting", {"v": 1})
    assert alice.status == 200
    restart()
    events = sync(alice, token)["account_data"]["events"]
    assert [e["content"] for e in events if e["type"] == "org.example.setting"] == [{"v": 1}]


def _comparable(value: Any) -> Any:
    """``value`` with every event's ``unsigned.age`` left out (it grows with time) and each
    room's state as a set (its order carries no meaning)."""
    if isinstance(value, dict):
        found = {k: _comparable(v) for k, v in value.items() if k != "age"}
        state = found.get("state")
        if isinstance(state, dict) and isinstance(state.get("events"), list):
            state["events"] = sorted(state["events"], key=lambda e: e["event_id"])
        return found
    if isinstance(value, list):
        return [_comparable(item) for item in value]
    return value


@pytest.mark.parametrize("flt", [None, json.dumps({"room": {"state": {"lazy_load_members": True},
                                                           "timeline": {"limit": 5}}})],
                         ids=["default", "lazy-members"])
def test_an_initial_sync_after_a_restart_is_the_same_as_before_it(
        restartable: NodeProcess, restart: Any, flt: str | None) -> None:
    alice, bob = restartable.register(), restartable.register()
    busy = create_room(alice, name="busy", preset="public_chat")
    join(bob, busy)
    for i in range(RECENT_ON_LOAD + 5):
        send_text(bob if i % 3 else alice, busy, f"message {i}")
    quiet = create_room(alice)
    members_only = create_room(alice, initial_state=[{
        "type": "m.room.history_visibility", "state_key": "",
        "content": {"history_visibility": "joined"}}])
    send_text(alice, members_only, "for members")
    alice.put(f"{V3}/user/{quote(alice.user_id)}/rooms/{quote(quiet)}/tags/work", {})
    alice.post(f"{V3}/rooms/{quote(busy)}/receipt/m.read/"
               f"{quote(send_text(bob, busy, 'read me'))}", {})
    params = {"filter": flt} if flt else {}
    warm = sync(alice, **params)
    assert set(warm["rooms"]["join"]) == {busy, quiet, members_only}
    restart()
    cold = sync(alice, **params)
    assert _comparable(cold["rooms"]) == _comparable(warm["rooms"])
    assert cold["account_data"] == warm["account_data"]
