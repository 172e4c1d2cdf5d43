"""The delivery status of application messages (broker/apps/tracking.py), on a node on a fake
clock, both engines: queued when accepted, delivered when a device of the recipient has synced
past the event, failed with a reason, expired when an OTP's time passes; kept across a restart,
answered from memory, and only ever moving forward."""

from __future__ import annotations

from itertools import count
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from broker.apps.tracking import (
    DELIVERED,
    EXPIRED,
    FAILED,
    QUEUED,
    READ,
    MessageTracker,
    move,
)
from broker.errors import NotFound
from storage.app_messages import MessageRow
from tests.inprocess_node import InProcessNode
from tests.node_engines import Engine, engines, run_for
from tests.storage_helpers import result_of

V3 = "/_matrix/client/v3"
TXN = count()
engine = engines()


class AppRoom:
    """A room where ``sender`` (standing for an application's sender) writes to ``bob``."""

    def __init__(self, local: InProcessNode) -> None:
        self.local = local
        _, self.sender = local.register("app.sender")
        self.bob, self.bob_token = local.register("bob")
        status, answer = local.call("POST", f"{V3}/createRoom", self.sender,
                                    {"invite": [self.bob.user_id]})
        assert status == 200, answer
        self.room_id = str(answer["room_id"])
        assert local.call("POST", f"{V3}/join/{quote(self.room_id)}", self.bob_token,
                          {})[0] == 200
        self.since = self.sync()  # bob's device holds a token from before any message

    def send(self, body: str = "Your OTP is 123456") -> str:
        status, answer = self.local.call(
            "PUT", f"{V3}/rooms/{quote(self.room_id)}/send/m.room.message/t{next(TXN)}",
            self.sender, {"msgtype": "m.text", "body": body})
        assert status == 200, answer
        return str(answer["event_id"])

    def sync(self, since: str | None = None) -> str:
        query = "timeout=0" + (f"&since={quote(since)}" if since else "")
        status, body = self.local.call("GET", f"{V3}/sync?{query}", self.bob_token)
        assert status == 200, body
        return str(body["next_batch"])

    @property
    def tracker(self) -> MessageTracker:
        return self.local.node.delivery.tracker

    def message(self, message_id: str, expires_ts: int | None = None) -> str:
        """A message queued and sent as an event of the room; its event ID."""
        self.local.run(self.tracker.queue(message_id, "app1", self.bob.user_id, expires_ts))
        event_id = self.send()
        self.local.run(self.tracker.sent(message_id, self.room_id, event_id))
        return event_id

    def status(self, message_id: str) -> dict[str, Any] | None:
        found = self.local.run(self.tracker.status(message_id))
        return dict(found) if found is not None else None


def stored_status(local: InProcessNode, message_id: str) -> tuple[Any, ...] | None:
    return result_of(local.node.db.run_interaction(  # type: ignore[no-any-return]
        "test_stored_status", lambda cur: cur.select_one(
            "SELECT status, delivered_ts, read_ts, reason FROM app_messages"
            " WHERE message_id = ?", (message_id,))))


def test_a_queued_message_is_stored_as_queued(engine: Engine) -> None:
    local = engine.node()
    room = AppRoom(local)
    local.run(room.tracker.queue("m1", "app1", room.bob.user_id, None))
    assert room.status("m1") == {"message_id": "m1", "status": QUEUED,
                                 "recipient": room.bob.user_id, "delivered_ts": None,
                                 "read_ts": None}
    assert stored_status(local, "m1") == (QUEUED, None, None, None)


def test_an_unknown_message_has_no_status(engine: Engine) -> None:
    room = AppRoom(engine.node())
    assert room.status("nope") is None
    with pytest.raises(NotFound):
        room.local.run(room.tracker.sent("nope", room.room_id, "$e"))


def test_a_sent_message_stays_queued_until_the_recipient_syncs_past_it(
        engine: Engine) -> None:
    local = engine.node()
    room = AppRoom(local)
    room.message("m1")
    assert room.status("m1")["status"] == QUEUED  # type: ignore[index]
    room.sync(room.since)  # the answer holding the message: not yet received
    assert room.status("m1")["status"] == QUEUED  # type: ignore[index]


