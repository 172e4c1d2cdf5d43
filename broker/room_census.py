"""The daily count of the rooms a node holds, by kind and creator's organisation, for the
usage statistics (``rooms`` of a row, beside the rooms created that day).

A census reads the rooms in pages of :data:`BATCH` (their creator, and the create and group
events of their current state, without loading whole rooms) and hands the counts to
:meth:`broker.statistics.Statistics.rooms_held`.  It runs at start and every
:data:`INTERVAL_S`, a background job off the request path, so each day the node runs has a
count (the largest taken that day).  A room's kind is read as the live room's
(:mod:`broker.rooms.room_kind`): an official group when it was created here with an official
group event, direct when created as a direct chat, informal otherwise; organisations' image
pack rooms are not counted.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from broker.access_policy import OFFICIAL
from broker.periodic import Periodic
from broker.rooms.room_kind import DIRECT_KEY, GROUP_EVENT, IMAGE_PACKS_KEY
from broker.statistics import DIRECT, INFORMAL_KIND, Statistics
from protocol.signing import server_name_of
from storage.room_admin import RoomAdminStore
from storage.state import StateStore

BATCH = 500
INTERVAL_S = 6 * 3600.0
TYPES = ("m.room.create", GROUP_EVENT)


def kind_of(creator: str, state: dict[str, dict[str, Any]], server_name: str) -> str | None:
    """The kind a room counts as from its create and group contents (None: not counted)."""
    create = state.get("m.room.create") or {}
    local = server_name_of(creator) == server_name
    if local and isinstance(create.get(IMAGE_PACKS_KEY), str):
        return None
    if local and (state.get(GROUP_EVENT) or {}).get("kind") == OFFICIAL:
        return OFFICIAL
    return DIRECT if create.get(DIRECT_KEY) is True else INFORMAL_KIND


class RoomCensus:
    def __init__(self, rooms: RoomAdminStore, state: StateStore, statistics: Statistics,
                 server_name: str) -> None:
        self.rooms = rooms
        self.state = state
        self.statistics = statistics
        self.server_name = server_name
        self._job = Periodic(self.count, "the room census")

    async def count(self) -> Counter[tuple[str, str]]:
        """Count every room now: (creator's organisation, kind) -> rooms."""
        found: Counter[tuple[str, str]] = Counter()
        after = ""
        while True:
            rows = await self.rooms.rooms_after(after, BATCH)
            summaries = await self.state.get_room_summaries([r.room_id for r in rows], TYPES)
            for row in rows:
                kind = kind_of(row.creator, summaries[row.room_id][1], self.server_name)
                if kind is not None:
                    found[(self.statistics.organisation(row.creator), kind)] += 1
            if len(rows) < BATCH:
                break
            after = rows[-1].room_id
        self.statistics.rooms_held(found)
        return found

    def start(self, reactor: Any) -> None:
        self._job.start(reactor, INTERVAL_S)

    def stop(self) -> None:
        self._job.stop()
