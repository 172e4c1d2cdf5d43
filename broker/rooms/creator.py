"""Creating local events: build a signed PDU, check it against the room version's auth rules,
apply it to the live room through the room writer, and hand it to the group commit.

The build step is synchronous (no await between choosing prev_events and updating the room), so
concurrent senders into one room always form a chain; only the database write is awaited, and
writes of many senders share a transaction.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from broker.attestations import attested_member_content
from broker.errors import Forbidden, InvalidInput, NotFound, TooLarge
from broker.rooms.live_room import LiveRoom, RoomRegistry
from broker.rooms.persister import BuiltOnLostEvent
from broker.rooms.room_kind import adds_member, facts_of
from broker.rooms.send_transactions import SendTransactions
from broker.rooms.writer import RoomWriter, TxnKey
from protocol.auth_rules import check_auth
from protocol.canonical import encode_canonical_json
from protocol.errors import AuthError, InvalidEventError
from protocol.events import MAX_PDU_SIZE, Event, build_pdu, finalize_pdu
from protocol.power_levels import get_named_level, get_user_power_level
from protocol.signing import SigningKey
from storage.events import EventStore, PersistItem

if TYPE_CHECKING:
    from broker.access_policy import AccessPolicy

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
    origin_server_ts: int | None = None  # None: now
    # An auto-delete message's lifetime: the event is redacted this long after it was sent.
    auto_delete_ms: int | None = None
    # A membership the user holds, restated as the node builds it now (a class change):
    # the content is the member's current one when the event is built (so that a profile
    # change applied meanwhile is kept), refused (NotFound) if they no longer hold it, and
    # NothingToRestate if it already says what it would.
    restate: bool = False


class NothingToRestate(NotFound):
    """A restated membership would say what the member's current one says."""


