"""Event persistence: batches, current state, state groups and redactions on both engines."""

from __future__ import annotations

import pytest

from storage import room_snapshots
from storage.database import Database
from storage.events import EventStore, PersistItem
from storage.migrations import available_migrations, split_statements
from storage.state import StateStore
from tests.event_chain import ALICE, EventChain
from tests.storage_helpers import result_of


def _room(database: Database) -> tuple[EventChain, EventStore, StateStore]:
    chain = EventChain()
    events = EventStore(database)
    items = [
        chain.item("m.room.create", {"room_version": "12"}, ""),
        chain.item("m.room.member", {"membership": "join"}, ALICE),
        chain.item("m.room.name", {"name": "First"}, ""),
        chain.item("m.room.message", {"msgtype": "m.text", "body": "hello"}),
        chain.item("m.room.name", {"name": "Second"}, ""),
    ]
    result_of(events.persist_batch(items))
    return chain, events, StateStore(database)


def test_batch_is_readable_by_id(database: Database) -> None:
    chain, events, _ = _room(database)
    found = result_of(events.get_events([e.event_id for e in chain.events]))
    assert [found[e.event_id].pdu["content"] for e in chain.events] == [
        e.pdu["content"] for e in chain.events]


def test_current_state_keeps_latest_value(database: Database) -> None:
    chain, _, state = _room(database)
    snapshot = result_of(state.load_room(chain.room_id))
    assert snapshot is not None
    assert snapshot.state[("m.room.name", "")].content == {"name": "Second"}
    assert snapshot.extremities == [chain.events[-1].event_id]
    assert snapshot.max_depth == 5


def test_state_after_each_event_follows_the_delta_chain(database: Database) -> None:
    chain, _, state = _room(database)
    message = chain.events[3]
    at_message = result_of(state.get_state_ids_at_event(message.event_id))
    assert at_message is not None
    assert at_message[("m.room.name", "")] == chain.events[2].event_id
    at_end = result_of(state.get_state_ids_at_event(chain.events[-1].event_id))
    assert at_end is not None and at_end[("m.room.name", "")] == chain.events[4].event_id


