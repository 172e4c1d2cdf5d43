"""ToDeviceStore on both engines: per-device delivery under one stream id, "*" fan-out,
deduplication, oldest-first reads with a limit, acknowledgement by since token, expiry."""

from __future__ import annotations

from typing import Any

from storage.database import Database
from storage.to_device import ToDeviceStore, edu_dedupe, txn_dedupe
from tests.storage_helpers import result_of

ALICE = "@alice:example.org"
BOB = "@bob:example.org"
REMOTE = "@carol:other.example"


def _store_with_devices(database: Database, *devices: tuple[str, str]) -> ToDeviceStore:
    def txn(cur: Any) -> None:
        for user_id, device_id in devices:
            cur.execute("INSERT INTO devices (user_id, device_id, created_ts) VALUES (?, ?, ?)",
                        (user_id, device_id, 0))

    database.run_sync("devices", txn)
    return ToDeviceStore(database)


def _send(store: ToDeviceStore, messages: dict[str, Any], stream_id: int, *, now: int = 1000,
          dedupe: Any = None, event_type: str = "m.room_key_request") -> Any:
    return result_of(store.deliver(ALICE, event_type, messages, stream_id, now, dedupe))


def _rows(database: Database) -> int:
    return int(database.run_sync("count", lambda cur: cur.select_value(
        "SELECT COUNT(*) FROM to_device_inbox")))


def test_message_reaches_the_named_device_only(database: Database) -> None:
    store = _store_with_devices(database, (BOB, "B1"), (BOB, "B2"))
    assert _send(store, {BOB: {"B1": {"n": 1}}}, 5) == {BOB: ["B1"]}
    messages, more = result_of(store.take_pending(BOB, "B1", None, 10, 100))
    assert [m.to_event() for m in messages] == [
        {"sender": ALICE, "type": "m.room_key_request", "content": {"n": 1}}]
    assert more is False
    assert result_of(store.take_pending(BOB, "B2", None, 10, 100)) == ([], False)


def test_star_reaches_every_device_of_the_user(database: Database) -> None:
    store = _store_with_devices(database, (BOB, "B1"), (BOB, "B2"))
    assert _send(store, {BOB: {"*": {"n": 1}}}, 5) == {BOB: ["B1", "B2"]}


def test_explicit_device_wins_over_star(database: Database) -> None:
    store = _store_with_devices(database, (BOB, "B1"), (BOB, "B2"))
    _send(store, {BOB: {"*": {"n": "all"}, "B2": {"n": "mine"}}}, 5)
    b1, _ = result_of(store.take_pending(BOB, "B1", None, 10, 100))
    b2, _ = result_of(store.take_pending(BOB, "B2", None, 10, 100))
    assert [m.content for m in b1] == [{"n": "all"}]
    assert [m.content for m in b2] == [{"n": "mine"}]


def test_unknown_users_and_devices_get_nothing(database: Database) -> None:
    store = _store_with_devices(database, (BOB, "B1"))
    assert _send(store, {BOB: {"NOPE": {}}, "@ghost:example.org": {"*": {}},
                         REMOTE: {"*": {}}}, 5) == {}
    assert _rows(database) == 0


def test_a_seen_dedupe_key_writes_nothing(database: Database) -> None:
    store = _store_with_devices(database, (BOB, "B1"))
    key = txn_dedupe(ALICE, "A1", "txn1")
    assert _send(store, {BOB: {"B1": {}}}, 5, dedupe=key) == {BOB: ["B1"]}
    assert result_of(store.has_seen(key)) is True
    assert _send(store, {BOB: {"B1": {}}}, 6, dedupe=key) is None
    assert _rows(database) == 1


def test_dedupe_scopes_are_separate(database: Database) -> None:
    store = _store_with_devices(database, (BOB, "B1"))
    _send(store, {BOB: {"B1": {}}}, 5, dedupe=edu_dedupe("one.example", "m1"))
    assert _send(store, {BOB: {"B1": {}}}, 6, dedupe=edu_dedupe("two.example", "m1")) == {
        BOB: ["B1"]}


