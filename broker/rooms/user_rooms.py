"""Which rooms each local user is in, kept in memory and updated as membership events persist."""

from __future__ import annotations

from protocol.events import Event
from storage.state import StateStore


class UserRoomsIndex:
    def __init__(self, state_store: StateStore) -> None:
        self.state_store = state_store
        self._by_user: dict[str, dict[str, str]] = {}

    async def rooms_for_user(self, user_id: str) -> dict[str, str]:
        """room_id -> membership ("join", "invite", "leave", "ban", "knock")."""
        rooms = self._by_user.get(user_id)
        if rooms is None:
            rooms = await self.state_store.get_rooms_for_user(user_id)
            self._by_user.setdefault(user_id, rooms)
            rooms = self._by_user[user_id]
        return rooms

    async def joined_rooms(self, user_id: str) -> list[str]:
        rooms = await self.rooms_for_user(user_id)
        return [room_id for room_id, membership in rooms.items() if membership == "join"]

    def on_membership(self, event: Event) -> None:
        """Record a persisted m.room.member event (only users already loaded need it)."""
        assert event.state_key is not None and event.membership is not None
        rooms = self._by_user.get(event.state_key)
        if rooms is not None:
            rooms[event.room_id] = event.membership

    def forget(self, user_id: str, room_id: str) -> None:
        rooms = self._by_user.get(user_id)
        if rooms is not None:
            rooms.pop(room_id, None)