def test_state_of_several_groups_is_each_groups_whole_chain_across_statement_chunks(
        database: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    chain, _, state = _room(database)
    monkeypatch.setattr(room_snapshots, "GROUP_CHUNK", 2)  # the chains span several statements
    groups = {event.event_id: result_of(database.run_interaction(
        "group", lambda cur, eid=event.event_id: cur.select_value(
            "SELECT state_group FROM event_to_state_groups WHERE event_id = ?", (eid,))))
        for event in chain.events}
    held = result_of(database.run_interaction(
        "groups", room_snapshots.state_ids_for_groups_txn, sorted(set(groups.values()))))
    for event in chain.events:
        assert held[groups[event.event_id]] == result_of(
            state.get_state_ids_at_event(event.event_id))
    assert held[groups[chain.events[-1].event_id]] == {
        (e.type, e.state_key): e.event_id for e in chain.events
        if e.state_key is not None and e is not chain.events[2]}


def test_room_events_page_backwards_and_forwards(database: Database) -> None:
    chain, events, _ = _room(database)
    newest = result_of(events.get_room_events(chain.room_id, after=None, up_to=5, limit=2,
                                              backwards=True))
    assert [e.event_id for e in newest] == [chain.events[4].event_id, chain.events[3].event_id]
    oldest = result_of(events.get_room_events(chain.room_id, after=0, up_to=None, limit=2,
                                              backwards=False))
    assert [e.event_id for e in oldest] == [chain.events[0].event_id, chain.events[1].event_id]


def test_redaction_prunes_stored_content(database: Database) -> None:
    chain, events, _ = _room(database)
    target = chain.events[3]
    redaction = chain.item("m.room.redaction", {}, redacts=target.event_id)
    result_of(events.persist_batch([redaction]))
    stored = result_of(events.get_events([target.event_id]))[target.event_id]
    assert stored.content == {}
    assert stored.unsigned["redacted_by"] == redaction.event.event_id


def test_transaction_ids_map_to_events(database: Database) -> None:
    chain, events, _ = _room(database)
    item = chain.item("m.room.message", {"body": "x", "msgtype": "m.text"})
    item.txn_key = (ALICE, "DEV", "txn1")
    result_of(events.persist_batch([item]))
    assert result_of(events.get_txn_event_id(ALICE, "DEV", chain.room_id, "txn1")) == \
        item.event.event_id
    assert result_of(events.get_txn_event_id(ALICE, "OTHER", chain.room_id, "txn1")) is None


def _sent_with_transaction(database: Database) -> tuple[EventChain, EventStore, PersistItem]:
    chain, events, _ = _room(database)
    item = chain.item("m.room.message", {"body": "x", "msgtype": "m.text"})
    item.txn_key = (ALICE, "DEV", "txn1")
    result_of(events.persist_batch([item]))
    return chain, events, item


def test_an_event_read_back_carries_its_send_transaction_on_every_read(
        database: Database) -> None:
    chain, events, item = _sent_with_transaction(database)
    by_id = result_of(events.get_events([item.event.event_id]))[item.event.event_id]
    [in_page] = result_of(events.get_room_events(chain.room_id, after=None, up_to=None, limit=1,
                                                 backwards=True))
    assert by_id.unsigned["txn"] == in_page.unsigned["txn"] == (ALICE, "DEV", "txn1")


def test_an_event_sent_without_a_transaction_reads_back_without_one(
        database: Database) -> None:
    chain, events, _ = _room(database)
    found = result_of(events.get_events([e.event_id for e in chain.events]))
    assert all("txn" not in event.unsigned for event in found.values())


def test_the_send_transaction_is_not_stored_in_the_event_json(database: Database) -> None:
    _, _, item = _sent_with_transaction(database)
    raw = database.run_sync("raw", lambda cur: cur.select_value(
        "SELECT json FROM events WHERE event_id = ?", (item.event.event_id,)))
    assert "txn1" not in raw


def test_the_migration_gives_events_sent_before_it_their_send_transaction(
        database: Database) -> None:
    _, events, item = _sent_with_transaction(database)
    database.run_sync("forget", lambda cur: cur.execute(
        "UPDATE events SET txn_device_id = NULL, txn_id = NULL"))
    path = next(p for number, p in available_migrations() if number == 105)
    backfill = split_statements(path.read_text())[-1]
    database.run_sync("backfill", lambda cur: cur.execute(backfill))
    found = result_of(events.get_events([item.event.event_id]))[item.event.event_id]
    assert found.unsigned["txn"] == (ALICE, "DEV", "txn1")


def test_failed_batch_leaves_nothing_behind(database: Database) -> None:
    chain, events, state = _room(database)
    first = chain.item("m.room.message", {"body": "a", "msgtype": "m.text"})
    clash = chain.item("m.room.message", {"body": "b", "msgtype": "m.text"})
    clash.stream_ordering = first.stream_ordering  # refused: stream positions are unique
    try:
        result_of(events.persist_batch([first, clash]))
    except Exception:
        pass
    else:  # pragma: no cover - the repeated stream position must be refused
        raise AssertionError("a repeated stream position was accepted")
    assert result_of(events.get_events([first.event.event_id])) == {}
    snapshot = result_of(state.load_room(chain.room_id))
    assert snapshot is not None and snapshot.extremities == [chain.events[-3].event_id]


def test_writing_an_event_already_held_is_a_no_op(database: Database) -> None:
    chain, events, state = _room(database)
    held = chain.item("m.room.name", {"name": "Third"}, "")
    result_of(events.persist_batch([held]))
    again = PersistItem(event=held.event, stream_ordering=held.stream_ordering + 100,
                        state_group_after=held.state_group_after,
                        new_state_group=held.new_state_group)
    following = chain.item("m.room.message", {"body": "after", "msgtype": "m.text"})
    written = result_of(events.persist_batch([again, following]))
    assert written == [following]
    assert result_of(events.get_stream_ordering(held.event.event_id)) == held.stream_ordering
    snapshot = result_of(state.load_room(chain.room_id))
    assert snapshot is not None and snapshot.extremities == [following.event.event_id]


def test_an_event_repeated_in_one_batch_is_written_once(database: Database) -> None:
    chain, events, _ = _room(database)
    first = chain.item("m.room.message", {"body": "a", "msgtype": "m.text"})
    repeat = PersistItem(event=first.event, stream_ordering=first.stream_ordering + 1,
                         state_group_after=first.state_group_after)
    assert result_of(events.persist_batch([first, repeat])) == [first]
    assert result_of(events.get_stream_ordering(first.event.event_id)) == first.stream_ordering


def test_an_outlier_becomes_a_timeline_event_when_written_again(database: Database) -> None:
    chain, events, _ = _room(database)
    item = chain.item("m.room.message", {"body": "a", "msgtype": "m.text"})
    outlier = PersistItem(event=item.event, stream_ordering=item.stream_ordering + 100,
                          state_group_after=None, outlier=True)
    result_of(events.persist_batch([outlier]))
    assert result_of(events.timeline_event_ids([item.event.event_id])) == set()
    assert result_of(events.persist_batch([item])) == [item]
    assert result_of(events.timeline_event_ids([item.event.event_id])) == {item.event.event_id}
