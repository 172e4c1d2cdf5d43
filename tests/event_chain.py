"""A linear room built on top of the stores the way the node does, for storage and persister
tests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from protocol.events import Event, build_pdu, finalize_pdu
from protocol.room_versions import get_room_version
from protocol.signing import generate_signing_key
from storage.events import NewStateGroup, PersistItem

V12 = get_room_version("12")
KEY = generate_signing_key("test")
ALICE = "@alice:a.test"


class EventChain:
    """Builds a linear room on top of the stores, the way the node does."""

    def __init__(self, allocate: Callable[[], int] | None = None, first_group: int = 1) -> None:
        """``allocate`` hands out stream positions (a StreamIdGenerator's, say); by default
        the chain counts its own from 1.  State groups are numbered from ``first_group``."""
        self.allocate = allocate
        self.events: list[Event] = []
        self.state: dict[tuple[str, str], str] = {}
        self.room_id = ""
        self.stream = 0
        self.group = first_group - 1
        self.first_group = first_group

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
        self.stream = self.allocate() if self.allocate is not None else self.stream + 1
        new_group = None
        if state_key is not None:
            self.state[(type_, state_key)] = event.event_id
            prev_group = self.group if self.group >= self.first_group else None
            self.group += 1
            delta = {(type_, state_key): event.event_id} if prev_group else dict(self.state)
            new_group = NewStateGroup(self.group, self.room_id, prev_group,
                                      self.group - self.first_group, delta)
        item = PersistItem(event=event, stream_ordering=self.stream,
                           state_group_after=self.group, new_state_group=new_group,
                           redaction_target=redacts)
        if type_ == "m.room.create":
            item.new_room = {"room_id": self.room_id, "room_version": "12", "creator": ALICE,
                             "created_ts": 1}
        return item
