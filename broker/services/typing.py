"""Typing notifications of local users: held in memory by the tracker (expiring after the
timeout), told to the room's local members through /sync and to other servers as an EDU."""

from __future__ import annotations

from broker.errors import Forbidden, InvalidInput
from broker.rooms.service import RoomEdus, Rooms
from broker.typing_tracker import TypingTracker


class Typing:
    def __init__(self, rooms: Rooms, tracker: TypingTracker, edus: RoomEdus) -> None:
        self.rooms = rooms
        self.tracker = tracker
        self.edus = edus

    async def set_typing(self, requester: str, room_id: str, user_id: str, typing: bool,
                         timeout_ms: int) -> None:
        if requester != user_id:
            raise Forbidden("You may only set your own typing state.")
        if timeout_ms < 0:
            raise InvalidInput("'timeout' must not be negative")
        await self.rooms.require_joined(room_id, user_id)
        self.tracker.set_typing(room_id, user_id, typing, timeout_ms)
        self.edus.send(room_id, "m.typing",
                       {"room_id": room_id, "user_id": user_id, "typing": typing},
                       key=f"{room_id}|{user_id}")
