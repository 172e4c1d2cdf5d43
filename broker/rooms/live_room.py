"""The in-memory picture of each room the node is active in.

A :class:`LiveRoom` holds the current state (as Event objects), forward extremities, depth,
state group and the most recent events, and is updated as events are created, so creating the
next event needs no database read.  :class:`RoomRegistry` loads rooms on first use and hands the
same object to every caller; it keeps a budget of the rooms used last (see
:mod:`broker.rooms.room_cache`) and reloads a forgotten one from the database on its next use.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from twisted.internet import defer

from broker.deferreds import observe
from broker.rooms.room_cache import LiveRoomCache
from protocol.auth_rules import auth_types_for_event
from protocol.events import Event
from protocol.room_versions import RoomVersion, get_room_version
from storage.room_snapshots import RoomSnapshot
from storage.state import StateStore

StateKey = tuple[str, str]
RECENT_EVENTS = 64
# Rooms kept in memory after their last use (the ``caches.live_rooms`` config key).
DEFAULT_LIVE_ROOMS = 2_500


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
    # Bumped when an event of the recent window is replaced (redacted).
    recent_version: int = 0
    # The last answer of :meth:`recent_since`: every member of a room woken by one event asks
    # the same question.  (after, up_to, recent_version, answer)
    _recent_answer: tuple[int, int, int, list[Event]] | None = None

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
        kept = self._recent_answer
        if kept is not None and kept[0] == after and kept[1] == up_to \
                and kept[2] == self.recent_version:
            return kept[3]
        # Events at or before ``up_to`` are all persisted (the stream's current position), so
        # the answer for a range only changes when an event in it is replaced.
        answer = [e for e in self.recent if after < e.unsigned["stream_ordering"] <= up_to]
        self._recent_answer = (after, up_to, self.recent_version, answer)
        return answer

    def older_history_added(self) -> None:
        """Events older than the recent window were stored (backfill): it still holds every
        stream position after ``recent_after``, but no longer the room's whole timeline."""
        if self.recent_after == 0:
            self.recent_after = (int(self.recent[0].unsigned["stream_ordering"]) - 1
                                 if self.recent else self.last_stream)

    def replace_recent(self, event: Event) -> None:
        for index, cached in enumerate(self.recent):
            if cached.event_id == event.event_id:
                self.recent[index] = event
                self.recent_version += 1


class RoomRegistry:
    """Loads each room on first use and keeps the ``budget`` rooms used last (and any room
    still held or pinned by a write in flight); concurrent loads share one database read."""

    def __init__(self, state_store: StateStore, budget: int = DEFAULT_LIVE_ROOMS) -> None:
        self.state_store = state_store
        self._rooms = LiveRoomCache(budget)
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
            pending = self._start_loading([room_id])[room_id]
        return await observe(pending)

    async def get_many(self, room_ids: Iterable[str]) -> dict[str, LiveRoom]:
        """Those of ``room_ids`` we hold, by room ID (unknown rooms are absent): the rooms not
        in memory are read together in one batch; loads already under way are shared."""
        found: dict[str, LiveRoom] = {}
        pending: dict[str, defer.Deferred[LiveRoom | None]] = {}
        missing: list[str] = []
        for room_id in dict.fromkeys(room_ids):
            room = self._rooms.get(room_id)
            if room is not None:
                found[room_id] = room
            elif room_id in self._loading:
                pending[room_id] = self._loading[room_id]
            else:
                missing.append(room_id)
        if missing:
            pending.update(self._start_loading(missing))
        for room_id, loading in pending.items():
            loaded = await observe(loading)
            if loaded is not None:
                found[room_id] = loaded
        return found

    def _start_loading(self, room_ids: list[str]) -> dict[str, defer.Deferred[LiveRoom | None]]:
        """One batch read of ``room_ids`` (none of them in memory or loading), with a Deferred
        per room that other callers can share until it fires."""
        batch = defer.ensureDeferred(self._load(room_ids))
        per_room: dict[str, defer.Deferred[LiveRoom | None]] = {}
        for room_id in room_ids:
            loading = observe(batch).addCallback(_room_of, room_id)
            self._loading[room_id] = per_room[room_id] = loading
            loading.addBoth(self._loaded, room_id)
        return per_room

    def _loaded(self, result: Any, room_id: str) -> Any:
        self._loading.pop(room_id, None)
        return result

    async def _load(self, room_ids: list[str]) -> dict[str, LiveRoom]:
        snapshots = await self.state_store.load_rooms(room_ids)
        rooms: dict[str, LiveRoom] = {}
        for room_id, snapshot in snapshots.items():
            room = self._rooms.get(room_id)
            if room is None:  # not created while we were loading
                room = _live_room(snapshot)
                self._rooms[room_id] = room
            rooms[room_id] = room
        return rooms

    def add(self, room: LiveRoom) -> None:
        self._rooms[room.room_id] = room

    def invalidate(self, room_id: str) -> None:
        """Forget a room (after a failed write); the next use reloads it from the database."""
        self._rooms.pop(room_id)

    def pin(self, room: LiveRoom) -> None:
        """Keep ``room`` in memory, whatever the budget, until :meth:`unpin` (a write of it is
        in flight: the database does not hold yet what the room shows)."""
        self._rooms.pin(room)

    def unpin(self, room: LiveRoom) -> None:
        self._rooms.unpin(room)

    def in_memory(self) -> int:
        """How many rooms are in memory."""
        return len(self._rooms)


