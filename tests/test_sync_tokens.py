"""Sync and pagination tokens: what a token may hold, what a bad one answers (400
M_INVALID_PARAM, never 5xx), and what a token from the future means (the node's current
position: the sync waits like any other and reports every later change)."""

from __future__ import annotations

import time

import pytest

from broker.sync.tokens import InvalidToken, SyncToken
from protocol.canonical import MAX_SAFE_INT
from tests.node_harness import NodeProcess
from tests.room_helpers import V3, create_room, room_path, send_text, sync
from tests.test_typing_api import _pair, _typing_users

HUGE = f"s{10**20}_0"
HUGE_TYPING = f"s1_{10**20}"
FUTURE = 10**12


@pytest.mark.parametrize("raw", [
    f"s{MAX_SAFE_INT + 1}_0", f"s-{MAX_SAFE_INT + 1}_0", f"s0_{MAX_SAFE_INT + 1}", "s" + "9" * 5000,
])
def test_a_number_outside_canonical_json_range_is_an_invalid_token(raw: str) -> None:
    with pytest.raises(InvalidToken):
        SyncToken.parse(raw)


def test_the_largest_canonical_json_integers_are_valid_positions() -> None:
    assert SyncToken.parse(f"s-{MAX_SAFE_INT}_{MAX_SAFE_INT}") == SyncToken(-MAX_SAFE_INT,
                                                                          MAX_SAFE_INT)


@pytest.mark.parametrize("raw", ["s1_0_0", "s1_00_0", "s 1", "s+1", "s1_ 2", "s\u0661", "S1",
                                 "s1_", "s_1", "s1\n"])
def test_only_ascii_digits_in_the_token_shape_are_accepted(raw: str) -> None:
    with pytest.raises(InvalidToken):
        SyncToken.parse(raw)


def test_a_token_within_the_current_position_is_kept_as_it_is() -> None:
    assert SyncToken(5, 2).bounded_by(SyncToken(9, 3)) == SyncToken(5, 2)


def test_each_number_from_the_future_is_brought_down_to_the_current_one() -> None:
    assert SyncToken(50, 2).bounded_by(SyncToken(9, 3)) == SyncToken(9, 2)
    assert SyncToken(5, 20).bounded_by(SyncToken(9, 3)) == SyncToken(5, 3)


@pytest.mark.parametrize("token", [HUGE, HUGE_TYPING, f"s-{10**20}_0", "s1_x", "garbage"])
def test_sync_since_an_invalid_token_is_invalid_param(any_node: NodeProcess, token: str) -> None:
    alice = any_node.register()
    body = alice.get(f"{V3}/sync", params={"since": token})
    assert alice.status == 400 and body["errcode"] == "M_INVALID_PARAM"


@pytest.mark.parametrize("direction", ["b", "f"])
def test_messages_from_a_huge_token_is_invalid_param(any_node: NodeProcess,
                                                    direction: str) -> None:
    alice = any_node.register()
    room_id = create_room(alice)
    body = alice.get(room_path(room_id, "messages"), params={"dir": direction, "from": HUGE})
    assert alice.status == 400 and body["errcode"] == "M_INVALID_PARAM"


def test_key_changes_with_a_huge_typing_serial_is_invalid_param(any_node: NodeProcess) -> None:
    alice = any_node.register()
    body = alice.get(f"{V3}/keys/changes", params={"from": HUGE_TYPING, "to": "s2_0"})
    assert alice.status == 400 and body["errcode"] == "M_INVALID_PARAM"


def _stream(token: str) -> int:
    return SyncToken.parse(token).stream


def _future(token: str, *, stream: int = 0, typing: int = 0) -> str:
    now = SyncToken.parse(token)
    return str(SyncToken(now.stream + stream, now.typing + typing))


def test_sync_since_a_token_from_the_future_answers_the_current_position(
        any_node: NodeProcess) -> None:
    alice = any_node.register()
    create_room(alice)
    before = sync(alice)["next_batch"]
    body = sync(alice, _future(before, stream=FUTURE))
    after = sync(alice)["next_batch"]
    assert _stream(before) <= _stream(body["next_batch"]) <= _stream(after)
    assert body["rooms"]["join"] == {}


def test_a_long_poll_from_a_future_token_waits_out_its_timeout(any_node: NodeProcess) -> None:
    alice = any_node.register()
    create_room(alice)
    before = sync(alice)["next_batch"]
    started = time.monotonic()
    body = sync(alice, _future(before, stream=FUTURE), timeout=400)
    assert time.monotonic() - started >= 0.4
    assert _stream(body["next_batch"]) < _stream(before) + FUTURE


def test_following_next_batch_from_a_future_token_reports_the_next_message(
        any_node: NodeProcess) -> None:
    alice = any_node.register()
    room_id = create_room(alice)
    resumed = sync(alice, _future(sync(alice)["next_batch"], stream=FUTURE))["next_batch"]
    sent = send_text(alice, room_id, "after the future token")
    timeline = sync(alice, resumed)["rooms"]["join"][room_id]["timeline"]
    assert [e["event_id"] for e in timeline["events"]] == [sent]


def test_following_next_batch_from_a_future_typing_serial_reports_the_next_typing(
        any_node: NodeProcess) -> None:
    alice, bob, room_id = _pair(any_node)
    resumed = sync(bob, _future(sync(bob)["next_batch"], typing=FUTURE))["next_batch"]
    alice.put(room_path(room_id, f"typing/{alice.user_id}"), {"typing": True, "timeout": 30000})
    assert alice.status == 200
    assert _typing_users(sync(bob, resumed), room_id) == [alice.user_id]


def test_to_device_messages_not_yet_delivered_survive_a_future_token(
        any_node: NodeProcess) -> None:
    alice, bob, _room_id = _pair(any_node)
    current = sync(bob)["next_batch"]
    alice.put(f"{V3}/sendToDevice/org.example.ping/future-token",
              {"messages": {bob.user_id: {bob.device_id: {"n": 1}}}})
    assert alice.status == 200
    body = sync(bob, _future(current, stream=FUTURE))
    assert [e["content"] for e in body["to_device"]["events"]] == [{"n": 1}]
