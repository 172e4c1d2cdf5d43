"""Which events and rooms concern an application service (the spec's rules): an event whose
sender or membership target is in its user namespaces, an event of a room whose ID is in its
room namespaces, whose canonical alias (or an alternative one) is in its alias namespaces, or
in which a user of its namespaces is joined.

Rooms are read from the room registry (memory; a room evicted from it is loaded again).  The
"has a joined member of the namespace" answer is kept per (service, room) and recomputed after a
membership or alias change of the room, so a busy room costs one scan of its members per change
of membership, not one per event.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from cachetools import LRUCache

from broker.appservice.registration import Registration
from protocol.events import Event

# (service, room) answers kept.
ROOM_ANSWERS = 100_000
RECOMPUTE_ON = ("m.room.member", "m.room.canonical_alias")


class Room(Protocol):
    def members_with(self, *memberships: str) -> list[str]: ...

    def state_content(self, event_type: str, state_key: str = "") -> dict[str, Any] | None: ...


RoomOf = Callable[[str], Awaitable[Room | None]]


class Interest:
    def __init__(self, room_of: RoomOf, budget: int = ROOM_ANSWERS) -> None:
        self._room_of = room_of
        self._rooms: LRUCache[tuple[str, str], bool] = LRUCache(maxsize=budget)

    async def wants_event(self, service: Registration, event: Event) -> bool:
        if event.type in RECOMPUTE_ON:  # the room's answer may change with it
            self._rooms.pop((service.id, event.room_id), None)
        if service.in_user_namespace(event.sender):
            return True
        if event.type == "m.room.member" and event.state_key is not None \
                and service.in_user_namespace(event.state_key):
            return True
        return await self.wants_room(service, event.room_id)

    async def wants_room(self, service: Registration, room_id: str) -> bool:
        """Whether the service is interested in everything of ``room_id``."""
        if service.in_room_namespace(room_id):
            return True
        key = (service.id, room_id)
        known = self._rooms.get(key)
        if known is not None:
            return known
        room = await self._room_of(room_id)
        answer = room is not None and (_alias_matches(service, room) or any(
            service.in_user_namespace(user) for user in room.members_with("join")))
        self._rooms[key] = answer
        return answer


def _alias_matches(service: Registration, room: Room) -> bool:
    if not service.aliases:
        return False
    content = room.state_content("m.room.canonical_alias") or {}
    aliases = [content.get("alias"), *(content.get("alt_aliases") or [])]
    return any(isinstance(a, str) and service.in_alias_namespace(a) for a in aliases)
