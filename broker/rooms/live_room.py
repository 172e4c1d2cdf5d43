"""The in-memory picture of each room the node is active in.

A :class:`LiveRoom` holds the current state (as Event objects), forward extremities, depth,
state group and the most recent events, and is updated as events are created, so creating the
next event needs no database read.  :class:`RoomRegistry` loads rooms on first use and hands the
same object to every caller.  Everything here can be rebuilt from the database.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

from twisted.internet import defer

from broker.deferreds import observe
from protocol.auth_rules import auth_types_for_event
from protocol.events import Event
from protocol.room_versions import RoomVersion, get_room_version
from storage.state import StateStore

StateKey = tuple[str, str]
RECENT_EVENTS = 64


@dataclass
class LiveRoom:
    room_id: str
    room_version: RoomVersion
    state: dict[StateKey, Event]
    extremities: list[str]
    depth: int
    state_group: int
    state_group_depth: int
    last_stream: int
    is_public: bool = False
    # The newest persisted events, oldest first; complete for every stream > recent_after.
    recent: deque[Event] = field(default_factory=lambda: deque(maxlen=RECENT_EVENTS))
    recent_after: int = 0
    # Bumped on every change to state or extremities, so async work can tell it went stale.
    version: int = 0
    # Bumped when the state changes (callers that replace or edit ``state`` must call
    # :meth:`state_changed`); memberships are cached per state version.
    state_version: int = 0
    _members_cache: dict[tuple[str, ...], list[str]] = field(default_factory=dict)
    _members_cache_version: int = -1

    @property
    def create_event(self) -> Event:
        return self.state[("m.room.create", "")]

    @property
    def power_levels(self) -> Event | None:
        return self.state.get(("m.room.power_levels", ""))

    def membership_of(self, user_id: str) -> str | None:
        member = self.state.get(("m.room.member", user_id))
        return member.membership if member is not None else None

    def members_with(self, *memberships: str) -> list[str]:
        if self._members_cache_version != self.state_version:
            self._members_cache = {}
            self._members_cache_version = self.state_version
        cached = self._members_cache.get(memberships)
        if cached is None:
            cached = self._members_cache[memberships] = [
                key[1] for key, event in self.state.items()
                if key[0] == "m.room.member" and event.membership in memberships
            ]
        return cached

    def state_changed(self) -> None:
        self.state_version += 1

    def auth_events_for(self, event_type: str, sender: str, state_key: str | None,
                        content: dict[str, Any],
                        state: dict[StateKey, Event] | None = None) -> dict[StateKey, Event]:
        """The state events (current state, or ``state``) an event of this shape is
        authorised against, per the room version's auth events selection."""
        source = self.state if state is None else state
        keys = auth_types_for_event(self.room_version, event_type, sender, state_key, content)
        return {key: source[key] for key in keys if key in source}

    def auth_events_of(self, event: Event,
                       state: dict[StateKey, Event] | None = None) -> dict[StateKey, Event]:
        return self.auth_events_for(event.type, event.sender, event.state_key, event.content,
                                    state)

    def state_content(self, event_type: str, state_key: str = "") -> dict[str, Any] | None:
        event = self.state.get((event_type, state_key))
        return event.content if event is not None else None

    def add_persisted(self, event: Event, stream: int) -> None:
        """Remember a persisted event in the recent window."""
        if len(self.recent) == self.recent.maxlen:
            oldest = self.recent[0]
            self.recent_after = int(oldest.unsigned.get("stream_ordering", self.recent_after))
        self.recent.append(event)
        self.last_stream = max(self.last_stream, stream)

    def recent_since(self, after: int, up_to: int) -> list[Event] | None:
        """Persisted events with ``after < stream <= up_to`` if the window covers them."""
        if after < self.recent_after:
            return None
        return [e for e in self.recent if after < e.unsigned["stream_ordering"] <= up_to]

    def replace_recent(self, event: Event) -> None:
        for index, cached in enumerate(self.recent):
            if cached.event_id == event.event_id:
                self.recent[index] = event


class RoomRegistry:
    """Loads each room once and keeps it; concurrent loads share one database read."""

    def __init__(self, state_store: StateStore) -> None:
        self.state_store = state_store
        self._rooms: dict[str, LiveRoom] = {}
        self._loading: dict[str, defer.Deferred[LiveRoom | None]] = {}
        self._next_state_group = 0

    async def start(self) -> None:
        self._next_state_group = await self.state_store.max_state_group() + 1

    def allocate_state_group(self) -> int:
        group = self._next_state_group
        self._next_state_group += 1
        return group

    def cached(self, room_id: str) -> LiveRoom | None:
        return self._rooms.get(room_id)

    async def get(self, room_id: str) -> LiveRoom | None:
        room = self._rooms.get(room_id)
        if room is not None:
            return room
        pending = self._loading.get(room_id)
        if pending is None:
            pending = defer.ensureDeferred(self._load(room_id))
            self._loading[room_id] = pending
            pending.addBoth(self._loaded, room_id)
        return await observe(pending)

    def _loaded(self, result: Any, room_id: str) -> Any:
        self._loading.pop(room_id, None)
        return result

    async def _load(self, room_id: str) -> LiveRoom | None:
        snapshot = await self.state_store.load_room(room_id)
        if snapshot is None:
            return None
        room = self._rooms.get(room_id)
        if room is not None:  # created while we were loading
            return room
        room = LiveRoom(
            room_id=room_id,
            room_version=get_room_version(snapshot.room_version),
            state=snapshot.state,
            extremities=snapshot.extremities,
            depth=snapshot.max_depth,
            state_group=snapshot.state_group,
            state_group_depth=snapshot.state_group_depth,
            last_stream=snapshot.last_stream,
            is_public=snapshot.is_public,
            recent=deque(snapshot.recent, maxlen=RECENT_EVENTS),
            recent_after=(int(snapshot.recent[0].unsigned["stream_ordering"]) - 1
                          if snapshot.recent else snapshot.last_stream),
        )
        self._rooms[room_id] = room
        return room

    def add(self, room: LiveRoom) -> None:
        self._rooms[room.room_id] = room

    def invalidate(self, room_id: str) -> None:
        """Forget a room (after a failed write); the next use reloads it from the database."""
        self._rooms.pop(room_id, None)