class EventCreator:
    def __init__(
        self, server_name: str, signing_key: SigningKey, registry: RoomRegistry,
        writer: RoomWriter, events: EventStore, clock: Any,
    ) -> None:
        self.server_name = server_name
        self.signing_key = signing_key
        self.registry = registry
        self.writer = writer
        self.events = events
        self.clock = clock
        self.transactions = SendTransactions(events)
        # Asked, as the room's changes are serialised here, whether a membership that adds a
        # member may (the node sets it; member limits).
        self.policy: AccessPolicy | None = None
        # The attestation a join of a local user carries now (None: public); the node sets
        # it (:func:`broker.attestations.attestation_of`).
        self.attest: Callable[[str], dict[str, Any] | None] | None = None

    def member_content(self, target: str, content: dict[str, Any]) -> dict[str, Any]:
        """The content of a membership event of ``target`` built here: the node's own
        attestation for a join of a local user, none in any other (whatever was asked)."""
        mine = target.split(":", 1)[-1] == self.server_name
        attestation = self.attest(target) if mine and self.attest is not None else None
        return attested_member_content(content, attestation)

    # -- building -------------------------------------------------------------------------------
    def build(
        self, room: LiveRoom, spec: EventSpec, *, txn_key: TxnKey | None = None,
        redaction_target: str | None = None,
    ) -> PersistItem:
        """Build, sign and authorise one event and apply it to ``room`` (synchronous)."""
        target = spec.state_key
        if spec.type == "m.room.member" and target is not None:
            if spec.restate:
                spec = self._restated(room, spec, target)
            self.admit(room, spec.content.get("membership"), target)
        event = self.sign_checked(room, spec)
        item = self.writer.apply(room, event, txn_key=txn_key,
                                 redaction_target=redaction_target)
        if spec.auto_delete_ms is not None:
            item.expires_ts = event.origin_server_ts + spec.auto_delete_ms
        return item

    def _restated(self, room: LiveRoom, spec: EventSpec, target: str) -> EventSpec:
        """``spec`` with the member's current content, as the room holds it now."""
        current = room.state.get(("m.room.member", target))
        if current is None or current.membership != spec.content.get("membership"):
            raise NotFound(f"{target} no longer holds that membership")
        if self.member_content(target, current.content) == current.content:
            raise NothingToRestate(f"{target}'s membership already says what it would")
        return replace(spec, content=dict(current.content))

    def sign_checked(self, room: LiveRoom, spec: EventSpec) -> Event:
        """Build and sign an event that passes the auth rules against the room's current
        state, without applying it (synchronous)."""
        version = room.room_version
        is_create = spec.type == "m.room.create" and spec.state_key == ""
        if spec.type == "m.room.member" and spec.state_key is not None:
            spec = replace(spec, content=self.member_content(spec.state_key, spec.content))
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
            origin_server_ts=(self.clock.time_ms() if spec.origin_server_ts is None
                              else spec.origin_server_ts),
            redacts=spec.redacts,
        )
        if len(encode_canonical_json(pdu)) > MAX_PDU_SIZE - 1024:
            raise TooLarge("Event is too large")
        event = finalize_pdu(pdu, self.server_name, self.signing_key, version)
        create_event = event if is_create else room.create_event
        try:
            check_auth(version, event, auth_events, create_event)
        except AuthError as e:
            raise Forbidden(str(e)) from e
        except InvalidEventError as e:
            raise InvalidInput(str(e), errcode="M_BAD_JSON") from e
        return event

    def apply_signed(self, room: LiveRoom, event: Event) -> PersistItem:
        """Apply an event signed earlier (and countersigned elsewhere, like an invite) after
        checking it again against the room's current state (synchronous)."""
        if event.type == "m.room.member" and event.state_key is not None:
            self.admit(room, event.membership, event.state_key)
        auth = room.auth_events_of(event)
        try:
            check_auth(room.room_version, event, auth, room.create_event)
        except AuthError as e:
            raise Forbidden(str(e)) from e
        return self.writer.apply(room, event)

    def admit(self, room: LiveRoom, membership: Any, target: str) -> None:
        """Forbidden if ``target`` taking ``membership`` would add a member the room may not
        have (synchronous: nothing changes the room between this and applying the event)."""
        if self.policy is not None and adds_member(room, membership, target):
            self.policy.may_add_member(target, room.room_id, facts_of(room, self.server_name))

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
        return await self.transactions.once(
            (spec.sender, device_id, room_id, txn_id),
            lambda: self._send(room_id, spec, (spec.sender, device_id, txn_id)))

    async def _send(self, room_id: str, spec: EventSpec,
                    txn_key: TxnKey | None) -> Event:
        for _attempt in range(REBUILD_ATTEMPTS - 1):
            try:
                return await self._build_and_persist(room_id, spec, txn_key)
            except BuiltOnLostEvent:
                # An earlier event of the room could not be stored: build on the room as
                # the database holds it.
                continue
        return await self._build_and_persist(room_id, spec, txn_key)

    async def _build_and_persist(self, room_id: str, spec: EventSpec,
                                 txn_key: TxnKey | None) -> Event:
        room = await self._room(room_id)
        target = None
        if spec.type == "m.room.redaction":
            target = await self._redaction_target(room, spec)
            room = await self._room(room_id)  # the room may have been reloaded meanwhile
        item = self.build(room, spec, txn_key=txn_key,
                          redaction_target=target.event_id if target is not None else None)
        await self.writer.persist([item])
        return item.event

    async def _room(self, room_id: str) -> LiveRoom:
        room = await self.registry.get(room_id)
        if room is None:
            raise NotFound(f"Unknown room {room_id}")
        return room

    async def _redaction_target(self, room: LiveRoom, spec: EventSpec) -> Event | None:
        """The event a redaction applies to, after checking the sender may redact it."""
        if not spec.redacts:
            raise InvalidInput("A redaction needs the event it redacts", errcode="M_MISSING_PARAM")
        found = await self.events.get_events([spec.redacts])
        target = found.get(spec.redacts)
        if target is None or target.room_id != room.room_id:
            raise NotFound("Event to redact not found in this room")
        if target.sender != spec.sender:
            # Locally, redacting someone else's event takes the room's redact level (the
            # same-server allowance of the federation rules is for servers, not users).
            levels = room.power_levels
            level = get_user_power_level(spec.sender, levels, room.create_event,
                                         room.room_version)
            needed = get_named_level(levels.content if levels else None, "redact", 50)
            if level < needed:
                raise Forbidden("You need a higher power level to redact others' events")
        return target

