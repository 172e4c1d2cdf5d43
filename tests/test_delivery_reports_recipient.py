"""The recipient's side of delivery reports (broker/apps/delivery_reports.py), over a real
store on both engines: a marked notice another server's user sent is reported to that server
once a device of the local member synced past it, batched in one EDU per origin; nothing is
reported before, nor for unmarked events or this server's own; a notice not yet received when
the node stops is still reported after its restart.  The EDUs go to a recording function in
place of the federation sender (two real nodes: tests/test_app_delivery_nodes.py)."""

from __future__ import annotations

from typing import Any

from twisted.internet import defer
from twisted.internet.task import Clock as FakeReactor

from broker.apps.delivery_reports import (
    EDU_TYPE,
    MAX_WAITING_PER_USER,
    NOTICE_KEY,
    DeliveryReports,
    ReportDeps,
)
from broker.apps.remote_progress import RemoteProgress
from broker.clock import Clock
from protocol.events import Event
from protocol.room_versions import KNOWN_ROOM_VERSIONS
from storage.database import Database
from storage.delivery_pending import DeliveryPendingStore
from storage.events import PersistItem
from storage.remote_progress import RemoteProgressStore
from tests.storage_helpers import result_of

ME = "b.example"
BOB = f"@bob:{ME}"
ROOM = "!notice:a.example"


class Recipient:
    def __init__(self, database: Database) -> None:
        self.reactor = FakeReactor()
        self.reactor.advance(1_767_225_600)
        self.synced: dict[str, int] = {}
        self.sent: list[tuple[str, str, dict[str, Any]]] = []

        async def no_events(event_ids: list[str]) -> dict[str, Event]:
            return {}

        def send(destination: str, edu_type: str,
                 content: dict[str, Any]) -> defer.Deferred[None]:
            self.sent.append((destination, edu_type, content))
            return defer.succeed(None)

        self.reports = DeliveryReports(ReportDeps(
            ME, Clock(self.reactor), lambda user_id: self.synced.get(user_id, 0),
            lambda room_id: [BOB] if room_id == ROOM else [], no_events, send),
            None, DeliveryPendingStore(database),  # type: ignore[arg-type]
            RemoteProgress(RemoteProgressStore(database)))

    def stored(self, sender: str, position: int, marked: bool = True) -> str:
        content: dict[str, Any] = {"msgtype": "m.text", "body": "OTP 1"}
        if marked:
            content[NOTICE_KEY] = {"kind": "otp", "id": f"m{position}"}
        event = Event({"type": "m.room.message", "room_id": ROOM, "sender": sender,
                       "content": content, "origin_server_ts": 1, "depth": position,
                       "prev_events": [], "auth_events": [], "hashes": {"sha256": "x"}},
                      KNOWN_ROOM_VERSIONS["12"], event_id=f"$e{position}")
        self.reports.persisted([PersistItem(event, position, 1)])
        return event.event_id

    def sync(self, since: int) -> None:
        self.synced[BOB] = since
        self.reports.synced(BOB, since)

    def flush(self) -> list[tuple[str, str, dict[str, Any]]]:
        result_of(defer.ensureDeferred(self.reports.flush()))
        sent, self.sent = self.sent, []
        return sent


def test_a_notice_is_reported_to_its_origin_once_a_device_synced_past_it(
        database: Database) -> None:
    recipient = Recipient(database)
    first = recipient.stored("@_app.x:a.example", 10)
    second = recipient.stored("@_app.x:a.example", 11)
    recipient.sync(10)
    recipient.reactor.advance(2)
    recipient.sync(12)
    ts = recipient.reactor.seconds() * 1000
    assert recipient.flush() == [("a.example", EDU_TYPE, {"deliveries": [
        {"room_id": ROOM, "event_id": first, "user_id": BOB, "ts": ts - 2000},
        {"room_id": ROOM, "event_id": second, "user_id": BOB, "ts": ts}]})]
    assert recipient.flush() == []


def test_nothing_is_reported_before_a_device_synced_past_it(database: Database) -> None:
    recipient = Recipient(database)
    recipient.stored("@_app.x:a.example", 10)
    recipient.sync(9)
    assert recipient.flush() == []


def test_unmarked_events_and_this_servers_own_are_not_reported(database: Database) -> None:
    recipient = Recipient(database)
    recipient.stored("@carol:a.example", 10, marked=False)
    recipient.stored(f"@_app.y:{ME}", 11)
    recipient.sync(20)
    assert recipient.flush() == []


def test_a_notice_not_received_before_a_restart_is_reported_after_it(
        database: Database) -> None:
    before = Recipient(database)
    event_id = before.stored("@_app.x:a.example", 10)
    assert before.flush() == []  # the notice is written
    after = Recipient(database)
    result_of(defer.ensureDeferred(after.reports.load()))
    after.sync(10)
    [(origin, _, content)] = after.flush()
    assert (origin, content["deliveries"][0]["event_id"]) == ("a.example", event_id)
    again = Recipient(database)
    result_of(defer.ensureDeferred(again.reports.load()))
    again.sync(11)
    assert again.flush() == []  # reported once: the row went with the report


def test_a_user_who_never_syncs_keeps_only_the_newest_notices(database: Database) -> None:
    recipient = Recipient(database)
    for position in range(1, MAX_WAITING_PER_USER + 3):
        recipient.stored("@_app.x:a.example", position)
    recipient.flush()
    kept = result_of(DeliveryPendingStore(database).load())
    assert len(kept) == MAX_WAITING_PER_USER
    assert min(row[4] for row in kept) == 3  # the two oldest were forgotten
    assert recipient.reports.counts["forgotten"] == 2
