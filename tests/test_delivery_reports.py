"""The origin's side of delivery reports (broker/apps/delivery_reports.py, the EDU
``in.gov.broker.delivery``), on a node on a fake clock, both engines: a report is taken only
for a user of the reporting server and only for a marked event this node sent into that room;
the others are ignored and counted.  Two real nodes report to each other in
tests/test_app_delivery_nodes.py."""

from __future__ import annotations

from itertools import count
from typing import Any
from urllib.parse import quote

from broker.apps.delivery_reports import NOTICE_KEY
from broker.apps.tracking import DELIVERED, FAILED, QUEUED
from broker.metrics import NodeMetrics
from storage.federation_queue import NewPdu
from tests.inprocess_node import InProcessNode
from tests.node_engines import Engine, engines
from tests.storage_helpers import result_of
from tests.test_metrics import samples

V3 = "/_matrix/client/v3"
OTHER = "b.example"
CAROL = f"@carol:{OTHER}"
TXN = count()
engine = engines()


class Origin:
    """A node whose application sender wrote a marked message meant for ``CAROL``."""

    def __init__(self, local: InProcessNode) -> None:
        self.local = local
        _, self.sender = local.register("app.sender")
        status, answer = local.call("POST", f"{V3}/createRoom", self.sender, {})
        assert status == 200, answer
        self.room_id = str(answer["room_id"])
        self.tracker = local.node.delivery.tracker
        self.reports = local.node.delivery.reports
        self.heard: list[tuple[str, str, str, int]] = []
        self.reports.add_remote_delivery_listener(
            lambda *delivery: self.heard.append(delivery))

    def send(self, content: dict[str, Any]) -> str:
        status, answer = self.local.call(
            "PUT", f"{V3}/rooms/{quote(self.room_id)}/send/m.room.message/t{next(TXN)}",
            self.sender, content)
        assert status == 200, answer
        return str(answer["event_id"])

    def message(self, message_id: str) -> str:
        self.local.run(self.tracker.queue(message_id, "app1", CAROL, None))
        event_id = self.send({"msgtype": "m.text", "body": "OTP 123456",
                              NOTICE_KEY: {"kind": "otp", "id": message_id}})
        self.local.run(self.tracker.sent(message_id, self.room_id, event_id))
        return event_id

    def report(self, origin: str, *deliveries: dict[str, Any]) -> None:
        self.local.run(self.reports.received(origin, {"deliveries": list(deliveries)}))

    def status(self, message_id: str) -> dict[str, Any]:
        found = self.local.run(self.tracker.status(message_id))
        assert found is not None
        return dict(found)


def delivery(room_id: str, event_id: str, user_id: str = CAROL, ts: int = 0) -> dict[str, Any]:
    return {"room_id": room_id, "event_id": event_id, "user_id": user_id, "ts": ts}


def test_a_report_of_the_users_server_makes_the_message_delivered(engine: Engine) -> None:
    origin = Origin(engine.node())
    event_id = origin.message("m1")
    origin.local.advance(10)
    now = origin.local.node.clock.time_ms()
    origin.report(OTHER, delivery(origin.room_id, event_id, ts=now - 5))
    assert origin.status("m1")["status"] == DELIVERED
    assert origin.status("m1")["delivered_ts"] == now - 5
    assert origin.heard == [(CAROL, origin.room_id, event_id, now - 5)]
    assert origin.reports.counts["accepted"] == 1


def test_a_report_from_another_server_than_the_users_is_ignored(engine: Engine) -> None:
    origin = Origin(engine.node())
    event_id = origin.message("m1")
    origin.report("c.example", delivery(origin.room_id, event_id))
    assert origin.status("m1")["status"] == QUEUED
    assert origin.heard == []
    assert origin.reports.counts["ignored_foreign_user"] == 1


def test_a_report_of_an_event_not_sent_here_or_not_marked_is_ignored(engine: Engine) -> None:
    origin = Origin(engine.node())
    event_id = origin.message("m1")
    plain = origin.send({"msgtype": "m.text", "body": "not a notice"})
    origin.report(OTHER, delivery(origin.room_id, plain), delivery("!other:x", event_id),
                  delivery(origin.room_id, "$never-sent"))
    assert origin.status("m1")["status"] == QUEUED
    assert origin.reports.counts["ignored_not_ours"] == 3


def test_a_marked_event_of_ours_without_a_tracked_message_is_told_to_listeners(
        engine: Engine) -> None:
    """A broadcast's event: no application message, but its listeners count it."""
    origin = Origin(engine.node())
    event_id = origin.send({"msgtype": "m.text", "body": "Office closed",
                            NOTICE_KEY: {"kind": "broadcast", "id": "b1"}})
    origin.report(OTHER, delivery(origin.room_id, event_id, ts=7))
    assert origin.heard == [(CAROL, origin.room_id, event_id, 7)]


