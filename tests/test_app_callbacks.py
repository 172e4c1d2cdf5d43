"""Status callbacks to applications (broker/apps/callbacks.py), against a real HTTP server on
loopback that records what it receives, both engines: the body and its HMAC signature, retries
with back-off after a 500 (on a fake clock, with the random factor fixed), a callback that hangs
timing out without holding up another application's, the URL checked again at delivery time,
and callbacks owed before a restart sent after it.

The HTTP exchange runs on the real reactor, iterated until the callbacks under way are done
(bounded by WAIT_S, never a timing assumption); time (back-off, timeouts) is the fake clock's.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time

from twisted.internet import defer
from twisted.internet import reactor as real_reactor
from twisted.internet.testing import MemoryReactorClock

from broker.apps.callbacks import (
    BASE_DELAY_S,
    MAX_ATTEMPTS,
    TIMEOUT_S,
    CallbackDeps,
    Callbacks,
    HttpPoster,
)
from broker.apps.tracking import CallbackTarget, MessageTracker, TrackerDeps
from broker.clock import Clock
from storage.app_messages import AppMessageStore, CallbackRow
from storage.database import Database
from tests.callback_recorder import WAIT_S, Recorder, recorder
from tests.storage_helpers import result_of

__all__ = ["recorder"]

SECRET = "s3cret-of-the-app"


class Scene:
    def __init__(self, database: Database, recorder: Recorder, *,
                 allow_private: bool = True) -> None:
        self.clock_reactor = MemoryReactorClock()
        self.clock_reactor.advance(1_767_225_600)
        self.clock = Clock(self.clock_reactor)
        self.store = AppMessageStore(database)
        self.recorder = recorder
        self.targets: dict[str, CallbackTarget] = {}
        self.callbacks = Callbacks(CallbackDeps(
            self.store, self.targets.get, self.clock,
            HttpPoster(real_reactor, self.clock_reactor), lambda: 0.5, allow_private))

    def app(self, app_id: str, path: str, behaviour: str = "ok") -> None:
        self.targets[app_id] = CallbackTarget(self.recorder.url(path), SECRET)
        self.recorder.behaviour[path] = behaviour

    def owe(self, message_id: str, app_id: str, status: str = "delivered") -> bytes:
        body = json.dumps({"message_id": message_id, "status": status,
                           "recipient": "@bob:x", "ts": self.clock.time_ms()})
        result_of(self.store.write([], [CallbackRow(message_id, status, app_id, body, 0,
                                                    self.clock.time_ms())]))
        return body.encode()

    def run(self) -> None:
        """Start the due callbacks and let them finish (on the real reactor)."""
        result_of(defer.ensureDeferred(self.callbacks.run_due()))
        self.settle()

    def settle(self, leave: int = 0) -> None:
        deadline = time.monotonic() + WAIT_S
        while len(self.callbacks.in_flight) > leave and time.monotonic() < deadline:
            real_reactor.iterate(0.01)  # type: ignore[attr-defined]
        assert len(self.callbacks.in_flight) <= leave, "callbacks still under way"

    def owed(self) -> list[CallbackRow]:
        return result_of(self.store.due_callbacks(2**62, 100))


def test_a_callback_is_posted_with_its_body_and_its_signature(
        database: Database, recorder: Recorder) -> None:
    scene = Scene(database, recorder)
    scene.app("app1", "/hooks/status")
    body = scene.owe("m1", "app1")
    scene.run()
    [(path, headers, received)] = recorder.received
    assert (path, received) == ("/hooks/status", body)
    expected = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    assert headers["X-Broker-Signature"] == f"sha256={expected}"
    assert headers["Content-Type"] == "application/json"
    assert scene.owed() == []


def test_a_callback_answered_500_is_retried_after_its_back_off(
        database: Database, recorder: Recorder) -> None:
    scene = Scene(database, recorder)
    scene.app("app1", "/cb", "fail")
    scene.owe("m1", "app1")
    scene.run()
    [row] = scene.owed()
    assert (row.attempts, row.next_ts) == (1, scene.clock.time_ms() + int(BASE_DELAY_S * 1000))
    scene.clock_reactor.advance(BASE_DELAY_S - 0.001)
    scene.run()
    assert recorder.paths() == ["/cb"]  # not due yet
    recorder.behaviour["/cb"] = "ok"
    scene.clock_reactor.advance(0.001)
    scene.run()
    assert recorder.paths() == ["/cb", "/cb"]
    assert scene.owed() == []


def test_each_failure_doubles_the_wait(database: Database, recorder: Recorder) -> None:
    scene = Scene(database, recorder)
    scene.app("app1", "/cb", "fail")
    scene.owe("m1", "app1")
    waits = []
    for _ in range(3):
        scene.run()
        [row] = scene.owed()
        waits.append(row.next_ts - scene.clock.time_ms())
        scene.clock_reactor.advance(waits[-1] / 1000)
    assert waits == [5000, 10000, 20000]


def test_a_callback_is_dropped_after_its_last_attempt(
        database: Database, recorder: Recorder) -> None:
    scene = Scene(database, recorder)
    scene.app("app1", "/cb", "fail")
    scene.owe("m1", "app1")
    for _ in range(MAX_ATTEMPTS):
        scene.run()
        scene.clock_reactor.advance(4000)
    assert len(recorder.received) == MAX_ATTEMPTS
    assert scene.owed() == [] and scene.callbacks.counts["dropped"] == 1


def test_a_hanging_callback_times_out_without_holding_up_another_apps(
        database: Database, recorder: Recorder) -> None:
    scene = Scene(database, recorder)
    scene.app("slow", "/slow", "hang")
    scene.app("quick", "/quick")
    scene.owe("m1", "slow")
    scene.owe("m2", "quick")
    result_of(defer.ensureDeferred(scene.callbacks.run_due()))
    scene.settle(leave=1)  # the quick one answered while the slow one hangs
    assert sorted(recorder.paths()) == ["/quick", "/slow"]
    assert list(scene.callbacks.in_flight) == [("m1", "delivered")]
    scene.clock_reactor.advance(TIMEOUT_S)  # the slow one's time is up
    scene.settle()
    [row] = scene.owed()
    assert (row.message_id, row.attempts) == ("m1", 1)


def test_a_private_address_is_not_called_unless_allowed_at_delivery_time(
        database: Database, recorder: Recorder) -> None:
    scene = Scene(database, recorder, allow_private=False)
    scene.app("app1", "/cb")
    scene.owe("m1", "app1")
    scene.run()
    assert recorder.received == []
    assert scene.owed()[0].attempts == 1


def test_a_callback_owed_before_a_restart_is_sent_after_it(
        database: Database, recorder: Recorder) -> None:
    first = Scene(database, recorder)
    first.owe("m1", "app1")  # owed, never sent: the node stopped
    again = Scene(database, recorder)
    again.app("app1", "/cb")
    again.run()
    assert recorder.paths() == ["/cb"]


def test_an_app_without_a_callback_any_more_is_owed_nothing(
        database: Database, recorder: Recorder) -> None:
    scene = Scene(database, recorder)
    scene.owe("m1", "gone")
    scene.run()
    assert recorder.received == [] and scene.owed() == []


def test_a_status_change_owes_its_callback_in_the_same_write(
        database: Database, recorder: Recorder) -> None:
    scene = Scene(database, recorder)
    scene.app("app1", "/cb")

    async def no_position(room_id: str, event_id: str) -> int | None:
        return None

    tracker = MessageTracker(scene.store, TrackerDeps(
        scene.clock, lambda user_id: True, lambda user_id: 0, no_position, scene.targets.get))
    poked: list[bool] = []
    tracker.on_owed = lambda: poked.append(True)
    result_of(defer.ensureDeferred(tracker.queue("m1", "app1", "@bob:x", None)))
    assert scene.owed() == []  # queued is where a message starts: no callback
    result_of(defer.ensureDeferred(tracker.fail("m1", "recipient_unreachable")))
    [row] = scene.owed()
    assert (row.message_id, row.status) == ("m1", "failed")
    assert json.loads(row.body) == {"message_id": "m1", "status": "failed",
                                    "recipient": "@bob:x", "ts": scene.clock.time_ms()}
    assert poked == [True]
    scene.run()
    assert json.loads(recorder.received[0][2])["status"] == "failed"


def test_a_message_read_before_its_delivery_was_seen_owes_delivered_then_read(
        database: Database, recorder: Recorder) -> None:
    scene = Scene(database, recorder)
    scene.app("app1", "/cb")

    async def position(room_id: str, event_id: str) -> int | None:
        return 7

    tracker = MessageTracker(scene.store, TrackerDeps(
        scene.clock, lambda user_id: False, lambda user_id: 0, position, scene.targets.get))
    result_of(defer.ensureDeferred(tracker.queue("m1", "app1", "@bob:y", None)))
    result_of(defer.ensureDeferred(tracker.sent("m1", "!room:x", "$otp")))
    # The recipient's node reported nothing yet when their receipt arrives.
    result_of(defer.ensureDeferred(tracker.receipt("!room:x", "@bob:y", "$otp")))
    result_of(defer.ensureDeferred(tracker.expire_check()))
    assert sorted(row.status for row in scene.owed()) == ["delivered", "read"]
    scene.run()
    scene.settle()
    assert [json.loads(body)["status"] for _, _, body in recorder.received] == [
        "delivered", "read"]


def test_the_changes_of_one_message_are_called_back_one_after_the_other_in_order(
        database: Database, recorder: Recorder) -> None:
    scene = Scene(database, recorder)
    scene.app("app1", "/cb")
    scene.owe("m1", "app1", "read")
    scene.owe("m1", "app1", "delivered")
    result_of(defer.ensureDeferred(scene.callbacks.run_due()))
    assert list(scene.callbacks.in_flight) == [("m1", "delivered")]
    scene.settle()
    assert [json.loads(body)["status"] for _, _, body in recorder.received] == [
        "delivered", "read"]
    assert scene.owed() == []
