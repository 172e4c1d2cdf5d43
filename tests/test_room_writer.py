"""The room writer applies every event to its live room the same way, local or from another
server: what it replaces, the new current state and state group, the room's tip, and the recent
window once durable (real stores, both engines)."""

from __future__ import annotations

from typing import Any

import pytest
from twisted.internet import defer, task

from broker.rooms.live_room import LiveRoom, RoomRegistry
from broker.rooms.persister import EventPersister
from broker.rooms.writer import ResolvedState, RoomWriter
from protocol.events import Event
from storage.database import Database
from storage.events import EventStore, PersistItem
from storage.state import StateStore
from storage.stream import StreamIdGenerator
from tests.event_chain import ALICE, EventChain
from tests.storage_helpers import result_of

TOPIC = ("m.room.topic", "")


class Harness:
    """A stored room (create, join, topic "first") loaded into a live room, and a writer."""

    def __init__(self, database: Database) -> None:
        self.store = EventStore(database)
        self.stream = StreamIdGenerator(0)
        self.registry = RoomRegistry(StateStore(database))
        self.clock = task.Clock()
        self.persister = EventPersister(self.store, self.stream, self.registry, self.clock,
                                        lambda items: self.writer.persisted(items))
        self.writer = RoomWriter(self.registry, self.persister, self.stream)
        self.chain = EventChain(lambda: self.stream.allocate(1)[0])
        items = [self.chain.item("m.room.create", {"room_version": "12"}, ""),
                 self.chain.item("m.room.member", {"membership": "join"}, ALICE),
                 self.chain.item("m.room.topic", {"topic": "first"}, "")]
        result_of(self.store.persist_batch(items))
        self.stream.finish([i.stream_ordering for i in items])
        result_of(defer.ensureDeferred(self.registry.start()))
        room = result_of(defer.ensureDeferred(self.registry.get(self.chain.room_id)))
        assert room is not None
        self.room: LiveRoom = room
        self.first_topic = self.room.state[TOPIC]

    def event(self, type_: str, content: dict[str, Any], state_key: str | None = None
              ) -> Event:
        """The room's next event (following the previous one)."""
        return self.chain.item(type_, content, state_key).event

    def resolved(self, current: dict[tuple[str, str], Event]) -> ResolvedState:
        return ResolvedState(after={k: e.event_id for k, e in current.items()},
                             current=current)

    def write(self, items: list[PersistItem]) -> None:
        d = self.writer.persist(items)
        self.clock.advance(0)
        result_of(d)


@pytest.fixture
def harness(database: Database) -> Harness:
    return Harness(database)


def test_a_state_event_records_the_content_and_sender_it_replaces(harness: Harness) -> None:
    topic = harness.event("m.room.topic", {"topic": "second"}, "")
    harness.writer.apply(harness.room, topic)
    assert topic.unsigned["prev_content"] == {"topic": "first"}
    assert topic.unsigned["prev_sender"] == ALICE
    assert topic.unsigned["replaces_state"] == harness.first_topic.event_id
    assert harness.room.state[TOPIC] is topic


def test_an_event_checked_against_resolved_state_records_what_it_replaces_the_same_way(
        harness: Harness) -> None:
    topic = harness.event("m.room.topic", {"topic": "second"}, "")
    current = {**harness.room.state, TOPIC: topic}
    harness.writer.apply(harness.room, topic, resolved=harness.resolved(current))
    assert topic.unsigned["prev_content"] == {"topic": "first"}
    assert topic.unsigned["prev_sender"] == ALICE
    assert topic.unsigned["replaces_state"] == harness.first_topic.event_id


def test_a_state_event_gets_a_delta_state_group_on_the_rooms_group(harness: Harness) -> None:
    group_before = harness.room.state_group
    item = harness.writer.apply(harness.room, harness.event("m.room.topic", {"topic": "2"}, ""))
    assert item.new_state_group is not None
    assert item.new_state_group.prev_group == group_before
    assert item.new_state_group.delta == {TOPIC: item.event.event_id}
    assert harness.room.state_group == item.state_group_after == item.new_state_group.group_id


