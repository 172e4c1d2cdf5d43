"""Several linear rooms written straight through the event store, for tests of loading rooms."""

from __future__ import annotations

from storage.database import Database
from storage.events import EventStore, PersistItem
from storage.state import StateStore
from tests.event_chain import ALICE, EventChain
from tests.storage_helpers import result_of


class Rooms:
    """Rooms written through the event store, each by its own chain (shared stream and state
    group numbering, as on a node)."""

    def __init__(self, database: Database) -> None:
        self.events = EventStore(database)
        self.state = StateStore(database)
        self.stream = 0
        self.group = 0
        self.chains: list[EventChain] = []

    def next_stream(self) -> int:
        self.stream += 1
        return self.stream

    def room(self, messages: int, name_changes: int = 1) -> EventChain:
        chain = EventChain(allocate=self.next_stream, first_group=self.group + 1)
        # Each create event differs (the room ID is its hash).
        items = [chain.item("m.room.create", {"room_version": "12", "n": len(self.chains)}, ""),
                 chain.item("m.room.member", {"membership": "join"}, ALICE)]
        items += [chain.item("m.room.name", {"name": f"name {i}"}, "")
                  for i in range(name_changes)]
        items += [chain.item("m.room.message", {"msgtype": "m.text", "body": f"m{i}"})
                  for i in range(messages)]
        result_of(self.events.persist_batch(items))
        self.group = chain.group
        self.chains.append(chain)
        return chain

    def write(self, *items: PersistItem) -> None:
        result_of(self.events.persist_batch(list(items)))