def test_a_sync_with_a_token_past_the_message_makes_it_delivered(engine: Engine) -> None:
    local = engine.node()
    room = AppRoom(local)
    room.message("m1")
    local.advance(5)
    received = room.sync(room.since)
    room.sync(received)  # the device holds the token of the answer with the message
    delivered = room.status("m1")
    assert delivered is not None and delivered["status"] == DELIVERED
    assert delivered["delivered_ts"] == local.node.clock.time_ms()
    run_for(local, 0)
    assert stored_status(local, "m1") == (DELIVERED, delivered["delivered_ts"], None, None)


def test_a_message_sent_after_the_recipient_synced_past_it_is_delivered_at_once(
        engine: Engine) -> None:
    """The sync may come between the event's send and the tracker hearing of it."""
    local = engine.node()
    room = AppRoom(local)
    local.run(room.tracker.queue("m1", "app1", room.bob.user_id, None))
    event_id = room.send()
    room.sync(room.sync(room.since))
    local.run(room.tracker.sent("m1", room.room_id, event_id))
    assert room.status("m1")["status"] == DELIVERED  # type: ignore[index]


def test_a_failed_message_keeps_its_reason_and_no_later_status(engine: Engine) -> None:
    local = engine.node()
    room = AppRoom(local)
    local.run(room.tracker.queue("m1", "app1", room.bob.user_id, None))
    local.run(room.tracker.fail("m1", "recipient_unreachable"))
    assert room.status("m1") == {"message_id": "m1", "status": FAILED,
                                 "recipient": room.bob.user_id, "delivered_ts": None,
                                 "read_ts": None, "reason": "recipient_unreachable"}
    assert stored_status(local, "m1") == (FAILED, None, None, "recipient_unreachable")


def test_a_delivered_message_cannot_fail(engine: Engine) -> None:
    local = engine.node()
    room = AppRoom(local)
    room.message("m1")
    room.sync(room.sync(room.since))
    local.run(room.tracker.fail("m1", "too_late"))
    assert room.status("m1")["status"] == DELIVERED  # type: ignore[index]


def test_an_otp_expires_when_its_time_passes_whatever_came_before(engine: Engine) -> None:
    local = engine.node()
    room = AppRoom(local)
    expires_ts = local.node.clock.time_ms() + 30_000
    room.message("m1", expires_ts)
    room.sync(room.sync(room.since))
    local.node.delivery.expiry.start(local.reactor, 1.0)
    run_for(local, 29)
    assert room.status("m1")["status"] == DELIVERED  # type: ignore[index]
    run_for(local, 1)
    assert room.status("m1") == {"message_id": "m1", "status": EXPIRED,
                                 "recipient": room.bob.user_id,
                                 "delivered_ts": room.status("m1")["delivered_ts"],  # type: ignore[index]
                                 "read_ts": None, "expires_ts": expires_ts}
    assert stored_status(local, "m1")[0] == EXPIRED  # type: ignore[index]


def test_after_a_restart_a_message_is_still_delivered_by_the_next_sync(
        engine: Engine) -> None:
    local = engine.node()
    room = AppRoom(local)
    room.message("m1")
    received = room.sync(room.since)
    again = engine.restart(local)
    again.run(again.node.delivery.tracker.load())
    room.local = again
    room.bob_token = again.run(again.node.auth.create_session(
        room.bob.user_id, None, None, None))[0]
    room.sync(received)
    assert room.status("m1")["status"] == DELIVERED  # type: ignore[index]


def test_the_status_of_a_recent_message_is_answered_without_the_database(
        engine: Engine) -> None:
    local = engine.node()
    room = AppRoom(local)
    room.message("m1")
    run_for(local, 0)
    asked: list[str] = []
    local.node.db.observe = lambda desc, elapsed, ok: asked.append(desc)
    assert room.status("m1")["status"] == QUEUED  # type: ignore[index]
    assert asked == []


