"""The relations index on both engines: written with the relating event, dropped by its
redaction, paged by stream position, and filled in the background for events stored before
it was kept."""

from __future__ import annotations

from typing import Any

from storage.database import Database
from storage.events import EventStore
from storage.relations import RelationStore
from tests.event_chain import ALICE, EventChain
from tests.storage_helpers import result_of


def _room(database: Database) -> tuple[EventChain, EventStore]:
    chain = EventChain()
    events = EventStore(database)
    result_of(events.persist_batch([
        chain.item("m.room.create", {"room_version": "12"}, ""),
        chain.item("m.room.member", {"membership": "join"}, ALICE),
        chain.item("m.room.message", {"msgtype": "m.text", "body": "root"}),
    ]))
    return chain, events


def _relating(chain: EventChain, rel_type: str, target: str, **extra: Any) -> Any:
    return chain.item("m.reaction" if rel_type == "m.annotation" else "m.room.message",
                      {"body": rel_type, "m.relates_to": {"rel_type": rel_type,
                                                          "event_id": target, **extra}})


def test_a_relation_is_indexed_with_the_event_that_declares_it(database: Database) -> None:
    chain, events = _room(database)
    root = chain.events[-1].event_id
    reaction = _relating(chain, "m.annotation", root, key="👍")
    result_of(events.persist_batch([reaction, chain.item("m.room.message", {"body": "plain"})]))
    found = result_of(RelationStore(database).relations_of([root]))
    assert [(r.event_id, r.rel_type, r.type, r.sender, r.aggregation_key) for r in found] == [
        (reaction.event.event_id, "m.annotation", "m.reaction", ALICE, "👍")]


def test_a_redacted_relation_drops_out_of_the_index(database: Database) -> None:
    chain, events = _room(database)
    root = chain.events[-1].event_id
    edit = _relating(chain, "m.replace", root)
    result_of(events.persist_batch([edit]))
    result_of(events.persist_batch([
        chain.item("m.room.redaction", {}, redacts=edit.event.event_id)]))
    assert result_of(RelationStore(database).relations_of([root])) == []


def test_relations_page_by_type_and_position_in_either_direction(database: Database) -> None:
    chain, events = _room(database)
    root = chain.events[-1].event_id
    items = [_relating(chain, "m.thread", root) for _ in range(3)]
    items.append(_relating(chain, "m.reference", root))
    result_of(events.persist_batch(items))
    store = RelationStore(database)
    threads = [i.event.event_id for i in items[:3]]
    newest = result_of(store.page(root, rel_type="m.thread", event_type=None, after=None,
                                  before=None, limit=2, backwards=True))
    assert [r.event_id for r in newest] == threads[:0:-1]
    older = result_of(store.page(root, rel_type="m.thread", event_type=None, after=None,
                                 before=newest[-1].stream_ordering, limit=2, backwards=True))
    assert [r.event_id for r in older] == threads[:1]
    forwards = result_of(store.page(root, rel_type=None, event_type="m.room.message",
                                    after=items[0].stream_ordering, before=None, limit=10,
                                    backwards=False))
    assert [r.event_id for r in forwards] == [i.event.event_id for i in items[1:]]


def test_a_users_annotation_with_a_key_is_found_until_redacted(database: Database) -> None:
    chain, events = _room(database)
    root = chain.events[-1].event_id
    reaction = _relating(chain, "m.annotation", root, key="👍")
    result_of(events.persist_batch([reaction]))
    store = RelationStore(database)
    assert result_of(store.has_annotation(root, ALICE, "👍"))
    assert not result_of(store.has_annotation(root, ALICE, "👎"))
    result_of(events.persist_batch([
        chain.item("m.room.redaction", {}, redacts=reaction.event.event_id)]))
    assert not result_of(store.has_annotation(root, ALICE, "👍"))


def test_the_fill_indexes_events_stored_before_the_index_in_resumable_steps(
        database: Database) -> None:
    chain, events = _room(database)
    root = chain.events[-1].event_id
    items = [_relating(chain, "m.thread", root) for _ in range(3)]
    result_of(events.persist_batch(items))
    top = chain.stream + 1

    def forget(cur: Any) -> None:  # as stored before migration 270
        cur.execute("DELETE FROM event_relations")
        cur.execute("DELETE FROM event_relations_fill")
        cur.execute("INSERT INTO event_relations_fill (below) VALUES (?)", (top,))

    database.run_sync("before the index", forget)
    store = RelationStore(database)
    assert result_of(store.fill_step(2))
    assert [r.event_id for r in result_of(store.relations_of([root]))] == [
        i.event.event_id for i in items[1:]]
    while result_of(store.fill_step(2)):  # until a step finds fewer events than asked for
        pass
    assert [r.event_id for r in result_of(store.relations_of([root]))] == [
        i.event.event_id for i in items]
    assert database.run_sync("left", lambda cur: cur.select_value(
        "SELECT COUNT(*) FROM event_relations_fill")) == 0