def test_a_message_keeps_the_rooms_state_group(harness: Harness) -> None:
    group_before = harness.room.state_group
    item = harness.writer.apply(harness.room, harness.event("m.room.message", {"body": "hi"}))
    assert item.new_state_group is None
    assert item.state_group_after == group_before == harness.room.state_group


def test_a_resolution_that_changes_other_state_replaces_current_state_whole(
        harness: Harness) -> None:
    message = harness.event("m.room.message", {"body": "after a fork"})
    current = {k: e for k, e in harness.room.state.items() if k != TOPIC}
    item = harness.writer.apply(harness.room, message,
                                resolved=harness.resolved(current))
    assert item.current_state == current
    assert TOPIC not in harness.room.state
    assert harness.room.state_group == 0  # the next local event writes a snapshot


def test_applied_events_become_the_rooms_tip_in_stream_order(harness: Harness) -> None:
    first = harness.writer.apply(harness.room, harness.event("m.room.message", {"body": "1"}))
    second = harness.writer.apply(harness.room, harness.event("m.room.message", {"body": "2"}))
    assert harness.room.extremities == [second.event.event_id]
    assert first.stream_ordering < second.stream_ordering
    assert second.event.unsigned["stream_ordering"] == second.stream_ordering


def test_events_join_the_recent_window_once_durable(harness: Harness) -> None:
    item = harness.writer.apply(harness.room, harness.event("m.room.message", {"body": "hi"}))
    assert harness.room.recent[-1].event_id != item.event.event_id
    harness.write([item])
    assert harness.room.recent[-1] is item.event


def test_a_redaction_prunes_its_target_in_the_recent_window_keeping_its_send_transaction(
        harness: Harness) -> None:
    message = harness.writer.apply(harness.room, harness.event("m.room.message", {"body": "x"}),
                                   txn_key=(ALICE, "DEVICE", "t1"))
    harness.write([message])
    redaction = harness.chain.item("m.room.redaction", {}, redacts=message.event.event_id).event
    harness.write([harness.writer.apply(harness.room, redaction,
                                        redaction_target=message.event.event_id)])
    pruned = next(e for e in harness.room.recent if e.event_id == message.event.event_id)
    assert pruned.content == {}
    assert pruned.unsigned["redacted_by"] == redaction.event_id
    assert pruned.unsigned["txn"] == (ALICE, "DEVICE", "t1")


def test_outliers_get_stream_positions_and_change_no_room(harness: Harness) -> None:
    extremities, state = list(harness.room.extremities), dict(harness.room.state)
    [item] = harness.writer.outliers([harness.event("m.room.topic", {"topic": "aside"}, "")])
    assert item.outlier and item.state_group_after is None
    assert item.event.unsigned["stream_ordering"] == item.stream_ordering
    assert harness.room.extremities == extremities and harness.room.state == state


def test_a_room_joined_through_another_server_becomes_live_with_the_join_as_its_tip(
        harness: Harness) -> None:
    state = dict(harness.room.state)
    outlier = harness.event("m.room.topic", {"topic": "from the auth chain"}, "")
    join = harness.event("m.room.member", {"membership": "join", "displayname": "A"}, ALICE)
    items = harness.writer.adopt(harness.room.room_id, harness.room.room_version, join, state,
                                 [outlier])
    room = harness.registry.cached(harness.room.room_id)
    assert room is not None and room is not harness.room
    assert room.extremities == [join.event_id]
    assert room.state == {**state, ("m.room.member", ALICE): join}
    assert join.unsigned["prev_content"] == {"membership": "join"}
    assert [item.outlier for item in items] == [True, False]
    assert items[0].stream_ordering < items[1].stream_ordering
    assert items[1].current_state == room.state
    assert items[1].new_state_group is not None
    assert items[1].new_state_group.delta == {k: e.event_id for k, e in room.state.items()}