# -- the status only moves forward -----------------------------------------------------------------
RANK = {QUEUED: 0, DELIVERED: 1, READ: 2}


@given(st.lists(st.tuples(st.sampled_from([DELIVERED, READ, EXPIRED, FAILED]),
                          st.integers(min_value=0, max_value=10**6)), max_size=12))
def test_whatever_the_order_of_changes_the_status_only_moves_forward(
        changes: list[tuple[str, int]]) -> None:
    row = MessageRow("m", "app", "@bob:x", QUEUED, 0)
    for status, ts in changes:
        before = row.status
        moved = move(row, status, ts)
        if before in (EXPIRED, FAILED):
            assert not moved and row.status == before
        elif row.status in RANK:
            assert RANK[row.status] >= RANK[before]
        if row.delivered_ts is not None and row.read_ts is not None:
            assert row.delivered_ts <= row.read_ts
        if row.status == READ:
            assert row.delivered_ts is not None and row.read_ts is not None
        if row.status == FAILED:
            assert before in (QUEUED, FAILED)


# -- read ----------------------------------------------------------------------------------------
def receipt(room: AppRoom, event_id: str, receipt_type: str = "m.read") -> None:
    status, answer = room.local.call(
        "POST", f"{V3}/rooms/{quote(room.room_id)}/receipt/{receipt_type}/{quote(event_id)}",
        room.bob_token, {})
    assert status == 200, answer


@pytest.mark.parametrize("receipt_type", ["m.read", "m.read.private"])
def test_a_read_receipt_at_the_message_makes_it_read_and_delivered(
        engine: Engine, receipt_type: str) -> None:
    local = engine.node()
    room = AppRoom(local)
    event_id = room.message("m1")
    local.advance(3)
    receipt(room, event_id, receipt_type)
    read = room.status("m1")
    assert read is not None and read["status"] == READ
    assert read["read_ts"] == read["delivered_ts"] == local.node.clock.time_ms()
    run_for(local, 0)
    assert stored_status(local, "m1") == (READ, read["delivered_ts"], read["read_ts"], None)


def test_a_receipt_at_a_later_event_reads_every_message_before_it(engine: Engine) -> None:
    local = engine.node()
    room = AppRoom(local)
    room.message("m1")
    room.sync(room.sync(room.since))
    delivered_ts = room.status("m1")["delivered_ts"]  # type: ignore[index]
    room.message("m2")
    later = room.send("a later message")
    local.advance(7)
    receipt(room, later)
    for message_id in ("m1", "m2"):
        read = room.status(message_id)
        assert read is not None and read["status"] == READ
        assert read["read_ts"] == local.node.clock.time_ms()
    assert room.status("m1")["delivered_ts"] == delivered_ts  # type: ignore[index]


def test_a_receipt_at_an_earlier_event_does_not_read_a_later_message(engine: Engine) -> None:
    local = engine.node()
    room = AppRoom(local)
    earlier = room.send("before the message")
    room.message("m1")
    receipt(room, earlier)
    assert room.status("m1")["status"] == QUEUED  # type: ignore[index]


def test_an_expired_message_stays_expired_when_read_later(engine: Engine) -> None:
    local = engine.node()
    room = AppRoom(local)
    event_id = room.message("m1", local.node.clock.time_ms() + 30_000)
    local.node.delivery.expiry.start(local.reactor, 1.0)
    run_for(local, 31)
    receipt(room, event_id)
    assert room.status("m1")["status"] == EXPIRED  # type: ignore[index]


# -- whatever the interleaving of syncs, receipts and expiry through the node -----------------------
@pytest.fixture(scope="module")
def shared(tmp_path_factory: Any) -> Any:
    """One node (SQLite) and an application sender for every example."""
    made = Engine("sqlite", tmp_path_factory.mktemp("interleaving"))
    local = made.node()
    yield local, local.register("app.sender")[1]
    made.close()


STEPS = st.lists(st.sampled_from(["send", "sync", "sync_old", "receipt_last", "receipt_first",
                                  "tick"]), min_size=1, max_size=14)


