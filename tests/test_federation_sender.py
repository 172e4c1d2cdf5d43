"""The outbound federation sender (federation/sender/) over a real store, with a fake transport.

Time is a ``task.Clock``; ``send_transaction`` hands back Deferreds the test fires.  The database
is synchronous, so everything between two clock steps happens at once.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass, field
from typing import Any

import pytest
from twisted.internet import defer, task

from federation.sender import FederationSender
from federation.sender.policy import MAX_RETRY_INTERVAL_MS, MIN_RETRY_INTERVAL_MS
from storage.database import Database
from storage.federation_queue import FederationQueueStore
from tests.storage_helpers import result_of

ME = "me.example"
START_S = 1_700_000_000.0


class HttpError(Exception):
    """The shape of protocol.errors.HttpResponseError that the sender reads."""

    def __init__(self, status: int, body: Any = None) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status
        self.body = body


@dataclass
class Call:
    destination: str
    txn_id: str
    body: dict
    deferred: defer.Deferred

    @property
    def event_ids(self) -> list[str]:
        return [p["event_id"] for p in self.body["pdus"]]

    def succeed(self, pdu_results: dict | None = None) -> None:
        results: dict[str, dict] = {eid: {} for eid in self.event_ids}
        results.update(pdu_results or {})
        self.deferred.callback({"pdus": results})

    def fail(self, exc: Exception) -> None:
        self.deferred.errback(exc)


@dataclass
class FakeTransport:
    calls: list[Call] = field(default_factory=list)

    def __call__(self, destination: str, txn_id: str, body: dict) -> defer.Deferred:
        d: defer.Deferred = defer.Deferred()
        self.calls.append(Call(destination, txn_id, body, d))
        return d

    def to(self, destination: str) -> list[Call]:
        return [c for c in self.calls if c.destination == destination]

    def last(self, destination: str) -> Call:
        return self.to(destination)[-1]


class ReactorClock:
    def __init__(self, reactor: task.Clock) -> None:
        self.reactor = reactor

    def time_ms(self) -> int:
        return int(self.reactor.seconds() * 1000)


class Harness:
    def __init__(self, database: Database, max_queue_age_ms: int | None = None) -> None:
        self.max_queue_age_ms = max_queue_age_ms
        self.reactor = task.Clock()
        self.reactor.advance(START_S)
        self.store = FederationQueueStore(database)
        self.allowed = {"a.example", "b.example", "c.example"}
        self.sender, self.transport = self.new_sender()

    def new_sender(self) -> tuple[FederationSender, FakeTransport]:
        transport = FakeTransport()
        sender = FederationSender(
            self.store, transport, ME, ReactorClock(self.reactor), self.reactor,
            lambda d: d in self.allowed, rng=random.Random(7),
            max_queue_age_ms=self.max_queue_age_ms,
        )
        return sender, transport

    def restart(self) -> None:
        self.sender.stop()
        self.sender, self.transport = self.new_sender()
        result_of(defer.ensureDeferred(self.sender.start()))

    def enqueue(self, count: int, destinations: list[str], first: int = 0) -> None:
        """Queue ``count`` PDUs in one reactor turn, then let the write happen."""
        for n in range(first, first + count):
            defer.ensureDeferred(self.sender.enqueue_pdu(_pdu(n), f"$e{n}", destinations))
        self.reactor.advance(0)

    def pending(self, destination: str) -> tuple[int, int]:
        return result_of(self.store.pending_counts(destination))

    def retry_interval_ms(self, destination: str) -> int:
        state = result_of(self.store.get_destination(destination))
        assert state is not None
        return state.retry_interval_ms

    def drain(self, destination: str) -> list[str]:
        """Answer every transaction to ``destination`` until none is left; the event IDs sent."""
        sent: list[str] = []
        while waiting := [c for c in self.transport.to(destination) if not c.deferred.called]:
            sent += waiting[0].event_ids
            waiting[0].succeed()
        return sent


def _pdu(n: int) -> dict:
    return {"event_id": f"$e{n}", "type": "m.room.message", "content": {"body": str(n)}}


@pytest.fixture
def h(database: Database) -> Harness:
    return Harness(database)


# -- enqueueing -----------------------------------------------------------------------------------
def test_pdus_enqueued_in_one_turn_are_written_in_one_transaction(h: Harness) -> None:
    writes: list[int] = []
    original = h.store.enqueue

    def counting(pdus: Any, edus: Any = (), queued_ts: Any = None) -> defer.Deferred:
        writes.append(len(pdus))
        return original(pdus, edus, queued_ts)

    h.store.enqueue = counting  # type: ignore[method-assign]
    h.enqueue(5, ["a.example", "b.example", "c.example"])
    assert writes == [15]


def test_enqueue_pdu_returns_once_durable(h: Harness) -> None:
    d = defer.ensureDeferred(h.sender.enqueue_pdu(_pdu(1), "$e1", ["a.example"]))
    assert not d.called and h.pending("a.example") == (0, 0)
    h.reactor.advance(0)
    assert d.called and h.pending("a.example") == (1, 0)


def test_disallowed_destinations_are_dropped(h: Harness) -> None:
    h.enqueue(1, ["a.example", "evil.example"])
    assert h.pending("evil.example") == (0, 0)
    assert [c.destination for c in h.transport.calls] == ["a.example"]


def test_never_sends_to_itself(h: Harness) -> None:
    h.allowed.add(ME)
    h.enqueue(1, [ME, "a.example"])
    h.sender.enqueue_edu(ME, "m.typing", {"room_id": "!r"})
    assert h.pending(ME) == (0, 0)
    assert [c.destination for c in h.transport.calls] == ["a.example"]


# -- transactions ---------------------------------------------------------------------------------
def test_transaction_body_follows_the_spec(h: Harness) -> None:
    h.enqueue(2, ["a.example"])
    call = h.transport.last("a.example")
    assert call.body == {"origin": ME, "origin_server_ts": int(START_S * 1000),
                         "pdus": [_pdu(0), _pdu(1)], "edus": []}


def test_batches_hold_at_most_50_pdus(h: Harness) -> None:
    h.enqueue(120, ["a.example"])
    h.drain("a.example")
    assert [len(c.body["pdus"]) for c in h.transport.to("a.example")] == [50, 50, 20]


def test_batches_hold_at_most_100_edus(h: Harness) -> None:
    h.enqueue(1, ["a.example"])  # in flight while the EDUs are queued
    for n in range(150):
        h.sender.enqueue_edu("a.example", "m.direct_to_device", {"n": n}, persistent=True)
    for n in range(30):
        h.sender.enqueue_edu("a.example", "m.receipt", {"n": n})
    h.reactor.advance(0)
    h.drain("a.example")
    sizes = [len(c.body["edus"]) for c in h.transport.to("a.example")]
    assert sizes == [0, 100, 80]


def test_order_is_preserved_across_batches(h: Harness) -> None:
    h.enqueue(70, ["a.example"])
    h.enqueue(40, ["a.example"], first=70)
    assert h.drain("a.example") == [f"$e{n}" for n in range(110)]


def test_one_transaction_in_flight_per_destination(h: Harness) -> None:
    h.enqueue(1, ["a.example"])
    h.enqueue(1, ["a.example"], first=1)
    assert len(h.transport.to("a.example")) == 1
    h.transport.last("a.example").succeed()
    assert len(h.transport.to("a.example")) == 2
    assert h.transport.last("a.example").event_ids == ["$e1"]


def test_a_slow_destination_does_not_hold_up_others(h: Harness) -> None:
    h.enqueue(1, ["a.example", "b.example"])
    h.transport.last("b.example").succeed()
    h.enqueue(1, ["a.example", "b.example"], first=1)
    assert len(h.transport.to("a.example")) == 1
    assert len(h.transport.to("b.example")) == 2


def test_transaction_ids_are_unique(h: Harness) -> None:
    h.enqueue(200, ["a.example", "b.example"])
    h.drain("a.example")
    h.drain("b.example")
    ids = [c.txn_id for c in h.transport.calls]
    assert len(ids) == 8 and len(set(ids)) == 8


def test_acknowledged_items_leave_the_queue(h: Harness) -> None:
    h.enqueue(3, ["a.example"])
    h.transport.last("a.example").succeed()
    assert h.pending("a.example") == (0, 0)


def test_pdus_the_peer_rejected_are_not_retried(h: Harness, caplog: Any) -> None:
    h.enqueue(2, ["a.example"])
    with caplog.at_level(logging.WARNING):
        h.transport.last("a.example").succeed({"$e1": {"error": "not allowed in room"}})
    assert h.pending("a.example") == (0, 0)
    h.reactor.advance(MAX_RETRY_INTERVAL_MS / 1000)
    assert len(h.transport.calls) == 1
    assert "$e1" in caplog.text and "not allowed in room" in caplog.text


def test_a_bad_request_answer_drops_the_batch_and_moves_on(h: Harness) -> None:
    h.enqueue(60, ["a.example"])
    h.transport.last("a.example").fail(HttpError(400, {"errcode": "M_BAD_JSON"}))
    assert h.transport.last("a.example").event_ids == [f"$e{n}" for n in range(50, 60)]
    assert not h.sender.is_backing_off("a.example")


# -- failures and back-off ------------------------------------------------------------------------
def test_a_connection_error_backs_off_about_5_seconds(h: Harness) -> None:
    h.enqueue(1, ["a.example"])
    h.transport.last("a.example").fail(ConnectionRefusedError())
    interval = h.retry_interval_ms("a.example")
    assert 0.8 * MIN_RETRY_INTERVAL_MS <= interval <= 1.2 * MIN_RETRY_INTERVAL_MS
    h.reactor.advance(interval / 1000 - 0.01)
    assert len(h.transport.calls) == 1
    h.reactor.advance(0.02)
    assert len(h.transport.calls) == 2
    assert h.transport.last("a.example").event_ids == ["$e0"]


def test_nothing_is_sent_while_backing_off(h: Harness) -> None:
    h.enqueue(1, ["a.example"])
    h.transport.last("a.example").fail(ConnectionRefusedError())
    h.enqueue(1, ["a.example"], first=1)
    assert len(h.transport.calls) == 1
    assert h.pending("a.example") == (2, 0)


def test_backoff_doubles_and_is_capped_at_24_hours(h: Harness) -> None:
    h.enqueue(1, ["a.example"])
    intervals = []
    for _ in range(20):
        h.transport.last("a.example").fail(ConnectionRefusedError())
        intervals.append(h.retry_interval_ms("a.example"))
        h.reactor.advance(intervals[-1] / 1000)
    for n, interval in enumerate(intervals):
        base = min(MIN_RETRY_INTERVAL_MS * 2**n, MAX_RETRY_INTERVAL_MS)
        assert 0.8 * base <= interval <= min(1.2 * base, MAX_RETRY_INTERVAL_MS)
    assert intervals[1] > intervals[0] and intervals[5] > intervals[4]
    assert len(h.transport.calls) == 21


def test_server_errors_back_off(h: Harness) -> None:
    h.enqueue(1, ["a.example"])
    h.transport.last("a.example").fail(HttpError(502, "Bad gateway"))
    assert h.sender.is_backing_off("a.example")
    assert h.pending("a.example") == (1, 0)


def test_a_transaction_that_times_out_is_cancelled_and_retried(h: Harness) -> None:
    h.enqueue(1, ["a.example"])
    call = h.transport.last("a.example")
    h.reactor.advance(59)
    assert not call.deferred.called
    h.reactor.advance(1)
    assert call.deferred.called  # cancelled by the timeout
    assert h.sender.is_backing_off("a.example")
    h.reactor.advance(1.2 * MIN_RETRY_INTERVAL_MS / 1000)
    assert len(h.transport.calls) == 2


def test_429_retry_after_ms_is_honoured(h: Harness) -> None:
    h.enqueue(1, ["a.example"])
    h.transport.last("a.example").fail(
        HttpError(429, {"errcode": "M_LIMIT_EXCEEDED", "retry_after_ms": 30_000})
    )
    h.reactor.advance(29.9)
    assert len(h.transport.calls) == 1
    h.reactor.advance(0.2)
    assert len(h.transport.calls) == 2
    state = result_of(h.store.get_destination("a.example"))
    assert state is not None and state.failure_count == 0


def test_retry_state_is_persisted(h: Harness) -> None:
    h.enqueue(1, ["a.example"])
    h.transport.last("a.example").fail(ConnectionRefusedError())
    state = result_of(h.store.get_destination("a.example"))
    assert state is not None
    assert (state.failure_count, state.retry_last_ts) == (1, int(START_S * 1000))


def test_catch_up_after_recovery_drains_everything(h: Harness) -> None:
    h.enqueue(1, ["a.example"])
    h.transport.last("a.example").fail(ConnectionRefusedError())
    h.enqueue(130, ["a.example"], first=1)
    h.reactor.advance(MAX_RETRY_INTERVAL_MS / 1000)
    assert h.drain("a.example") == [f"$e{n}" for n in range(131)]
    assert [len(c.body["pdus"]) for c in h.transport.calls[1:]] == [50, 50, 31]
    assert h.pending("a.example") == (0, 0)
    state = result_of(h.store.get_destination("a.example"))
    assert state is not None and (state.failure_count, state.retry_interval_ms) == (0, 0)


def test_wake_destination_retries_at_once(h: Harness) -> None:
    h.enqueue(1, ["a.example"])
    h.transport.last("a.example").fail(ConnectionRefusedError())
    h.sender.wake_destination("a.example")
    assert len(h.transport.calls) == 2
    assert not h.sender.is_backing_off("a.example")


def test_down_and_back_are_logged_with_counts(h: Harness, caplog: Any) -> None:
    with caplog.at_level(logging.INFO, logger="federation.sender"):
        h.enqueue(3, ["a.example"])
        h.transport.last("a.example").fail(ConnectionRefusedError())
        h.enqueue(60, ["a.example"], first=3)
        h.sender.wake_destination("a.example")
        h.drain("a.example")
    messages = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert any("a.example is down" in m and "3 PDUs" in m for m in messages)
    assert any("a.example is back" in m and "13 PDUs" in m for m in messages)
    assert any("caught up with a.example: 63 PDUs" in m for m in messages)


def test_a_destination_no_longer_allowed_is_purged(h: Harness) -> None:
    h.enqueue(2, ["a.example"])
    h.transport.last("a.example").fail(ConnectionRefusedError())
    h.allowed.discard("a.example")
    h.reactor.advance(MAX_RETRY_INTERVAL_MS / 1000)
    assert len(h.transport.calls) == 1
    assert h.pending("a.example") == (0, 0)


# -- EDUs -----------------------------------------------------------------------------------------
def test_ephemeral_edu_is_sent_without_touching_the_database(h: Harness) -> None:
    h.sender.enqueue_edu("a.example", "m.typing", {"room_id": "!r", "typing": True})
    assert h.transport.last("a.example").body["edus"] == [
        {"edu_type": "m.typing", "content": {"room_id": "!r", "typing": True}}
    ]
    assert h.pending("a.example") == (0, 0)


def test_typing_edu_is_replaced_by_a_newer_one_for_the_same_key(h: Harness) -> None:
    h.enqueue(1, ["a.example"])  # in flight
    h.sender.enqueue_edu("a.example", "m.typing", {"room_id": "!r1", "typing": True}, key="!r1")
    h.sender.enqueue_edu("a.example", "m.typing", {"room_id": "!r2", "typing": True}, key="!r2")
    h.sender.enqueue_edu("a.example", "m.typing", {"room_id": "!r1", "typing": False},
                         key="!r1")
    h.transport.last("a.example").succeed()
    edus = h.transport.last("a.example").body["edus"]
    assert [(e["content"]["room_id"], e["content"]["typing"]) for e in edus] == [
        ("!r2", True), ("!r1", False)
    ]


def test_ephemeral_edus_are_dropped_while_backing_off(h: Harness) -> None:
    h.enqueue(1, ["a.example"])
    h.transport.last("a.example").fail(ConnectionRefusedError())
    h.sender.enqueue_edu("a.example", "m.typing", {"room_id": "!r", "typing": True})
    h.sender.wake_destination("a.example")
    assert h.transport.last("a.example").body["edus"] == []


def test_persistent_edus_are_retried_after_a_failure(h: Harness) -> None:
    h.sender.enqueue_edu("a.example", "m.direct_to_device", {"n": 1}, persistent=True)
    h.reactor.advance(0)
    h.transport.last("a.example").fail(ConnectionRefusedError())
    h.sender.wake_destination("a.example")
    assert h.transport.last("a.example").body["edus"] == [
        {"edu_type": "m.direct_to_device", "content": {"n": 1}}
    ]


# -- restarts -------------------------------------------------------------------------------------
def test_queue_survives_a_restart(h: Harness) -> None:
    h.enqueue(3, ["a.example", "b.example"])  # in flight, never answered
    h.restart()
    assert sorted(c.destination for c in h.transport.calls) == ["a.example", "b.example"]
    assert h.drain("a.example") == ["$e0", "$e1", "$e2"]


def test_persistent_edus_survive_a_restart(h: Harness) -> None:
    h.enqueue(1, ["a.example"])  # in flight
    h.sender.enqueue_edu("a.example", "m.device_list_update", {"v": 1}, persistent=True,
                         key="@u:me.example")
    h.sender.enqueue_edu("a.example", "m.typing", {"room_id": "!r"})
    h.reactor.advance(0)
    h.restart()
    h.drain("a.example")
    edus = [e for c in h.transport.calls for e in c.body["edus"]]
    assert edus == [{"edu_type": "m.device_list_update", "content": {"v": 1}}]


def test_a_restart_honours_the_persisted_backoff(h: Harness) -> None:
    h.enqueue(1, ["a.example"])
    h.transport.last("a.example").fail(ConnectionRefusedError())
    interval = h.retry_interval_ms("a.example")
    h.restart()
    assert h.transport.calls == []
    h.reactor.advance(interval / 1000)
    assert len(h.transport.calls) == 1


def test_destination_health_shows_a_failing_destination_backing_off(h: Harness) -> None:
    h.enqueue(1, ["a.example", "b.example"])
    h.transport.last("a.example").fail(ConnectionRefusedError())
    h.transport.last("b.example").succeed()
    health = {name: (waiting, failed) for name, waiting, failed in h.sender.destination_health()}
    assert health == {"a.example": (True, 1), "b.example": (False, 0)}


# -- what the statistics are told -----------------------------------------------------------------
def test_each_transaction_a_destination_took_is_told_with_its_pdus_and_edus(h: Harness) -> None:
    told: list[tuple[str, int, int]] = []
    h.sender.set_delivered(lambda destination, pdus, edus: told.append((destination, pdus, edus)))
    h.enqueue(2, ["a.example"])
    h.sender.enqueue_edu("a.example", "m.direct_to_device", {"n": 1}, persistent=True)
    h.reactor.advance(0)
    h.transport.last("a.example").fail(HttpError(500))  # not taken: nothing told
    assert told == []
    h.reactor.advance(3600)
    h.drain("a.example")
    assert sum(pdus for _, pdus, _ in told) == 2 and sum(edus for _, _, edus in told) == 1
    assert {destination for destination, _, _ in told} == {"a.example"}
