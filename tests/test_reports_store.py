"""ReportStore on both engines: event, room and user reports with increasing ids."""

from __future__ import annotations

from storage.database import Database
from storage.reports import NO_ROOM, ReportQuery, ReportStore
from tests.storage_helpers import result_of

ALICE = "@alice:example.org"
BOB = "@bob:example.org"
ROOM = "!room:example.org"


def test_event_report_round_trips(database: Database) -> None:
    store = ReportStore(database)
    report_id = result_of(store.add_report(
        reporter=ALICE, received_ts=99, room_id=ROOM, event_id="$e", reported_user_id=BOB,
        reason="spam", score=-100))
    report = result_of(store.get_report(report_id))
    assert report is not None
    assert (report.kind, report.room_id, report.event_id, report.reported_user_id) == (
        "event", ROOM, "$e", BOB)
    assert (report.user_id, report.reason, report.score, report.received_ts) == (
        ALICE, "spam", -100, 99)


def test_room_and_user_reports_have_their_kind(database: Database) -> None:
    store = ReportStore(database)
    room_report = result_of(store.add_report(reporter=ALICE, received_ts=1, room_id=ROOM))
    user_report = result_of(store.add_report(reporter=ALICE, received_ts=2,
                                             reported_user_id=BOB, reason="abuse"))
    assert result_of(store.get_report(room_report)).kind == "room"  # type: ignore[union-attr]
    user = result_of(store.get_report(user_report))
    assert user is not None and user.kind == "user" and user.room_id == NO_ROOM
    assert user.to_json()["room_id"] is None


def test_ids_increase_and_listing_is_newest_first(database: Database) -> None:
    store = ReportStore(database)
    ids = [result_of(store.add_report(reporter=ALICE, received_ts=i, room_id=ROOM))
           for i in range(3)]
    assert ids == [1, 2, 3]
    assert [r.id for r in result_of(store.find_reports(ReportQuery()))] == [3, 2, 1]
    assert [r.id for r in result_of(store.find_reports(ReportQuery(before_id=3, limit=1)))] == [2]


def test_unknown_report_is_none(database: Database) -> None:
    assert result_of(ReportStore(database).get_report(42)) is None