def fresh_room(local: InProcessNode, sender: str) -> AppRoom:
    """An AppRoom with a new recipient, on a node used before."""
    room = AppRoom.__new__(AppRoom)
    room.local, room.sender = local, sender
    room.bob, room.bob_token = local.register(f"bob{next(TXN)}")
    answer = local.call("POST", f"{V3}/createRoom", sender, {"invite": [room.bob.user_id]})[1]
    room.room_id = str(answer["room_id"])
    local.call("POST", f"{V3}/join/{quote(room.room_id)}", room.bob_token, {})
    room.since = room.sync()
    return room


def apply_step(room: AppRoom, step: str, events: list[str], tokens: list[str]) -> None:
    if step == "send":
        events.append(room.message(f"{room.bob.user_id}-{len(events)}"))
    elif step == "sync":
        tokens.append(room.sync(tokens[-1]))
    elif step == "sync_old":
        room.sync(tokens[0])
    elif step == "receipt_last" and events:
        receipt(room, events[-1])
    elif step == "receipt_first" and events:
        receipt(room, events[0])
    elif step == "tick":
        room.local.advance(1)


@settings(max_examples=30, deadline=None)
@given(STEPS)
def test_whatever_the_interleaving_statuses_only_move_forward(
        shared: tuple[InProcessNode, str], steps: list[str]) -> None:
    room = fresh_room(*shared)
    events: list[str] = []
    tokens = [room.since]
    seen: dict[str, tuple[int, Any, Any]] = {}
    for step in steps:
        apply_step(room, step, events, tokens)
        for index in range(len(events)):
            message_id = f"{room.bob.user_id}-{index}"
            now = room.status(message_id)
            assert now is not None
            rank, before = RANK[now["status"]], seen.get(message_id)
            if before is not None:
                assert rank >= before[0]
                assert before[1] is None or now["delivered_ts"] == before[1]
                assert before[2] is None or now["read_ts"] == before[2]
            if now["read_ts"] is not None:
                assert now["delivered_ts"] is not None
                assert now["delivered_ts"] <= now["read_ts"]
            seen[message_id] = (rank, now["delivered_ts"], now["read_ts"])


def test_queueing_a_known_message_again_keeps_its_status(engine: Engine) -> None:
    local = engine.node()
    room = AppRoom(local)
    room.message("m1")
    room.sync(room.sync(room.since))
    local.run(room.tracker.queue("m1", "app1", room.bob.user_id, None))
    assert room.status("m1")["status"] == DELIVERED  # type: ignore[index]


# -- how long messages are followed and kept -------------------------------------------------------
DAY_S = 24 * 3600


def test_a_message_unread_for_thirty_days_keeps_its_status_and_is_no_longer_followed(
        engine: Engine) -> None:
    local = engine.node()
    room = AppRoom(local)
    event_id = room.message("m1")
    room.sync(room.sync(room.since))
    local.advance(30 * DAY_S + 1)
    local.run(room.tracker.tidy())
    assert room.tracker.open_count() == 0
    receipt(room, event_id)
    assert room.status("m1")["status"] == DELIVERED  # type: ignore[index]
    assert room.tracker.open_count() == 0  # asking did not follow it again


def test_a_restart_follows_only_the_messages_of_the_last_thirty_days(engine: Engine) -> None:
    local = engine.node()
    room = AppRoom(local)
    room.message("old")
    local.advance(30 * DAY_S + 1)
    room.message("new")
    run_for(local, 0)
    again = engine.restart(local)
    again.node.clock.reactor.advance(local.node.clock.time() - again.node.clock.time())
    again.run(again.node.delivery.tracker.load())
    assert again.node.delivery.tracker.open_count() == 1


def test_the_record_of_a_message_goes_after_ninety_days(engine: Engine) -> None:
    local = engine.node()
    room = AppRoom(local)
    room.message("m1")
    local.advance(90 * DAY_S - 10)
    local.run(room.tracker.tidy())
    assert room.status("m1") is not None
    local.advance(11)
    local.run(room.tracker.tidy())
    assert room.status("m1") is None
    assert stored_status(local, "m1") is None
