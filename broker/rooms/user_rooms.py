"""Which rooms each local user is in, kept in memory for the ``budget`` users asked about last
and updated as membership events persist; a user beyond the budget is read again from the
database on next use (one query)."""

from __future__ import annotations

from typing import Any

from cachetools import LRUCache
from twisted.internet import defer
from twisted.python.failure import Failure

from broker.deferreds import observe
from protocol.events import Event
from storage.state import StateStore

# Users whose rooms are kept in memory (the ``caches.user_rooms`` config key).
DEFAULT_USER_ROOMS = 20_000

# A change to a user's rooms seen while they were being read: (room_id, membership or None
# for "forget").
_Change = tuple[str, str | None]


class UserRoomsIndex:
    def __init__(self, state_store: StateStore, budget: int = DEFAULT_USER_ROOMS) -> None:
        self.state_store = state_store
        self._by_user: LRUCache[str, dict[str, str]] = LRUCache(maxsize=budget)
        self._loading: dict[str, defer.Deferred[dict[str, str]]] = {}
        # Changes that arrived while a user's rooms were being read: applied on top of what
        # was read, as the read may or may not include them.
        self._changes: dict[str, list[_Change]] = {}

    async def rooms_for_user(self, user_id: str) -> dict[str, str]:
        """room_id -> membership ("join", "invite", "leave", "ban", "knock")."""
        rooms = self._by_user.get(user_id)
        if rooms is not None:
            return rooms
        pending = self._loading.get(user_id)
        if pending is None:
            self._changes[user_id] = []
            pending = self.state_store.get_rooms_for_user(user_id)
            self._loading[user_id] = pending
            pending.addBoth(self._loaded, user_id)
        return await observe(pending)

    def _loaded(self, result: Any, user_id: str) -> Any:
        self._loading.pop(user_id, None)
        changes = self._changes.pop(user_id, [])
        if isinstance(result, Failure):
            return result
        for room_id, membership in changes:
            _apply(result, room_id, membership)
        self._by_user[user_id] = result
        return result

    async def joined_rooms(self, user_id: str) -> list[str]:
        rooms = await self.rooms_for_user(user_id)
        return [room_id for room_id, membership in rooms.items() if membership == "join"]

    def on_membership(self, event: Event) -> None:
        """Record a persisted m.room.member event (only users in memory need it)."""
        assert event.state_key is not None and event.membership is not None
        self._change(event.state_key, event.room_id, event.membership)

    def forget(self, user_id: str, room_id: str) -> None:
        self._change(user_id, room_id, None)

    def _change(self, user_id: str, room_id: str, membership: str | None) -> None:
        changes = self._changes.get(user_id)
        if changes is not None:
            changes.append((room_id, membership))
        rooms = self._by_user.get(user_id)
        if rooms is not None:
            _apply(rooms, room_id, membership)

    def in_memory(self) -> int:
        """How many users' rooms are in memory."""
        return len(self._by_user)


def _apply(rooms: dict[str, str], room_id: str, membership: str | None) -> None:
    if membership is None:
        rooms.pop(room_id, None)
    else:
        rooms[room_id] = membership
