"""One message into a big room, in process on a fake clock: the sender is answered when the
event is durable, the members' long-polls are woken a slice per reactor turn from the turn
after the sender's answer is written, and other requests are served between the slices (``tests/inprocess_node.py``: no real time passes;
"pending" is a request not yet finished)."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import pytest
from twisted.web.test.requesthelper import DummyRequest

from tests.inprocess_node import InProcessNode

V3 = "/_matrix/client/v3"
MEMBERS = 120
BATCH = 25


class BigRoom:
    def __init__(self, local: InProcessNode) -> None:
        self.local = local
        node = local.node
        node.notifier.wake_batch = BATCH
        node.notifier.wake_budget_s = 3600.0  # slices by count here (see the budget test)
        self.room_id, self.owner_token, self.member_tokens = local.room_with_members(
            MEMBERS, "Big room")
        self.since = body(self.get_sync(self.owner_token, None))["next_batch"]

    def get_sync(self, token: str, since: str | None, timeout_ms: int = 0) -> DummyRequest:
        args = {"timeout": str(timeout_ms)}
        if since is not None:
            args["since"] = since
        return self.local.http("GET", f"{V3}/sync", token, args=args)

    def park_members(self) -> list[DummyRequest]:
        return [self.get_sync(token, self.since, 30_000) for token in self.member_tokens]

    def send(self, text: str) -> DummyRequest:
        path = f"{V3}/rooms/{quote(self.room_id)}/send/m.room.message/{text}"
        return self.local.http("PUT", path, self.owner_token, {"msgtype": "m.text",
                                                                "body": text})


def body(request: DummyRequest) -> Any:
    assert request.finished, "the request is still pending"
    return json.loads(b"".join(request.written))


def answered(requests: list[DummyRequest]) -> int:
    return sum(1 for r in requests if r.finished)


@pytest.fixture
def room(local: InProcessNode) -> BigRoom:
    return BigRoom(local)


def test_the_sender_is_answered_before_any_member_is_woken(room: BigRoom) -> None:
    waiting = room.park_members()
    send = room.send("hello")
    room.local.turn()  # the group commit writes the event
    assert send.finished and "event_id" in body(send)
    assert answered(waiting) == 0


def wake_turns(room: BigRoom) -> list[DummyRequest]:
    """Park the members, send, and turn the reactor until the first slice is next: the commit
    turn, then the turn whose I/O pass writes the sender's answer."""
    waiting = room.park_members()
    room.send("hello")
    room.local.turn()
    room.local.turn()
    return waiting


def test_no_member_is_woken_before_the_senders_answer_has_had_an_io_pass(
        room: BigRoom) -> None:
    waiting = room.park_members()
    send = room.send("hello")
    room.local.turn()
    assert send.finished
    room.local.turn()
    assert answered(waiting) == 0


def test_members_are_woken_one_slice_per_reactor_turn(room: BigRoom) -> None:
    waiting = wake_turns(room)
    seen = []
    while answered(waiting) < MEMBERS:
        room.local.turn()
        seen.append(answered(waiting))
    assert seen == [min(MEMBERS, BATCH * turn) for turn in range(1, len(seen) + 1)]


def test_every_member_gets_the_message_once(room: BigRoom) -> None:
    waiting = room.park_members()
    room.send("hello")
    for _ in range(MEMBERS // BATCH + 3):
        room.local.turn()
    for request in waiting:
        events = body(request)["rooms"]["join"][room.room_id]["timeline"]["events"]
        assert [e["content"]["body"] for e in events] == ["hello"]


def test_a_slice_stops_when_its_time_budget_is_spent(room: BigRoom) -> None:
    notifier = room.local.node.notifier
    ticks = iter(range(1_000_000))
    notifier._timer = lambda: next(ticks) / 1000.0  # each reading 1 ms later
    notifier.wake_budget_s = 0.003
    waiting = wake_turns(room)
    room.local.turn()
    assert answered(waiting) == 3
    room.local.turn()
    assert answered(waiting) == 6


def test_an_unrelated_request_is_answered_between_slices(room: BigRoom) -> None:
    waiting = wake_turns(room)
    room.local.turn()  # the first slice
    versions = room.local.http("GET", "/_matrix/client/versions")
    assert versions.finished and "versions" in body(versions)
    assert answered(waiting) == BATCH


def test_only_the_sending_device_sees_the_transaction_id(room: BigRoom) -> None:
    waiting = room.park_members()
    owner_waiting = room.get_sync(room.owner_token, room.since, 30_000)
    room.send("txn-1")
    for _ in range(MEMBERS // BATCH + 3):
        room.local.turn()

    def unsigned(request: DummyRequest) -> dict[str, Any]:
        events = body(request)["rooms"]["join"][room.room_id]["timeline"]["events"]
        return dict(events[0]["unsigned"])

    assert unsigned(owner_waiting)["transaction_id"] == "txn-1"
    assert all("transaction_id" not in unsigned(r) for r in waiting)
