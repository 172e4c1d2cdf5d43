"""The retention store on both engines: a batch prunes the oldest expired non-state events of
one room, never state events, never another room's, never an event sent at or after the
cutoff; what is purged is not read again, so batches (and a restart) go on where they stopped;
the rooms' stated policies and creators are read from current state; copies of purged events
still queued for other servers are pruned too."""

from __future__ import annotations

import json
from typing import Any

from storage.database import Database
from storage.federation_queue import FederationQueueStore, NewPdu
from storage.retention import RetentionStore
from tests.event_chain import ALICE, EventChain
from tests.storage_helpers import result_of
from tests.stored_rooms import Rooms

# EventChain sends its n-th event at 1000 + n: create 1000, member 1001, name 1002, m0 1003...
AFTER_M2 = 1006


def _content(database: Database, event_id: str) -> object:
    row = result_of(database.run_interaction("test_content", lambda cur: cur.select_one(
        "SELECT json FROM events WHERE event_id = ?", (event_id,))))
    return json.loads(row[0])["content"]


def _messages(chain: EventChain) -> list[str]:
    return [e.event_id for e in chain.events if e.type == "m.room.message"]


def test_a_batch_prunes_the_oldest_expired_messages_of_the_room(database: Database) -> None:
    chain = Rooms(database).room(messages=5)
    store = RetentionStore(database)
    purged = result_of(store.purge_batch(chain.room_id, AFTER_M2, 2))
    assert purged == _messages(chain)[:2]
    assert [_content(database, e) for e in _messages(chain)] == [
        {}, {}, {"msgtype": "m.text", "body": "m2"}, {"msgtype": "m.text", "body": "m3"},
        {"msgtype": "m.text", "body": "m4"}]


def test_batches_go_on_where_the_last_one_stopped(database: Database) -> None:
    chain = Rooms(database).room(messages=5)
    store = RetentionStore(database)
    result_of(store.purge_batch(chain.room_id, AFTER_M2, 2))
    assert result_of(store.purge_batch(chain.room_id, AFTER_M2, 2)) == [_messages(chain)[2]]
    assert result_of(store.purge_batch(chain.room_id, AFTER_M2, 2)) == []
    assert result_of(store.pending(chain.room_id, AFTER_M2)) == 0


def test_state_events_and_other_rooms_are_not_purged(database: Database) -> None:
    rooms = Rooms(database)
    chain, other = rooms.room(messages=1), rooms.room(messages=1)
    result_of(RetentionStore(database).purge_batch(chain.room_id, 10**12, 100))
    name = next(e.event_id for e in chain.events if e.type == "m.room.name")
    assert _content(database, name) == {"name": "name 0"}
    assert _content(database, _messages(other)[0]) == {"msgtype": "m.text", "body": "m0"}


def test_a_purged_event_keeps_its_place_in_the_dag(database: Database) -> None:
    chain = Rooms(database).room(messages=2)
    result_of(RetentionStore(database).purge_batch(chain.room_id, 10**12, 100))
    row = result_of(database.run_interaction("test_row", lambda cur: cur.select_one(
        "SELECT json FROM events WHERE event_id = ?", (chain.events[-1].event_id,))))
    pruned = json.loads(row[0])
    assert pruned["prev_events"] == [chain.events[-2].event_id]
    assert pruned["auth_events"] == chain.events[-1].auth_event_ids
    assert pruned["sender"] == ALICE


def test_the_stated_policies_are_read_from_current_state(database: Database) -> None:
    rooms = Rooms(database)
    chain = rooms.room(messages=0)
    item = chain.item("m.room.retention", {"max_lifetime": 60_000}, "")
    result_of(rooms.events.persist_batch([item]))
    stated = result_of(RetentionStore(database).stated_policies())
    assert {room: json.loads(raw)["content"] for room, raw in stated.items()} == {
        chain.room_id: {"max_lifetime": 60_000}}


def test_the_queued_copy_of_a_purged_event_is_pruned_too(database: Database) -> None:
    chain = Rooms(database).room(messages=2)
    first, second = _messages(chain)
    queue = FederationQueueStore(database)
    result_of(queue.enqueue([NewPdu("b.example", e, chain_pdu(chain, e))
                             for e in (first, second)]))
    result_of(RetentionStore(database).purge_batch(chain.room_id, AFTER_M2 - 2, 100))  # m0
    queued = {p.event_id: p.pdu for p in result_of(queue.get_batch("b.example")).pdus}
    assert (queued[first]["content"], queued[second]["content"]["body"]) == ({}, "m1")


def chain_pdu(chain: EventChain, event_id: str) -> dict[str, Any]:
    return dict(next(e for e in chain.events if e.event_id == event_id).pdu)


def test_each_rooms_creator_is_read_from_its_create_event(database: Database) -> None:
    rooms = Rooms(database)
    chain = rooms.room(messages=0)
    assert result_of(RetentionStore(database).room_creators()) == {chain.room_id: ALICE}
