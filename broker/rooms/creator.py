"""Creating local events: build a signed PDU, check it against the room version's auth rules,
apply it to the live room, and hand it to the group-commit persister.

The build step is synchronous (no await between choosing prev_events and updating the room), so
concurrent senders into one room always form a chain; only the database write is awaited, and
writes of many senders share a transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from twisted.internet import defer

from broker.deferreds import observe
from broker.http.errors import MatrixError, forbidden, not_found
from broker.rooms.live_room import LiveRoom, RoomRegistry
from broker.rooms.persister import BuiltOnLostEvent, EventPersister
from protocol.auth_rules import check_auth
from protocol.canonical import encode_canonical_json
from protocol.errors import AuthError, InvalidEventError
from protocol.events import MAX_PDU_SIZE, Event, build_pdu, finalize_pdu
from protocol.power_levels import get_named_level, get_user_power_level
from protocol.signing import SigningKey
from storage.events import EventStore, NewStateGroup, PersistItem
from storage.stream import StreamIdGenerator

FULL_SNAPSHOT_EVERY = 100
MAX_PREV_EVENTS = 10
# How many times a send is built again when the event before it in its room was lost.
REBUILD_ATTEMPTS = 3


@dataclass(frozen=True)
class EventSpec:
    """What a local user asks to send."""

    sender: str
    type: str
    content: dict[str, Any]
    state_key: str | None = None
    redacts: str | None = None


class EventCreator:
    def __init__(
        self, server_name: str, signing_key: SigningKey, registry: RoomRegistry,
        persister: EventPersister, stream: StreamIdGenerator, events: EventStore, clock: Any,
    ) -> None:
        self.server_name = server_name
        self.signing_key = signing_key
        self.registry = registry
        self.persister = persister
        self.stream = stream
        self.events = events
        self.clock = clock
        self._pending_txns: dict[tuple[str, str, str, str], defer.Deferred[Event]] = {}

    # -- building -------------------------------------------------------------------------------
    def build(
        self, room: LiveRoom, spec: EventSpec, *, txn_key: tuple[str, str, str] | None = None,
        redaction_target: str | None = None,
    ) -> PersistItem:
        """Build, sign and authorise one event and apply it to ``room`` (synchronous)."""
        event = self.sign_checked(room, spec)
        return self._apply(room, event, txn_key, redaction_target)

    def sign_checked(self, room: LiveRoom, spec: EventSpec) -> Event:
        """Build and sign an event that passes the auth rules against the room's current
        state, without applying it (synchronous)."""
        version = room.room_version
        is_create = spec.type == "m.room.create" and spec.state_key == ""
        auth_events = room.auth_events_for(spec.type, spec.sender, spec.state_key, spec.content)
        pdu = build_pdu(
            version,
            room_id=room.room_id or None,
            sender=spec.sender,
            type=spec.type,
            content=spec.content,
            state_key=spec.state_key,
            prev_event_ids=room.extremities[-MAX_PREV_EVENTS:],
            auth_event_ids=[e.event_id for e in auth_events.values()],
            depth=min(room.depth + 1, 2**63 - 1),
            origin_server_ts=self.clock.time_ms(),
            redacts=spec.redacts,
        )
        if len(encode_canonical_json(pdu)) > MAX_PDU_SIZE - 1024:
            raise MatrixError(413, "M_TOO_LARGE", "Event is too large")
        event = finalize_pdu(pdu, self.server_name, self.signing_key, version)
        create_event = event if is_create else room.create_event
        try:
            check_auth(version, event, auth_events, create_event)
        except AuthError as e:
            raise forbidden(str(e)) from e
        except InvalidEventError as e:
            raise MatrixError(400, "M_BAD_JSON", str(e)) from e
        return event

    def apply_remote(self, room: LiveRoom, event: Event) -> PersistItem:
        """Apply an already authorised event that extends the room's tip (synchronous)."""
        return self._apply(room, event, None, None)

    def apply_signed(self, room: LiveRoom, event: Event) -> PersistItem:
        """Apply an event signed earlier (and countersigned elsewhere, like an invite) after
        checking it again against the room's current state (synchronous)."""
        auth = room.auth_events_of(event)
        try:
            check_auth(room.room_version, event, auth, room.create_event)
        except AuthError as e:
            raise forbidden(str(e)) from e
        return self._apply(room, event, None, None)

    def _apply(self, room: LiveRoom, event: Event, txn_key: tuple[str, str, str] | None,
               redaction_target: str | None) -> PersistItem:
        stream = self.stream.allocate(1)[0]
        event.unsigned["stream_ordering"] = stream
        if txn_key is not None:
            event.unsigned["txn"] = txn_key
        new_group: NewStateGroup | None = None
        key = (event.type, event.state_key or "")
        if event.is_state():
            previous = room.state.get(key)
            if previous is not None:
                event.unsigned["replaces_state"] = previous.event_id
                event.unsigned["prev_content"] = previous.content
                event.unsigned["prev_sender"] = previous.sender
            room.state[key] = event
            room.state_changed()
        if event.is_state() or room.state_group == 0:
            group = self.registry.allocate_state_group()
            if room.state_group == 0 or room.state_group_depth >= FULL_SNAPSHOT_EVERY:
                new_group = NewStateGroup(group, room.room_id, None, 0,
                                          {k: e.event_id for k, e in room.state.items()})
            else:
                new_group = NewStateGroup(group, room.room_id, room.state_group,
                                          room.state_group_depth + 1, {key: event.event_id})
            room.state_group = group
            room.state_group_depth = new_group.delta_depth
        referenced = set(event.prev_event_ids)
        room.extremities = [e for e in room.extremities if e not in referenced] + [event.event_id]
        room.depth = max(room.depth, event.depth)
        room.version += 1
        return PersistItem(
            event=event, stream_ordering=stream, state_group_after=room.state_group,
            new_state_group=new_group, txn_key=txn_key, redaction_target=redaction_target)

    # -- sending --------------------------------------------------------------------------------
    async def send(
        self, room_id: str, spec: EventSpec, *, device_id: str | None = None,
        txn_id: str | None = None,
    ) -> Event:
        """Create, authorise and persist one event; idempotent per (user, device, room, txn):
        every request with the same transaction ID, concurrent or later (after a restart
        too), gets the one event."""
        if txn_id is None or device_id is None:
            return await self._send(room_id, spec, None)
        key = (spec.sender, device_id, room_id, txn_id)
        pending = self._pending_txns.get(key)
        if pending is None:
            # Registered before anything is awaited, so a concurrent retry finds it.
            pending = defer.ensureDeferred(self._send_once(room_id, spec, device_id, txn_id))
            self._pending_txns[key] = pending
            pending.addBoth(self._txn_done, key)
        return await observe(pending)

    def _txn_done(self, result: Any, key: tuple[str, str, str, str]) -> Any:
        self._pending_txns.pop(key, None)
        return result

    async def _send_once(self, room_id: str, spec: EventSpec, device_id: str,
                         txn_id: str) -> Event:
        """The event of a transaction ID: the stored one, or a new one."""
        existing = await self.events.get_txn_event_id(spec.sender, device_id, room_id, txn_id)
        if existing is not None:
            found = await self.events.get_events([existing])
            return found[existing]
        return await self._send(room_id, spec, (spec.sender, device_id, txn_id))

    async def _send(self, room_id: str, spec: EventSpec,
                    txn_key: tuple[str, str, str] | None) -> Event:
        for _attempt in range(REBUILD_ATTEMPTS - 1):
            try:
                return await self._build_and_persist(room_id, spec, txn_key)
            except BuiltOnLostEvent:
                # An earlier event of the room could not be stored: build on the room as
                # the database holds it.
                continue
        return await self._build_and_persist(room_id, spec, txn_key)

    async def _build_and_persist(self, room_id: str, spec: EventSpec,
                                 txn_key: tuple[str, str, str] | None) -> Event:
        room = await self._room(room_id)
        target = None
        if spec.type == "m.room.redaction":
            target = await self._redaction_target(room, spec)
            room = await self._room(room_id)  # the room may have been reloaded meanwhile
        item = self.build(room, spec, txn_key=txn_key,
                          redaction_target=target.event_id if target is not None else None)
        await self.persister.persist([item])
        return item.event

    async def _room(self, room_id: str) -> LiveRoom:
        room = await self.registry.get(room_id)
        if room is None:
            raise not_found(f"Unknown room {room_id}")
        return room

    async def _redaction_target(self, room: LiveRoom, spec: EventSpec) -> Event | None:
        """The event a redaction applies to, after checking the sender may redact it."""
        if not spec.redacts:
            raise MatrixError(400, "M_MISSING_PARAM", "A redaction needs the event it redacts")
        found = await self.events.get_events([spec.redacts])
        target = found.get(spec.redacts)
        if target is None or target.room_id != room.room_id:
            raise not_found("Event to redact not found in this room")
        if target.sender != spec.sender:
            # Locally, redacting someone else's event takes the room's redact level (the
            # same-server allowance of the federation rules is for servers, not users).
            levels = room.power_levels
            level = get_user_power_level(spec.sender, levels, room.create_event,
                                         room.room_version)
            needed = get_named_level(levels.content if levels else None, "redact", 50)
            if level < needed:
                raise forbidden("You need a higher power level to redact others' events")
        return target

    async def persist_many(self, items: list[PersistItem]) -> None:
        await self.persister.persist(items)

    def release(self, items: list[PersistItem]) -> None:
        """Give back the stream ids of built events that will not be written."""
        self.stream.finish([item.stream_ordering for item in items])
