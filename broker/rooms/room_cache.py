"""Which live rooms stay in memory: a budget of the most recently used ones.

:class:`LiveRoomCache` keeps the ``budget`` rooms used last (a least-recently-used cache from
``cachetools``).  A room beyond the budget is dropped from it, but it stays in memory (and is
handed out again, the same object) for as long as anything still holds it:

- a room *pinned* while a write of it is in flight (from the room writer's ``persist`` until the
  event is durable and the after-persist hooks have run), because the database does not hold
  what the room in memory already shows;
- a room a caller still holds (a request halfway through, a sync building its answer), found
  through a weak reference: two callers never see two different objects for one room.

Only a room nobody holds any more is really forgotten; its next use reloads it from the
database (:class:`broker.rooms.live_room.RoomRegistry`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from weakref import WeakValueDictionary

from cachetools import LRUCache

if TYPE_CHECKING:
    from broker.rooms.live_room import LiveRoom


class LiveRoomCache:
    def __init__(self, budget: int) -> None:
        if budget < 1:
            raise ValueError("the live room budget must be at least 1")
        self.budget = budget
        self._recent: LRUCache[str, LiveRoom] = LRUCache(maxsize=budget)
        self._alive: WeakValueDictionary[str, LiveRoom] = WeakValueDictionary()
        # id(room) -> (room, pins): a strong reference while a write of the room is in flight.
        self._pins: dict[int, tuple[LiveRoom, int]] = {}

    def get(self, room_id: str) -> LiveRoom | None:
        """The room if it is in memory (now the most recently used), else None."""
        room = self._recent.get(room_id)
        if room is None:
            room = self._alive.get(room_id)
            if room is not None:  # beyond the budget but still held: in use again
                self._recent[room_id] = room
        return room

    def __setitem__(self, room_id: str, room: LiveRoom) -> None:
        self._recent[room_id] = room
        self._alive[room_id] = room

    def pop(self, room_id: str) -> LiveRoom | None:
        """Forget the room (its holders keep their object; the next get reloads it)."""
        self._alive.pop(room_id, None)
        return self._recent.pop(room_id, None)

    def __contains__(self, room_id: str) -> bool:
        return room_id in self._recent or room_id in self._alive

    def __len__(self) -> int:
        """Rooms in memory: those within the budget and those still held beyond it."""
        return len(self._alive)

    def pin(self, room: LiveRoom) -> None:
        """Keep ``room`` in memory until as many :meth:`unpin` calls."""
        _, pins = self._pins.get(id(room), (room, 0))
        self._pins[id(room)] = (room, pins + 1)

    def unpin(self, room: LiveRoom) -> None:
        entry = self._pins.get(id(room))
        if entry is None or entry[0] is not room:
            raise ValueError(f"room {room.room_id} is not pinned")
        if entry[1] == 1:
            del self._pins[id(room)]
        else:
            self._pins[id(room)] = (room, entry[1] - 1)

    def pinned(self) -> int:
        """How many rooms are pinned."""
        return len(self._pins)
