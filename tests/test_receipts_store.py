"""ReceiptStore on both engines: one current receipt per (room, type, user, thread), private
receipts hidden from others, change ranges by stream id."""

from __future__ import annotations

from storage.database import Database
from storage.receipts import READ, READ_PRIVATE, UNTHREADED, Receipt, ReceiptStore
from tests.storage_helpers import result_of

ALICE = "@alice:example.org"
BOB = "@bob:example.org"
ROOM = "!room:example.org"
OTHER_ROOM = "!other:example.org"


def _receipt(event_id: str, *, user: str = ALICE, room: str = ROOM, kind: str = READ,
             thread: str = UNTHREADED, ts: int = 1000) -> Receipt:
    return Receipt(room_id=room, receipt_type=kind, user_id=user, event_id=event_id,
                   thread_id=thread, ts=ts)


def test_receipt_reads_back_in_m_receipt_shape(database: Database) -> None:
    store = ReceiptStore(database)
    assert result_of(store.set_receipt(_receipt("$e1", ts=1234), 5)) is True
    assert result_of(store.get_receipts_for_rooms([ROOM], BOB)) == {
        ROOM: {"$e1": {READ: {ALICE: {"ts": 1234}}}}}


def test_rooms_without_receipts_are_absent(database: Database) -> None:
    store = ReceiptStore(database)
    result_of(store.set_receipt(_receipt("$e1"), 1))
    assert result_of(store.get_receipts_for_rooms([OTHER_ROOM], ALICE)) == {}
    assert result_of(store.get_receipts_for_rooms([], ALICE)) == {}


def test_new_receipt_replaces_the_previous_one(database: Database) -> None:
    store = ReceiptStore(database)
    result_of(store.set_receipt(_receipt("$e1"), 1))
    result_of(store.set_receipt(_receipt("$e2", ts=2000), 2))
    assert result_of(store.get_receipts_for_rooms([ROOM], ALICE)) == {
        ROOM: {"$e2": {READ: {ALICE: {"ts": 2000}}}}}
    assert result_of(store.get_receipt(ROOM, READ, ALICE)) == "$e2"


def test_reposting_the_same_receipt_writes_nothing(database: Database) -> None:
    store = ReceiptStore(database)
    result_of(store.set_receipt(_receipt("$e1", ts=1000), 1))
    assert result_of(store.set_receipt(_receipt("$e1", ts=5000), 2)) is False
    assert result_of(store.get_receipts_changed([ROOM], ALICE, 1, 10)) == {}
    rows = database.run_sync("count", lambda cur: cur.select_value(
        "SELECT COUNT(*) FROM receipts"))
    assert rows == 1


def test_private_receipts_are_shown_only_to_their_user(database: Database) -> None:
    store = ReceiptStore(database)
    result_of(store.set_receipt(_receipt("$e1", kind=READ_PRIVATE), 1))
    result_of(store.set_receipt(_receipt("$e2", user=BOB), 2))
    assert result_of(store.get_receipts_for_rooms([ROOM], BOB)) == {
        ROOM: {"$e2": {READ: {BOB: {"ts": 1000}}}}}
    assert result_of(store.get_receipts_for_rooms([ROOM], ALICE)) == {
        ROOM: {"$e1": {READ_PRIVATE: {ALICE: {"ts": 1000}}}, "$e2": {READ: {BOB: {"ts": 1000}}}}}
    assert result_of(store.get_receipts_changed([ROOM], BOB, 0, 10)) == {
        ROOM: {"$e2": {READ: {BOB: {"ts": 1000}}}}}


def test_threaded_receipts_are_separate_and_carry_thread_id(database: Database) -> None:
    store = ReceiptStore(database)
    result_of(store.set_receipt(_receipt("$main"), 1))
    result_of(store.set_receipt(_receipt("$in_thread", thread="$root"), 2))
    result_of(store.set_receipt(_receipt("$main2", thread="main"), 3))
    content = result_of(store.get_receipts_for_rooms([ROOM], ALICE))[ROOM]
    assert content["$main"] == {READ: {ALICE: {"ts": 1000}}}
    assert content["$in_thread"] == {READ: {ALICE: {"ts": 1000, "thread_id": "$root"}}}
    assert content["$main2"] == {READ: {ALICE: {"ts": 1000, "thread_id": "main"}}}


def test_changes_are_limited_to_the_stream_range_and_rooms(database: Database) -> None:
    store = ReceiptStore(database)
    result_of(store.set_receipt(_receipt("$a", user=ALICE), 3))
    result_of(store.set_receipt(_receipt("$b", user=BOB), 5))
    result_of(store.set_receipt(_receipt("$c", user=BOB, room=OTHER_ROOM), 6))
    assert result_of(store.get_receipts_changed([ROOM], ALICE, 3, 5)) == {
        ROOM: {"$b": {READ: {BOB: {"ts": 1000}}}}}
    assert result_of(store.get_receipts_changed([ROOM, OTHER_ROOM], ALICE, 0, 4)) == {
        ROOM: {"$a": {READ: {ALICE: {"ts": 1000}}}}}
    changed = result_of(store.get_receipts_changed([ROOM, OTHER_ROOM], ALICE, 0, 6))
    assert set(changed) == {ROOM, OTHER_ROOM}


def test_users_reading_the_same_event_share_its_entry(database: Database) -> None:
    store = ReceiptStore(database)
    result_of(store.set_receipt(_receipt("$e", user=ALICE, ts=1), 1))
    result_of(store.set_receipt(_receipt("$e", user=BOB, ts=2), 2))
    assert result_of(store.get_receipts_for_rooms([ROOM], ALICE)) == {
        ROOM: {"$e": {READ: {ALICE: {"ts": 1}, BOB: {"ts": 2}}}}}


def test_receipts_for_many_rooms_are_read_in_batches(database: Database) -> None:
    store = ReceiptStore(database)
    rooms = [f"!r{i}:example.org" for i in range(1200)]
    result_of(store.set_receipt(_receipt("$last", room=rooms[-1]), 1))
    found = result_of(store.get_receipts_for_rooms(rooms, ALICE))
    assert list(found) == [rooms[-1]]
