"""The ``summary`` of a joined room in /sync, worked out once per room state.

Counting the members and choosing the heroes (the first members by ID, for a room without a
name or alias) reads the whole member list; every member of a big room woken by one message
would otherwise do it again.  What depends on the state is kept per room until its state
changes; only leaving the requester out of the heroes is done per sync.
"""

from __future__ import annotations

import heapq
import weakref
from dataclasses import dataclass
from typing import Any

from broker.rooms.live_room import LiveRoom

HEROES = 5
#: Rooms whose summary is kept.
SUMMARY_CACHE_SIZE = 4096


@dataclass(frozen=True)
class _Summary:
    room: weakref.ref[LiveRoom]
    state_version: int
    joined: int
    invited: int
    # HEROES + 1 candidates: one of them may be the requester.
    heroes: list[str] | None


class RoomSummaries:
    def __init__(self, cache_size: int = SUMMARY_CACHE_SIZE) -> None:
        self.cache_size = cache_size
        self._kept: dict[str, _Summary] = {}

    def summary(self, room: LiveRoom, user_id: str) -> dict[str, Any]:
        kept = self._of(room)
        summary: dict[str, Any] = {
            "m.joined_member_count": kept.joined,
            "m.invited_member_count": kept.invited,
        }
        if kept.heroes is not None:
            summary["m.heroes"] = [u for u in kept.heroes if u != user_id][:HEROES]
        return summary

    def _of(self, room: LiveRoom) -> _Summary:
        kept = self._kept.get(room.room_id)
        if kept is not None and kept.room() is room and kept.state_version == room.state_version:
            return kept
        joined = room.members_with("join")
        invited = room.members_with("invite")
        heroes = None
        if room.state_content("m.room.name") is None and \
                room.state_content("m.room.canonical_alias") is None:
            heroes = heapq.nsmallest(HEROES + 1, joined + invited)
        kept = _Summary(weakref.ref(room), room.state_version, len(joined), len(invited), heroes)
        self._kept.pop(room.room_id, None)
        self._kept[room.room_id] = kept
        while len(self._kept) > self.cache_size:
            del self._kept[next(iter(self._kept))]
        return kept
