"""Loading room state at past events and resolving forks with the room version's algorithm.

Used when events arrive from other servers: the state before an event is the state after its
prev_events, resolved with state resolution v2 / v2.1 when they disagree.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from protocol.events import Event
from protocol.room_versions import RoomVersion
from protocol.state_res import resolve_state

if TYPE_CHECKING:
    from broker.rooms.live_room import RoomRegistry
    from storage.events import EventStore
    from storage.state import StateStore

StateKey = tuple[str, str]
StateIds = dict[StateKey, str]


class StateLoader:
    def __init__(self, registry: RoomRegistry, state: StateStore, events: EventStore) -> None:
        self.registry = registry
        self.state = state
        self.events = events

    async def state_ids_after(self, room_id: str, event_id: str) -> StateIds | None:
        """The state after ``event_id`` as IDs (None when we do not hold it)."""
        room = self.registry.cached(room_id)
        if room is not None and room.extremities == [event_id]:
            return {key: event.event_id for key, event in room.state.items()}
        return await self.state.get_state_ids_at_event(event_id)

    async def resolve(self, room_version: RoomVersion, state_sets: list[StateIds],
                      pending: Sequence[Event] = ()) -> StateIds:
        """Resolve several states into one; cheap when they do not conflict.  ``pending``
        are events not written yet (the one being accepted) that the states may name."""
        if not state_sets:
            return {}
        if len(state_sets) == 1 or all(s == state_sets[0] for s in state_sets[1:]):
            return dict(state_sets[0])
        keys = set().union(*state_sets)
        if all(len({s.get(k) for s in state_sets}) == 1 for k in keys):
            return dict(state_sets[0])
        known = {e.event_id: e for e in pending}
        wanted = {event_id for state in state_sets for event_id in state.values()}
        wanted |= {a for e in pending for a in e.auth_event_ids}
        event_map = await self.load_with_auth_chains(wanted - set(known))
        event_map.update(known)
        return resolve_state(room_version, state_sets, event_map)

    async def load_with_auth_chains(self, event_ids: set[str]) -> dict[str, Event]:
        """The events and every event in their auth chains that we hold."""
        events: dict[str, Event] = {}
        frontier = set(event_ids)
        while frontier:
            found = await self.events.get_events(sorted(frontier))
            events.update(found)
            frontier = {a for e in found.values() for a in e.auth_event_ids} - set(events)
            frontier -= {eid for eid in frontier if eid in events}
            if not found:
                break
        return events

    async def events_for(self, state: StateIds) -> dict[StateKey, Event]:
        found = await self.events.get_events(state.values())
        return {key: found[event_id] for key, event_id in state.items() if event_id in found}