def test_pending_messages_come_oldest_first_up_to_the_limit(database: Database) -> None:
    store = _store_with_devices(database, (BOB, "B1"))
    for stream_id in (7, 5, 6):
        _send(store, {BOB: {"B1": {"n": stream_id}}}, stream_id)
    messages, more = result_of(store.take_pending(BOB, "B1", None, 10, 2))
    assert [m.content["n"] for m in messages] == [5, 6]
    assert more is True


def test_messages_after_the_sync_position_wait(database: Database) -> None:
    store = _store_with_devices(database, (BOB, "B1"))
    _send(store, {BOB: {"B1": {}}}, 12)
    assert result_of(store.take_pending(BOB, "B1", None, 10, 100)) == ([], False)


def test_a_since_token_at_the_carrying_response_deletes_the_message(database: Database
                                                                    ) -> None:
    store = _store_with_devices(database, (BOB, "B1"))
    _send(store, {BOB: {"B1": {}}}, 5)
    result_of(store.take_pending(BOB, "B1", None, 10, 100))
    assert result_of(store.take_pending(BOB, "B1", 10, 11, 100)) == ([], False)
    assert result_of(store.count_pending(BOB, "B1")) == 0


def test_an_older_since_token_gets_the_message_again(database: Database) -> None:
    store = _store_with_devices(database, (BOB, "B1"))
    _send(store, {BOB: {"B1": {"n": 1}}}, 5)
    result_of(store.take_pending(BOB, "B1", 3, 10, 100))
    again, _ = result_of(store.take_pending(BOB, "B1", 3, 11, 100))
    assert [m.content for m in again] == [{"n": 1}]
    # It keeps the mark of the first response that carried it.
    assert result_of(store.take_pending(BOB, "B1", 10, 12, 100)) == ([], False)


def test_messages_beyond_the_limit_survive_the_acknowledgement(database: Database) -> None:
    store = _store_with_devices(database, (BOB, "B1"))
    for stream_id in (5, 6, 7):
        _send(store, {BOB: {"B1": {"n": stream_id}}}, stream_id)
    result_of(store.take_pending(BOB, "B1", None, 10, 2))
    rest, more = result_of(store.take_pending(BOB, "B1", 10, 10, 2))
    assert [m.content["n"] for m in rest] == [7]
    assert more is False


def test_initial_sync_acknowledges_nothing(database: Database) -> None:
    store = _store_with_devices(database, (BOB, "B1"))
    _send(store, {BOB: {"B1": {}}}, 5)
    result_of(store.take_pending(BOB, "B1", None, 10, 100))
    again, _ = result_of(store.take_pending(BOB, "B1", None, 20, 100))
    assert len(again) == 1


def test_purge_deletes_only_messages_older_than_the_cutoff(database: Database) -> None:
    store = _store_with_devices(database, (BOB, "B1"))
    _send(store, {BOB: {"B1": {"n": "old"}}}, 5, now=1_000)
    _send(store, {BOB: {"B1": {"n": "new"}}}, 6, now=9_000)
    counts = result_of(store.purge_expired(5_000))
    assert counts.expired == 1
    messages, _ = result_of(store.take_pending(BOB, "B1", None, 10, 100))
    assert [m.content for m in messages] == [{"n": "new"}]


def test_purge_deletes_messages_of_deleted_devices(database: Database) -> None:
    store = _store_with_devices(database, (BOB, "B1"), (BOB, "B2"))
    _send(store, {BOB: {"*": {}}}, 5)
    database.run_sync("drop", lambda cur: cur.execute(
        "DELETE FROM devices WHERE device_id = ?", ("B2",)))
    assert result_of(store.purge_expired(0)).orphaned == 1
    assert result_of(store.count_pending(BOB, "B1")) == 1


def test_purge_forgets_old_dedupe_records(database: Database) -> None:
    store = _store_with_devices(database, (BOB, "B1"))
    key = edu_dedupe("one.example", "m1")
    _send(store, {BOB: {"B1": {}}}, 5, now=1_000, dedupe=key)
    assert result_of(store.purge_expired(5_000)).dedupe_records == 1
    assert result_of(store.has_seen(key)) is False
