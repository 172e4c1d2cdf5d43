"""Reports of content (an event, a room, a user), kept for the node's admins and logged."""

from __future__ import annotations

import logging

from broker.clock import Clock
from broker.errors import InvalidInput, NotFound
from broker.rooms.service import Rooms
from protocol.identifiers import is_user_id
from storage.events import EventStore
from storage.reports import ReportStore
from storage.state import StateStore
from storage.user_directory import UserDirectoryStore

logger = logging.getLogger(__name__)

MAX_REASON_CHARS = 4096


class Reports:
    def __init__(self, store: ReportStore, rooms: Rooms, events: EventStore, state: StateStore,
                 users: UserDirectoryStore, clock: Clock) -> None:
        self.store = store
        self.rooms = rooms
        self.events = events
        self.state = state
        self.users = users
        self.clock = clock

    def _now(self) -> int:
        return self.clock.time_ms()

    async def report_event(self, reporter: str, room_id: str, event_id: str,
                           reason: str | None, score: int | None) -> None:
        """Only a joined member may report an event of the room."""
        room = await self.rooms.registry.get(room_id)
        event = (await self.events.get_events([event_id])).get(event_id)
        if room is None or room.membership_of(reporter) != "join" or \
                event is None or event.room_id != room_id:
            raise NotFound("The event was not found or you are not joined to the room.")
        report_id = await self.store.add_report(
            reporter=reporter, received_ts=self._now(), room_id=room_id, event_id=event_id,
            reported_user_id=event.sender, reason=reason, score=score)
        logger.info("report %d: %s reported event %s (sender %s) in %s: score=%s reason=%r",
                    report_id, reporter, event_id, event.sender, room_id, score, reason)

    async def report_room(self, reporter: str, room_id: str, reason: str | None) -> None:
        if not await self.state.room_exists(room_id):
            raise NotFound("The room was not found.")
        report_id = await self.store.add_report(
            reporter=reporter, received_ts=self._now(), room_id=room_id, reason=reason)
        logger.info("report %d: %s reported room %s: reason=%r",
                    report_id, reporter, room_id, reason)

    async def report_user(self, reporter: str, user_id: str, reason: str | None) -> None:
        if not is_user_id(user_id):
            raise InvalidInput(f"{user_id!r} is not a valid user ID")
        if not await self.users.is_known_user(user_id):
            raise NotFound("The user was not found.")
        report_id = await self.store.add_report(
            reporter=reporter, received_ts=self._now(), reported_user_id=user_id,
            reason=reason)
        logger.info("report %d: %s reported user %s: reason=%r",
                    report_id, reporter, user_id, reason)
