"""Fetching history a node does not hold from another server in the room (``/backfill``).

A node that joined a room over federation holds only the events since its join.  When a user
paginates past the oldest event we have, we ask a resident server for the events before it,
verify them, and write them into the timeline *before* everything we hold: backfilled events
take negative stream positions, counting down, so they sort before the join without touching
the live stream that /sync follows.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING
from urllib.parse import quote

from broker.rooms.live_room import LiveRoom
from protocol.events import Event
from protocol.pdu_checks import PduRejected, check_pdu
from protocol.signing import server_name_of
from storage.events import PersistItem

if TYPE_CHECKING:
    from federation.keyring import Keyring
    from federation.transport_client import FederationClient
    from storage.events import EventStore

logger = logging.getLogger(__name__)

BACKFILL_LIMIT = 100


class Backfiller:
    def __init__(self, server_name: str, events: EventStore, client: FederationClient,
                 keyring: Keyring) -> None:
        self.server_name = server_name
        self.events = events
        self.client = client
        self.keyring = keyring
        self._next_negative: int | None = None
        self._exhausted: set[str] = set()

    async def backfill(self, room: LiveRoom, limit: int) -> int:
        """Fetch up to ``limit`` older events of ``room``; returns how many were added."""
        if room.room_id in self._exhausted:
            return 0
        oldest = await self.events.get_room_events(
            room.room_id, after=None, up_to=None, limit=1, backwards=False)
        if not oldest or oldest[0].type == "m.room.create":
            self._exhausted.add(room.room_id)
            return 0
        servers = sorted({server_name_of(u) for u in room.members_with("join")}
                         - {self.server_name})
        for server in servers:
            try:
                events = await self._fetch(server, room, oldest[0], min(limit, BACKFILL_LIMIT))
            except Exception as e:
                logger.info("backfill of %s from %s failed: %s", room.room_id, server, e)
                continue
            added = await self._store(events)
            if added:
                room.older_history_added()
            return added
        return 0

    async def _fetch(self, server: str, room: LiveRoom, oldest: Event, limit: int) -> list[Event]:
        answer = await self.client.get_json(
            server, f"/_matrix/federation/v1/backfill/{quote(room.room_id)}",
            args={"v": [oldest.event_id], "limit": str(limit)})
        events = []
        for pdu in answer.get("pdus", []) if isinstance(answer, dict) else []:
            try:
                event = await check_pdu(self.keyring, pdu, room.room_version)
            except PduRejected as e:
                logger.info("ignoring backfilled event: %s", e)
                continue
            if event.room_id == room.room_id and event.depth <= oldest.depth:
                events.append(event)
        return events

    async def _store(self, events: list[Event]) -> int:
        ids = [e.event_id for e in events]
        timeline_known = await self.events.timeline_event_ids(ids)
        fresh = {e.event_id: e for e in events if e.event_id not in timeline_known}
        if not fresh:
            return 0
        if self._next_negative is None:
            self._next_negative = min(-1, await self.events.min_stream_ordering() - 1)
        items = []
        for event in sorted(fresh.values(), key=lambda e: (-e.depth, e.origin_server_ts)):
            position = self._next_negative
            self._next_negative -= 1
            event.unsigned["stream_ordering"] = position
            items.append(PersistItem(event=event, stream_ordering=position,
                                     state_group_after=None, backfilled=True))
        await self.events.persist_batch(items)
        return len(items)
