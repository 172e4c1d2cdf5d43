"""The rooms facade: wiring of the registry, persister, room
writer and creator, plus what happens after events are durable (recent window through the
writer, membership index, wake-ups, federation).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from twisted.internet import defer

from broker.errors import Forbidden, NotFound
from broker.rooms.creator import EventCreator, EventSpec
from broker.rooms.live_room import LiveRoom, RoomRegistry
from broker.rooms.persister import EventPersister
from broker.rooms.room_kind import facts_of
from broker.rooms.user_rooms import UserRoomsIndex
from broker.rooms.writer import RoomWriter
from protocol.events import Event
from protocol.signing import server_name_of
from storage.events import PersistItem

if TYPE_CHECKING:
    from broker.access_policy import RoomFacts
    from broker.clock import Clock
    from broker.config import CacheBudgets
    from broker.notifier import Notifier
    from federation.sender.sender import FederationSender
    from protocol.signing import SigningKey
    from storage.events import EventStore
    from storage.state import StateStore
    from storage.stream import StreamIdGenerator
    from storage.users import UserStore

logger = logging.getLogger(__name__)

LEAVABLE = ("join", "invite", "knock")
# What a room's membership events may show of a user's profile, given the room's facts.
RestatedProfile = Callable[["RoomFacts"], dict[str, Any]]


class Rooms:
    def __init__(self, server_name: str, signing_key: SigningKey, events: EventStore,
                 state: StateStore, users: UserStore, stream: StreamIdGenerator, reactor: Any,
                 clock: Clock, notifier: Notifier, sender: FederationSender | None,
                 caches: CacheBudgets) -> None:
        self.server_name = server_name
        self.users = users
        self.notifier = notifier
        self.sender = sender
        self.registry = RoomRegistry(state, caches.live_rooms)
        self.user_rooms = UserRoomsIndex(state, caches.user_rooms)
        self.persister = EventPersister(events, stream, self.registry, reactor,
                                        self._after_persist)
        self.writer = RoomWriter(self.registry, self.persister, stream)
        self.creator = EventCreator(server_name, signing_key, self.registry, self.writer,
                                    events, clock)
        # Told every membership event of a user of another server once it is stored (what
        # their node attests of them: :meth:`broker.remote_classes.RemoteClasses.learn`).
        self.on_remote_membership: Callable[[Event], None] | None = None
        # Told each batch of events once stored, after the notifier (memory only: the send
        # path runs them; broker/apps/delivery_reports.py looks for marked notices, the
        # application services wake their queues).
        self.persisted_listeners: list[Callable[[list[PersistItem]], None]] = []

    def is_mine(self, user_id: str) -> bool:
        return user_id.split(":", 1)[-1] == self.server_name

    async def start(self) -> None:
        await self.registry.start()

    # -- after persistence --------------------------------------------------------------------------
    def _after_persist(self, items: list[PersistItem]) -> None:
        rooms: set[str] = set()
        users: set[str] = set()
        position = max(item.stream_ordering for item in items)
        self.writer.persisted(items)
        for item in items:
            event = item.event
            if event.type == "m.room.member" and event.state_key is not None and \
                    self.on_remote_membership is not None and not self.is_mine(event.state_key):
                self.on_remote_membership(event)
            if item.outlier:
                continue
            if event.type == "m.room.member" and event.state_key is not None:
                self.user_rooms.on_membership(event)
                if self.is_mine(event.state_key):
                    users.add(event.state_key)
            rooms.add(event.room_id)
        self.notifier.notify(users=users, rooms=rooms, position=position)
        self._federate(items)
        for listener in self.persisted_listeners:
            listener(items)

    def _federate(self, items: list[PersistItem]) -> None:
        """Queue our own users' new events for every other server in the room (and, for a
        membership change, the target's server)."""
        sender = self.sender
        if sender is None:
            return
        for item in items:
            event = item.event
            if item.outlier or not self.is_mine(event.sender):
                continue
            room = self.registry.cached(event.room_id)
            if room is None:
                continue
            servers = self.room_servers(room)
            if event.type == "m.room.member" and event.state_key:
                servers.add(server_name_of(event.state_key))
            servers.discard(self.server_name)
            if servers:
                d = defer.ensureDeferred(sender.enqueue_pdu(event.pdu, event.event_id, servers))
                d.addErrback(_log_queue_failure, event.event_id)

    @staticmethod
    def room_servers(room: LiveRoom) -> set[str]:
        """Every server with a joined member in the room (ourselves included)."""
        return {server_name_of(user_id) for user_id in room.members_with("join")}

    def local_audience(self, room_id: str) -> list[str]:
        """Local users who see the room's changes in /sync (joined or invited)."""
        room = self.registry.cached(room_id)
        if room is None:
            return []
        return [u for u in room.members_with("join", "invite") if self.is_mine(u)]

    # -- helpers for endpoints ----------------------------------------------------------------------
    async def get_room(self, room_id: str) -> LiveRoom:
        room = await self.registry.get(room_id)
        if room is None:
            raise NotFound(f"Unknown room {room_id}")
        return room

    async def require_joined(self, room_id: str, user_id: str) -> LiveRoom:
        """The room, if ``user_id`` is joined to it; 403 otherwise (404 if unknown)."""
        room = await self.get_room(room_id)
        if room.membership_of(user_id) != "join":
            raise Forbidden(f"User {user_id} is not in room {room_id}")
        return room

    async def send(self, room_id: str, sender: str, event_type: str, content: dict[str, Any], *,
                   state_key: str | None = None, redacts: str | None = None,
                   device_id: str | None = None, txn_id: str | None = None,
                   auto_delete_ms: int | None = None) -> Event:
        spec = EventSpec(sender=sender, type=event_type, content=content, state_key=state_key,
                         redacts=redacts, auto_delete_ms=auto_delete_ms)
        return await self.creator.send(room_id, spec, device_id=device_id, txn_id=txn_id)

    async def propagate_profile(self, user_id: str, restated: RestatedProfile) -> None:
        """After a display name or avatar change, restate the user's membership in every room
        they are joined to, as clients read names from m.room.member events; ``restated``
        gives what a room's membership event may show of the profile."""
        for room_id in await self.user_rooms.joined_rooms(user_id):
            room = await self.registry.get(room_id)
            member = room.state.get(("m.room.member", user_id)) if room else None
            if room is None or member is None or member.membership != "join":
                continue
            content = {k: v for k, v in member.content.items()
                       if k not in ("displayname", "avatar_url")}
            content.update({k: v for k, v in restated(facts_of(room, self.server_name)).items()
                            if k in ("displayname", "avatar_url") and v is not None})
            if content != member.content:
                await self.send(room_id, user_id, "m.room.member", content, state_key=user_id)

    async def restate_memberships(self, user_id: str) -> list[str]:
        """Send the user's join again in every room they share with another server, as this
        node builds it now (with the attestation of their class now: after their
        verification ended, none), so the other servers learn of the change; the rooms."""
        restated = []
        for room_id in await self.user_rooms.joined_rooms(user_id):
            room = await self.registry.get(room_id)
            member = room.state.get(("m.room.member", user_id)) if room else None
            if room is None or member is None or member.membership != "join" or \
                    not self.room_servers(room) - {self.server_name}:
                continue
            if self.creator.member_content(user_id, member.content) == member.content:
                continue  # it already says what it would
            spec = EventSpec(sender=user_id, type="m.room.member", content=member.content,
                             state_key=user_id, restate=True)
            try:
                await self.creator.send(room_id, spec)
            except (Forbidden, NotFound):
                continue  # left meanwhile
            restated.append(room_id)
        return restated

    async def leave_all_rooms(self, user_id: str) -> None:
        """Leave every room the user is joined to or invited to (account deactivation)."""
        rooms = await self.user_rooms.rooms_for_user(user_id)
        for room_id, membership in list(rooms.items()):
            if membership not in LEAVABLE:
                continue
            try:
                await self.send(room_id, user_id, "m.room.member", {"membership": "leave"},
                                state_key=user_id)
            except Forbidden:
                room = self.registry.cached(room_id)
                if room is not None and room.membership_of(user_id) in LEAVABLE:
                    raise
                # Left meanwhile (an official group the user stopped being verified for).


def _log_queue_failure(failure: Any, event_id: str) -> None:
    logger.error("queueing %s for federation failed: %s", event_id, failure.getErrorMessage())


class RoomEdus:
    """Ephemeral updates of local users (typing, read receipts) to the other servers in a
    room; nothing to do when federation is off (``sender`` None)."""

    def __init__(self, registry: RoomRegistry, server_name: str,
                 sender: FederationSender | None) -> None:
        self.registry = registry
        self.server_name = server_name
        self.sender = sender

    def send(self, room_id: str, edu_type: str, content: dict[str, Any], key: str) -> None:
        room = self.registry.cached(room_id)
        if self.sender is None or room is None:
            return
        for server in sorted(Rooms.room_servers(room) - {self.server_name}):
            self.sender.enqueue_edu(server, edu_type, content, key=key)
