"""A room forgotten mid-conversation (a budget of one live room) behaves as if it had stayed in
memory: the next send chains on its tip, sync and /messages see the whole conversation, the
reloaded room answers as before, and a room with a write in flight is never forgotten.  In
process on a fake clock, on both engines."""

from __future__ import annotations

import gc
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from broker.auth import Requester
from broker.filtering import EventFilter, Filter
from broker.rooms.create_room import CreateRoomRequest
from broker.rooms.creator import EventSpec
from broker.rooms.live_room import LiveRoom
from broker.services.history import PageQuery
from broker.sync.handler import SyncRequest
from broker.sync.tokens import SyncToken
from protocol.events import Event
from tests.inprocess_node import InProcessNode
from tests.storage_helpers import result_of

T = TypeVar("T")

TINY = {"caches": {"live_rooms": 1, "user_rooms": 1, "tokens": 1}}


@pytest.fixture(params=["sqlite", "postgres"])
def tiny(request: Any, tmp_path: Path) -> Iterator[InProcessNode]:
    """An in-process node that keeps one live room (and one user's rooms, one token)."""
    harness = InProcessNode(tmp_path, engine=request.param, config=TINY)
    try:
        yield harness
    finally:
        harness.close()


class Conversation:
    """Alice's room, another room whose use pushes hers out of memory, and helpers."""

    def __init__(self, local: InProcessNode) -> None:
        self.local = local
        self.node = local.node
        self.alice, _ = local.register("alice")
        self.room_id = self.create_room("talk")
        self.other_id = self.create_room("elsewhere")

    def written(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """The result of a coroutine that writes events (once the group commit has run)."""
        d = self.local.start(coroutine)
        self.local.advance(0)
        return result_of(d)

    def create_room(self, name: str) -> str:
        self.local.advance(1)  # rooms v12 take their ID from the create event and its time
        return self.written(self.node.new_rooms.create(CreateRoomRequest(
            creator=self.alice.user_id, preset="private_chat", name=name)))

    def send(self, body: str) -> Event:
        return self.written(self.node.rooms.send(
            self.room_id, self.alice.user_id, "m.room.message",
            {"msgtype": "m.text", "body": body}))

    def evict(self) -> None:
        """Use the other room, so Alice's room is beyond the budget and nobody holds it."""
        self.local.run(self.node.rooms.get_room(self.other_id))
        gc.collect()
        assert self.room_id not in self.node.rooms.registry._rooms

    def live(self) -> LiveRoom:
        return self.local.run(self.node.rooms.get_room(self.room_id))

    def sync(self, since: str | None = None) -> dict[str, Any]:
        request = SyncRequest(self.alice, SyncToken.parse(since) if since else None, Filter())
        return self.local.run(self.node.sync.sync(request))

    def timeline(self, body: dict[str, Any]) -> list[str]:
        joined = body["rooms"]["join"].get(self.room_id, {})
        return [e["event_id"] for e in joined.get("timeline", {}).get("events", [])]

    def messages(self) -> list[str]:
        history = self.node.history
        reader = self.local.run(history.reader(self.alice.user_id, self.alice.device_id,
                                               self.room_id))
        page = self.local.run(history.messages(reader, PageQuery(
            backwards=True, limit=50, flt=EventFilter(), start=None, to=None)))
        return [e["event_id"] for e in page["chunk"]]


@pytest.fixture
def talk(tiny: InProcessNode) -> Conversation:
    return Conversation(tiny)


def _answers(room: LiveRoom) -> dict[str, Any]:
    """What the room in memory answers (its recent window compared from its oldest event)."""
    return {
        "state": {key: event.event_id for key, event in room.state.items()},
        "extremities": sorted(room.extremities), "depth": room.depth,
        "state_group": (room.state_group, room.state_group_depth),
        "last_stream": room.last_stream, "joined": room.members_with("join"),
        "invited": room.members_with("join", "invite"), "public": room.is_public,
        "create": room.create_event.event_id,
    }


def test_the_next_send_after_eviction_chains_on_the_rooms_tip(talk: Conversation) -> None:
    first = talk.send("before")
    talk.evict()
    second = talk.send("after")
    assert second.prev_event_ids == [first.event_id]
    assert second.depth == first.depth + 1


def test_a_reloaded_room_answers_as_it_did_in_memory(talk: Conversation) -> None:
    talk.send("one")
    before = talk.live()
    answers, recent = _answers(before), [e.event_id for e in before.recent]
    del before
    talk.evict()
    after = talk.live()
    assert _answers(after) == answers
    reloaded = [e.event_id for e in after.recent]
    assert reloaded == recent[-len(reloaded):]
    assert after.recent_since(after.recent_after, after.last_stream) == list(after.recent)


def test_incremental_sync_across_evictions_reports_every_message(talk: Conversation) -> None:
    since = talk.sync()["next_batch"]
    first = talk.send("one")
    talk.evict()
    second = talk.send("two")
    talk.evict()
    assert talk.timeline(talk.sync(since)) == [first.event_id, second.event_id]


def test_initial_sync_after_eviction_is_the_same_as_before(talk: Conversation) -> None:
    talk.send("one")
    before = talk.sync()["rooms"]["join"][talk.room_id]
    talk.evict()
    assert talk.sync()["rooms"]["join"][talk.room_id] == before


def test_messages_after_eviction_pages_the_whole_conversation(talk: Conversation) -> None:
    first = talk.send("one")
    expected = talk.messages()
    talk.evict()
    second = talk.send("two")
    talk.evict()
    assert talk.messages() == [second.event_id, *expected]
    assert expected[0] == first.event_id


def test_a_room_with_a_write_in_flight_is_not_forgotten(talk: Conversation) -> None:
    """Nothing but the write holds the room (as for an event from another server)."""
    rooms = talk.node.rooms
    item = rooms.creator.build(talk.live(), EventSpec(
        sender=talk.alice.user_id, type="m.room.message", content={"body": "1"}))
    written = rooms.writer.persist([item])
    talk.local.run(rooms.get_room(talk.other_id))
    gc.collect()
    assert talk.room_id in rooms.registry._rooms
    talk.local.advance(0)
    result_of(written)
    assert talk.send("2").prev_event_ids == [item.event.event_id]


def test_a_room_is_forgotten_once_its_write_is_durable(talk: Conversation) -> None:
    talk.send("one")
    talk.evict()  # asserts it is out of memory
    assert talk.node.rooms.registry._rooms.pinned() == 0


def test_a_caller_holding_a_room_and_a_later_caller_share_one_object(
        talk: Conversation) -> None:
    held = talk.live()
    talk.local.run(talk.node.rooms.get_room(talk.other_id))
    gc.collect()
    assert talk.live() is held
    event = talk.send("seen by both")
    assert held.extremities == [event.event_id]


def test_a_user_beyond_the_index_budget_is_read_again_with_their_rooms(
        talk: Conversation) -> None:
    index = talk.node.rooms.user_rooms
    bob: Requester = talk.local.register("bob")[0]
    talk.local.run(index.rooms_for_user(bob.user_id))  # Alice's rooms leave memory
    rooms = talk.local.run(index.rooms_for_user(talk.alice.user_id))
    assert rooms == {talk.room_id: "join", talk.other_id: "join"}


def test_a_membership_change_of_a_user_not_in_memory_is_read_from_the_database(
        talk: Conversation) -> None:
    index = talk.node.rooms.user_rooms
    bob: Requester = talk.local.register("bob")[0]
    talk.local.run(index.rooms_for_user(bob.user_id))
    third = talk.create_room("third")
    assert talk.local.run(index.joined_rooms(talk.alice.user_id)) == [
        talk.room_id, talk.other_id, third]


def test_a_reloaded_rooms_events_share_the_strings_they_repeat(talk: Conversation) -> None:
    first, second = talk.send("one"), talk.send("two")
    talk.evict()
    room = talk.live()
    reloaded = {e.event_id: e for e in room.recent}
    older, newer = reloaded[first.event_id], reloaded[second.event_id]
    assert newer.pdu == second.pdu and older.pdu == first.pdu
    assert newer.pdu["room_id"] is room.room_id
    assert newer.pdu["sender"] is older.pdu["sender"]
    assert newer.pdu["prev_events"][0] is older.event_id
