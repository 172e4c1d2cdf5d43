"""Group commit isolation: an event the database refuses fails alone, on both engines.

The persister runs over a real EventStore whose transaction is made to fail (after writing its
rows, so the rollback is exercised) whenever a batch holds one of the chosen events."""

from __future__ import annotations

from typing import Any

import pytest
from twisted.internet import defer, task

from broker.clock import Clock
from broker.rooms.creator import EventCreator, EventSpec
from broker.rooms.live_room import LiveRoom, RoomRegistry
from broker.rooms.persister import BuiltOnLostEvent, EventNotStored, EventPersister
from broker.rooms.writer import RoomWriter
from protocol.events import Event
from storage.database import Cursor, Database
from storage.events import EventStore, NewStateGroup, PersistItem
from storage.state import StateStore
from storage.stream import StreamIdGenerator
from tests.event_chain import ALICE, KEY, EventChain
from tests.storage_helpers import result_of


class RefusingEventStore(EventStore):
    """Fails every transaction that writes one of ``refused`` (after writing the batch)."""

    def __init__(self, db: Database) -> None:
        super().__init__(db)
        self.refused: set[str] = set()

    def _persist_batch_txn(self, cur: Cursor, items: list[PersistItem]) -> list[PersistItem]:
        written = super()._persist_batch_txn(cur, items)
        bad = [i.event.event_id for i in items if i.event.event_id in self.refused]
        if bad:
            raise RuntimeError(f"refused {bad}")
        return written


class Harness:
    """Two rooms already stored, and a persister over the refusing store."""

    def __init__(self, database: Database) -> None:
        self.store = RefusingEventStore(database)
        self.stream = StreamIdGenerator(0)
        self.registry = RoomRegistry(StateStore(database))
        self.clock = task.Clock()
        self.notified: list[PersistItem] = []
        self.persister = EventPersister(self.store, self.stream, self.registry, self.clock,
                                        self.notified.extend)
        self.rooms = [self._stored_room(n) for n in range(2)]
        result_of(defer.ensureDeferred(self.registry.start()))

    def _stored_room(self, n: int) -> EventChain:
        chain = EventChain(lambda: self.stream.allocate(1)[0], first_group=1 + 100 * n)
        items = [chain.item("m.room.create", {"room_version": "12", "test.room": n}, ""),
                 chain.item("m.room.member", {"membership": "join"}, ALICE)]
        result_of(self.store.persist_batch(items))
        self.stream.finish([i.stream_ordering for i in items])
        return chain

    def message(self, room: int, body: str) -> PersistItem:
        return self.rooms[room].item("m.room.message", {"msgtype": "m.text", "body": body})

    def live_room(self, room: int) -> LiveRoom:
        live = result_of(defer.ensureDeferred(self.registry.get(self.rooms[room].room_id)))
        assert live is not None
        return live

    def write_together(self, refused: PersistItem,
                       *others: PersistItem) -> list[Any]:
        """Queue ``refused`` (which the store will refuse) and ``others`` in one turn, one
        send each, let the persister write them and return each send's outcome."""
        self.store.refused.add(refused.event.event_id)
        sends = [self.persister.persist([item]) for item in (refused, *others)]
        self.clock.advance(0)
        return [outcome(d) for d in sends]

    def stored(self, *items: PersistItem | Event) -> set[str]:
        ids = [i.event_id if isinstance(i, Event) else i.event.event_id for i in items]
        found: dict[str, Event] = result_of(self.store.get_events(ids))
        return set(found)


def outcome(d: defer.Deferred[Any]) -> Any:
    """The result of a fired Deferred, or the exception it failed with."""
    try:
        return result_of(d)
    except Exception as e:
        return e


@pytest.fixture
def harness(database: Database) -> Harness:
    return Harness(database)


def test_a_refused_event_fails_only_its_own_send(harness: Harness) -> None:
    bad, good = harness.message(0, "bad"), harness.message(1, "good")
    sends = harness.write_together(bad, good)
    assert isinstance(sends[0], EventNotStored)
    assert sends[1] is None
    assert harness.stored(bad, good) == {good.event.event_id}


def test_only_stored_events_reach_the_after_persist_hook(harness: Harness) -> None:
    bad, good = harness.message(0, "bad"), harness.message(1, "good")
    harness.write_together(bad, good)
    assert harness.notified == [good]