def test_malformed_deliveries_are_ignored_and_counted(engine: Engine) -> None:
    origin = Origin(engine.node())
    event_id = origin.message("m1")
    origin.report(OTHER, {"room_id": origin.room_id}, delivery(origin.room_id, event_id,
                                                               user_id="@nobody:"),
                  {**delivery(origin.room_id, event_id), "ts": "soon"})
    origin.local.run(origin.reports.received(OTHER, {"deliveries": "all of them"}))
    assert origin.status("m1")["status"] == QUEUED
    assert origin.reports.counts["ignored_malformed"] == 4


def test_a_report_from_the_future_is_dated_now(engine: Engine) -> None:
    origin = Origin(engine.node())
    event_id = origin.message("m1")
    now = origin.local.node.clock.time_ms()
    origin.report(OTHER, delivery(origin.room_id, event_id, ts=now + 10**9))
    assert origin.status("m1")["delivered_ts"] == now


# -- dropped by the federation queue -------------------------------------------------------------
def test_a_message_the_federation_queue_drops_unsent_fails_with_a_reason(
        engine: Engine) -> None:
    origin = Origin(engine.node())
    event_id = origin.message("m1")
    kept_id = origin.message("m2")
    node = origin.local.node
    expiry = node.federation.sender.expiry
    assert expiry is not None
    queued_ts = node.clock.time_ms()
    origin.local.run(_enqueue(node, [NewPdu(OTHER, event_id, {"event_id": event_id}),
                                     NewPdu("c.example", kept_id, {"event_id": kept_id})],
                              queued_ts))
    origin.local.advance(expiry.max_age_ms / 1000 + 1)
    origin.local.run(expiry.expire())
    failed = origin.status("m1")
    assert failed["status"] == FAILED
    assert failed["reason"] == f"undelivered: {OTHER} did not take it in time"
    assert origin.status("m2")["status"] == QUEUED  # not the recipient's server


async def _enqueue(node: Any, pdus: list[NewPdu], queued_ts: int) -> None:
    await node.stores.federation_queue.enqueue(pdus, queued_ts=queued_ts)


# -- what a metrics scrape shows -----------------------------------------------------------------
def test_a_scrape_shows_reports_taken_and_ignored_and_the_open_messages(engine: Engine) -> None:
    origin = Origin(engine.node())
    event_id = origin.message("m1")
    origin.message("m2")
    origin.report(OTHER, delivery(origin.room_id, event_id))
    origin.report("c.example", delivery(origin.room_id, event_id))
    metrics = NodeMetrics()
    metrics.watch(origin.local.node.delivery.collector())
    seen = samples(metrics)
    assert seen[("broker_delivery_reports_total", (("outcome", "accepted"),))] == 1
    assert seen[("broker_delivery_reports_total", (("outcome", "ignored_foreign_user"),))] == 1
    assert seen[("broker_app_messages_open", ())] == 2  # delivered and queued
    assert seen[("broker_app_callbacks_in_flight", ())] == 0


# -- how far remote users have received, per room (what broadcasts read) --------------------------
def test_an_accepted_report_raises_the_rooms_position_for_the_remote_user(
        engine: Engine) -> None:
    origin = Origin(engine.node())
    first = origin.message("m1")
    second = origin.message("m2")
    position = result_of(origin.local.node.stores.events.get_stream_ordering(second))
    remote = origin.reports.remote
    origin.report("c.example", delivery(origin.room_id, second))  # not CAROL's server
    assert remote.delivered_upto(origin.room_id, CAROL) == 0
    origin.report(OTHER, delivery(origin.room_id, second))
    origin.report(OTHER, delivery(origin.room_id, first))  # an older one lowers nothing
    assert remote.delivered_upto(origin.room_id, CAROL) == position
    assert remote.delivered_upto("!other:x", CAROL) == 0


def test_the_remote_positions_are_kept_across_a_restart(engine: Engine) -> None:
    local = engine.node()
    origin = Origin(local)
    event_id = origin.message("m1")
    position = result_of(local.node.stores.events.get_stream_ordering(event_id))
    origin.report(OTHER, delivery(origin.room_id, event_id))
    result_of(origin.reports.remote.stop())  # the write at shutdown
    again = engine.restart(local)
    again.run(again.node.delivery.reports.remote.load())
    assert again.node.delivery.reports.remote.delivered_upto(origin.room_id, CAROL) == position