def _room_of(rooms: dict[str, LiveRoom], room_id: str) -> LiveRoom | None:
    return rooms.get(room_id)


def _live_room(snapshot: RoomSnapshot) -> LiveRoom:
    """A live room from what the database holds.  Its recent window covers every stream
    position after the first event loaded, or every position after 0 when the room has fewer
    events than were asked for (its whole timeline, none of it backfilled)."""
    recent = snapshot.recent
    # A recent event that is also current state is one object: share its strings once.
    share_strings(snapshot.room_id, list(dict.fromkeys([*snapshot.state.values(), *recent])))
    first = int(recent[0].unsigned["stream_ordering"]) if recent else snapshot.last_stream + 1
    whole = snapshot.recent_complete and first > 0
    return LiveRoom(
        room_id=snapshot.room_id,
        room_version=get_room_version(snapshot.room_version),
        state=snapshot.state,
        extremities=snapshot.extremities,
        depth=snapshot.max_depth,
        state_group=snapshot.state_group,
        state_group_depth=snapshot.state_group_depth,
        last_stream=snapshot.last_stream,
        is_public=snapshot.is_public,
        recent=deque(recent, maxlen=RECENT_EVENTS),
        recent_after=0 if whole else first - 1,
    )


def share_strings(room_id: str, events: list[Event]) -> None:
    """Make events read from the database hold one copy of each string they repeat: the room
    ID, senders, types, message types and memberships, and the IDs of the events they cite
    (the cited event's own ID string).  The values stay equal, so nothing that reads them
    changes; it costs ~3 µs per event and saves about a sixth of a loaded room."""
    seen = {room_id: room_id}
    for event in events:
        seen.setdefault(event.event_id, event.event_id)
    for event in events:
        _share(event.pdu, _SHARED_FIELDS, seen)
        content = event.pdu.get("content")
        if isinstance(content, dict):
            _share(content, _SHARED_CONTENT, seen)
        for key in ("prev_events", "auth_events"):
            cited = event.pdu.get(key)
            if isinstance(cited, list):
                event.pdu[key] = [seen.get(i, i) if isinstance(i, str) else i for i in cited]


_SHARED_FIELDS = ("room_id", "sender", "type")
_SHARED_CONTENT = ("msgtype", "membership")


def _share(fields: dict[str, Any], keys: tuple[str, ...], seen: dict[str, str]) -> None:
    for key in keys:
        value = fields.get(key)
        if isinstance(value, str):
            fields[key] = seen.setdefault(value, value)
