"""The one writer of live rooms: every change to a :class:`LiveRoom`, from a local send or from
another server, goes through :meth:`RoomWriter.apply`.

``apply`` gives the event its stream position and state group, records what it replaces
(``prev_content``, ``prev_sender``, ``replaces_state``), updates the room's current state,
forward extremities and depth, and returns the :class:`PersistItem` to hand to the group commit
(:meth:`RoomWriter.persist`).  It is synchronous: nothing is awaited between reading the room and
changing it, so events applied one after another always chain.  Once events are durable,
:meth:`RoomWriter.persisted` puts them into their rooms' recent windows.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import Any

from twisted.internet import defer

from broker.rooms.live_room import RECENT_EVENTS, LiveRoom, RoomRegistry, StateKey
from broker.rooms.persister import EventPersister
from protocol.events import Event
from protocol.redaction import prune_event_dict
from protocol.room_versions import RoomVersion
from storage.events import NewStateGroup, PersistItem
from storage.stream import StreamIdGenerator

FULL_SNAPSHOT_EVERY = 100

TxnKey = tuple[str, str, str]  # (user_id, device_id, txn_id)


@dataclass(frozen=True)
class ResolvedState:
    """The state around an event that was checked against the state before it (an event from
    another server that did not simply follow the room's tip)."""

    after: dict[StateKey, str]  # the state after the event, as event IDs
    current: dict[StateKey, Event]  # the room's current state once the event is added


class RoomWriter:
    def __init__(self, registry: RoomRegistry, persister: EventPersister,
                 stream: StreamIdGenerator) -> None:
        self.registry = registry
        self.persister = persister
        self.stream = stream

    # -- changing a room ----------------------------------------------------------------------
    def apply(self, room: LiveRoom, event: Event, *, txn_key: TxnKey | None = None,
              redaction_target: str | None = None, resolved: ResolvedState | None = None
              ) -> PersistItem:
        """Apply an authorised event to ``room`` (synchronous).  ``resolved``: the state after
        the event and the room's new current state, when it is not "current state plus this
        event"; ``txn_key``: the local send's transaction ID."""
        stream = self._position(event)
        if txn_key is not None:
            event.unsigned["txn"] = txn_key
        if event.is_state():
            _note_replaced_state(room, event)
        current_state = None
        if resolved is None:
            new_group = self._extend_state(room, event)
        else:
            new_group, current_state = self._replace_state(room, event, resolved)
        referenced = set(event.prev_event_ids)
        room.extremities = [e for e in room.extremities if e not in referenced] + [
            event.event_id]
        room.depth = max(room.depth, event.depth)
        room.version += 1
        return PersistItem(
            event=event, stream_ordering=stream, state_group_after=room.state_group
            if new_group is None else new_group.group_id, new_state_group=new_group,
            txn_key=txn_key, redaction_target=redaction_target, current_state=current_state)

    def adopt(self, room_id: str, room_version: RoomVersion, join: Event,
              state: dict[StateKey, Event], outliers: Iterable[Event]) -> list[PersistItem]:
        """A room joined through another server becomes live (synchronous): ``outliers`` (its
        state and auth chain) are stored apart, and our ``join`` is the tip of a room whose
        current state is ``state`` plus the join.  Replaces any room of that ID in memory."""
        items = self.outliers(outliers)
        stream = self._position(join)
        room = LiveRoom(
            room_id=room_id, room_version=room_version, state=dict(state), extremities=[],
            depth=0, state_group=0, state_group_depth=0, last_stream=0,
            recent=deque(maxlen=RECENT_EVENTS), recent_after=stream - 1)
        _note_replaced_state(room, join)
        room.state[(join.type, join.state_key or "")] = join
        room.extremities, room.depth = [join.event_id], join.depth
        room.state_group = self.registry.allocate_state_group()
        items.append(PersistItem(
            event=join, stream_ordering=stream, state_group_after=room.state_group,
            new_state_group=NewStateGroup(room.state_group, room_id, None, 0,
                                          {k: e.event_id for k, e in room.state.items()}),
            current_state=dict(room.state)))
        self.registry.invalidate(room_id)
        self.registry.add(room)
        return items

    def outliers(self, events: Iterable[Event]) -> list[PersistItem]:
        """Items for events stored apart from the timeline (state and auth events learnt from
        other servers, soft-failed events): they change no room."""
        return [PersistItem(event=event, stream_ordering=self._position(event),
                            state_group_after=None, outlier=True) for event in events]

    def _position(self, event: Event) -> int:
        stream = self.stream.allocate(1)[0]
        event.unsigned["stream_ordering"] = stream
        return stream

    def _extend_state(self, room: LiveRoom, event: Event) -> NewStateGroup | None:
        """Add the event to current state; a state event (or the room's first event) gets a
        new state group: a delta against the room's group, or a full snapshot every
        FULL_SNAPSHOT_EVERY deltas."""
        key = (event.type, event.state_key or "")
        if event.is_state():
            room.state[key] = event
            room.state_changed()
        elif room.state_group != 0:
            return None
        group = self.registry.allocate_state_group()
        if room.state_group == 0 or room.state_group_depth >= FULL_SNAPSHOT_EVERY:
            new_group = NewStateGroup(group, room.room_id, None, 0,
                                      {k: e.event_id for k, e in room.state.items()})
        else:
            new_group = NewStateGroup(group, room.room_id, room.state_group,
                                      room.state_group_depth + 1, {key: event.event_id})
        room.state_group = group
        room.state_group_depth = new_group.delta_depth
        return new_group

    def _replace_state(self, room: LiveRoom, event: Event, resolved: ResolvedState
                       ) -> tuple[NewStateGroup, dict[StateKey, Event] | None]:
        """Make ``resolved.current`` the room's current state; the event's state group is a
        snapshot of the state after it.  Returns the group and the current state to write
        whole (None when it is simply the previous one plus the event)."""
        group = self.registry.allocate_state_group()
        new_group = NewStateGroup(group, room.room_id, None, 0, dict(resolved.after))
        extended = room.state
        if event.is_state():
            extended = {**room.state, (event.type, event.state_key or ""): event}
        simple = resolved.current == extended
        if event.is_state() or not simple:
            room.state = dict(resolved.current)
            room.state_changed()
        # Local events delta against the group of the current state; after a resolution there
        # is none yet, and the next local event writes a snapshot.
        room.state_group, room.state_group_depth = (group, 0) if simple else (0, 0)
        return new_group, None if simple else dict(resolved.current)

    # -- writing ------------------------------------------------------------------------------
    def persist(self, items: list[PersistItem]) -> defer.Deferred[None]:
        """Hand applied items to the group commit; fires once they are durable.  Their rooms
        stay pinned in memory until then (and until the after-persist hooks have run)."""
        rooms = {item.event.room_id for item in items if not item.outlier}
        pinned = [room for room in map(self.registry.cached, sorted(rooms)) if room is not None]
        for room in pinned:
            self.registry.pin(room)
        d = self.persister.persist(items)
        d.addBoth(self._unpin, pinned)
        return d

    def _unpin(self, result: Any, rooms: list[LiveRoom]) -> Any:
        for room in rooms:
            self.registry.unpin(room)
        return result

    def release(self, items: list[PersistItem]) -> None:
        """Give back the stream positions of applied items that will not be written."""
        self.stream.finish([item.stream_ordering for item in items])

    def persisted(self, items: list[PersistItem]) -> None:
        """Durable events join their rooms' recent windows; a redaction prunes its target
        there."""
        for item in items:
            room = None if item.outlier else self.registry.cached(item.event.room_id)
            if room is None:
                continue
            room.add_persisted(item.event, item.stream_ordering)
            if item.redaction_target is not None:
                _prune_recent(room, (item.redaction_target,), item.event.event_id)

    def purged(self, room_id: str, event_ids: list[str]) -> None:
        """Events whose content the retention purge removed: pruned copies replace them in
        the room's recent window, if the room is in memory."""
        room = self.registry.cached(room_id)
        if room is not None:
            _prune_recent(room, set(event_ids), None)


def _note_replaced_state(room: LiveRoom, event: Event) -> None:
    """Record in ``unsigned`` the current state event this state event replaces."""
    previous = room.state.get((event.type, event.state_key or ""))
    if previous is not None:
        event.unsigned["replaces_state"] = previous.event_id
        event.unsigned["prev_content"] = previous.content
        event.unsigned["prev_sender"] = previous.sender


def _prune_recent(room: LiveRoom, target_ids: Collection[str], redaction_id: str | None
                  ) -> None:
    """Replace the targets in the recent window with pruned copies (marked redacted by
    ``redaction_id``, unless None: content purged by retention)."""
    for cached in list(room.recent):
        if cached.event_id in target_ids:
            kept = {k: v for k, v in cached.unsigned.items() if k in ("stream_ordering", "txn")}
            if redaction_id is not None:
                kept["redacted_by"] = redaction_id
            pruned = Event(prune_event_dict(room.room_version, cached.pdu), room.room_version,
                           event_id=cached.event_id, unsigned=kept)
            room.replace_recent(pruned)
