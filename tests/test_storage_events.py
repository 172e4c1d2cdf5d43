"""Event persistence: batches, current state, state groups and redactions on both engines."""

from __future__ import annotations

from typing import Any

from federation.events import Event, build_pdu, finalize_pdu
from federation.room_versions import get_room_version
from federation.signing import generate_signing_key
from storage.database import Database
from storage.events import EventStore, NewStateGroup, PersistItem
from storage.state import StateStore
from tests.storage_helpers import result_of

V12 = get_room_version("12")
KEY = generate_signing_key("test")
ALICE = "@alice:a.test"


class _Chain:
    """Builds a linear room on top of the stores, the way the node does."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.state: dict[tuple[str, str], str] = {}
        self.room_id = ""
        self.stream = 0
        self.group = 0

    def item(self, type_: str, content: dict[str, Any], state_key: str | None = None,
             redacts: str | None = None) -> PersistItem:
        prev = [self.events[-1].event_id] if self.events else []
        pdu = build_pdu(V12, room_id=self.room_id or None, sender=ALICE, type=type_,
                        content=content, state_key=state_key, prev_event_ids=prev,
                        auth_event_ids=[], depth=len(self.events) + 1,
                        origin_server_ts=1000 + len(self.events), redacts=redacts)
        event = finalize_pdu(pdu, "a.test", KEY, V12)
        if not self.room_id:
            self.room_id = event.room_id
        self.events.append(event)
        self.stream += 1
        new_group = None
        if state_key is not None:
            self.state[(type_, state_key)] = event.event_id
            prev_group = self.group or None
            self.group += 1
            delta = {(type_, state_key): event.event_id} if prev_group else dict(self.state)
            new_group = NewStateGroup(self.group, self.room_id, prev_group,
                                      self.group - 1, delta)
        item = PersistItem(event=event, stream_ordering=self.stream,
                           state_group_after=self.group, new_state_group=new_group,
                           redaction_target=redacts)
        if type_ == "m.room.create":
            item.new_room = {"room_id": self.room_id, "room_version": "12", "creator": ALICE,
                             "created_ts": 1}
        return item


def _room(database: Database) -> tuple[_Chain, EventStore, StateStore]:
    chain = _Chain()
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


def test_failed_batch_leaves_nothing_behind(database: Database) -> None:
    chain, events, state = _room(database)
    first = chain.item("m.room.message", {"body": "a", "msgtype": "m.text"})
    duplicate = PersistItem(event=first.event, stream_ordering=first.stream_ordering + 1,
                            state_group_after=first.state_group_after)
    try:
        result_of(events.persist_batch([first, duplicate]))
    except Exception:
        pass
    else:  # pragma: no cover - the duplicate event ID must be refused
        raise AssertionError("duplicate event was accepted")
    assert result_of(events.get_events([first.event.event_id])) == {}
    snapshot = result_of(state.load_room(chain.room_id))
    assert snapshot is not None and snapshot.extremities == [chain.events[-2].event_id]