def test_the_stream_advances_past_a_refused_event(harness: Harness) -> None:
    bad, good = harness.message(0, "bad"), harness.message(1, "good")
    harness.write_together(bad, good)
    assert harness.stream.current_token() == good.stream_ordering


def test_events_built_on_a_refused_event_fail_as_lost(harness: Harness) -> None:
    bad, after = harness.message(0, "bad"), harness.message(0, "after")
    sends = harness.write_together(bad, after)
    assert isinstance(sends[0], EventNotStored)
    assert isinstance(sends[1], BuiltOnLostEvent)
    assert harness.stored(bad, after) == set()


def test_a_refused_event_drops_its_room_from_memory_and_no_other(harness: Harness) -> None:
    first, second = harness.live_room(0), harness.live_room(1)
    bad, good = harness.message(0, "bad"), harness.message(1, "good")
    harness.write_together(bad, good)
    assert harness.registry.cached(first.room_id) is None
    assert harness.registry.cached(second.room_id) is second


def test_an_event_already_stored_succeeds_without_reaching_the_hook(harness: Harness) -> None:
    held = harness.message(1, "held")
    result_of(harness.store.persist_batch([held]))
    again = PersistItem(event=held.event, stream_ordering=harness.stream.allocate(1)[0],
                        state_group_after=held.state_group_after)
    send = harness.persister.persist([again])
    harness.clock.advance(0)
    assert outcome(send) is None
    assert harness.notified == []


def test_a_send_after_a_refused_event_is_built_again_on_the_stored_room(
        harness: Harness) -> None:
    writer = RoomWriter(harness.registry, harness.persister, harness.stream)
    creator = EventCreator("a.test", KEY, harness.registry, writer, harness.store,
                           Clock(harness.clock))
    room = harness.live_room(0)
    bad = creator.build(room, EventSpec(sender=ALICE, type="m.room.message",
                                        content={"msgtype": "m.text", "body": "bad"}))
    harness.store.refused.add(bad.event.event_id)
    refused = harness.persister.persist([bad])
    spec = EventSpec(sender=ALICE, type="m.room.message",
                     content={"msgtype": "m.text", "body": "good"})
    send: defer.Deferred[Event] = defer.ensureDeferred(creator.send(room.room_id, spec))
    harness.clock.advance(0)  # the batch of both fails; the good send is built again
    harness.clock.advance(0)
    assert isinstance(outcome(refused), EventNotStored)
    event = outcome(send)
    assert isinstance(event, Event) and event.content["body"] == "good"
    assert event.prev_event_ids == [harness.rooms[0].events[-1].event_id]
    assert harness.stored(event) == {event.event_id}


def test_an_item_the_database_rejects_inside_the_transaction_fails_alone(
        harness: Harness) -> None:
    """A genuine constraint violation (the item's state group is taken), not a refusal staged
    by the test store: on PostgreSQL it aborts the shared transaction, and the neighbours are
    written again in transactions of their own."""
    before, after = harness.message(1, "before"), harness.message(1, "after")
    bad = harness.message(0, "bad")
    taken = harness.rooms[0].first_group
    bad.new_state_group = NewStateGroup(taken, bad.event.room_id, None, 0, {})
    sends = [harness.persister.persist([item]) for item in (before, bad, after)]
    harness.clock.advance(0)
    outcomes = [outcome(d) for d in sends]
    assert outcomes[0] is None and outcomes[2] is None
    assert isinstance(outcomes[1], EventNotStored)
    assert harness.stored(before, bad, after) == {before.event.event_id, after.event.event_id}
    assert harness.notified == [before, after]


def test_a_refused_entry_among_many_fails_alone_in_queue_order(harness: Harness) -> None:
    first, last = harness.message(1, "first"), harness.message(1, "last")
    bad, lost = harness.message(0, "bad"), harness.message(0, "lost")
    harness.store.refused.add(bad.event.event_id)
    sends = [harness.persister.persist([item]) for item in (first, bad, lost, last)]
    harness.clock.advance(0)
    outcomes = [outcome(d) for d in sends]
    assert outcomes[0] is None and outcomes[3] is None
    assert isinstance(outcomes[1], EventNotStored) and isinstance(outcomes[2], BuiltOnLostEvent)
    assert harness.notified == [first, last]
    # Released positions of what was not written do not hold the stream back.
    assert harness.stream.current_token() == max(
        i.stream_ordering for i in (first, bad, lost, last))
