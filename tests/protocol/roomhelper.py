"""Test helper: build small rooms event by event with real hashing and signing."""

from __future__ import annotations

from typing import Any

from protocol.auth_rules import auth_types_for_event, check_auth
from protocol.errors import AuthError
from protocol.events import Event, build_pdu, finalize_pdu
from protocol.room_versions import RoomVersion
from protocol.signing import SigningKey, generate_signing_key, server_name_of

_KEYS: dict[str, SigningKey] = {}


def key_for(server_name: str) -> SigningKey:
    if server_name not in _KEYS:
        _KEYS[server_name] = generate_signing_key("t1")
    return _KEYS[server_name]


class Room:
    """A linear room: every event's prev_events is the previous event."""

    def __init__(
        self,
        room_version: RoomVersion,
        creator: str = "@alice:a.test",
        *,
        create_content: dict[str, Any] | None = None,
        join_rule: str | None = "public",
        power_users: dict[str, int] | None = None,
        room_id: str = "!room:a.test",
    ) -> None:
        self.rv = room_version
        self.creator = creator
        self.state: dict[tuple[str, str], Event] = {}
        self.events: list[Event] = []
        content = {"room_version": room_version.identifier, **(create_content or {})}
        if room_version.room_id_is_create_event_hash:
            room_id = None  # type: ignore[assignment]
        self.create = self._finish(
            build_pdu(
                room_version,
                room_id=room_id,
                sender=creator,
                type="m.room.create",
                content=content,
                state_key="",
                prev_event_ids=[],
                auth_event_ids=[],
                depth=1,
                origin_server_ts=1_000,
            ),
            creator,
        )
        self.room_id = self.create.room_id
        self.send(creator, "m.room.member", {"membership": "join"}, state_key=creator)
        if power_users is None:
            power_users = {} if room_version.privileged_creators else {creator: 100}
        self.send(creator, "m.room.power_levels", {"users": power_users}, state_key="")
        if join_rule is not None:
            self.send(creator, "m.room.join_rules", {"join_rule": join_rule}, state_key="")

    def _finish(self, pdu: dict[str, Any], sender: str, server: str | None = None) -> Event:
        server = server or server_name_of(sender)
        event = finalize_pdu(pdu, server, key_for(server), self.rv)
        if event.type == "m.room.create":
            check_auth(self.rv, event, {}, event)
            self.state[("m.room.create", "")] = event
        self.events.append(event)
        return event

    def build(
        self,
        sender: str,
        type: str,
        content: dict[str, Any],
        state_key: str | None = None,
        *,
        server: str | None = None,
        prev_event_ids: list[str] | None = None,
        extra_signers: tuple[str, ...] = (),
    ) -> Event:
        wanted = auth_types_for_event(self.rv, type, sender, state_key, content)
        auth_ids = [self.state[k].event_id for k in wanted if k in self.state]
        pdu = build_pdu(
            self.rv,
            room_id=self.room_id,
            sender=sender,
            type=type,
            content=content,
            state_key=state_key,
            prev_event_ids=prev_event_ids
            if prev_event_ids is not None
            else [self.events[-1].event_id],
            auth_event_ids=auth_ids,
            depth=len(self.events) + 1,
            origin_server_ts=1_000 + len(self.events),
        )
        server = server or server_name_of(sender)
        if extra_signers:
            from protocol.hashing import add_content_hash
            from protocol.signing import sign_event

            add_content_hash(pdu)
            for other in extra_signers:
                sign_event(pdu, other, key_for(other), self.rv)
        return finalize_pdu(pdu, server, key_for(server), self.rv)

    def check(self, event: Event) -> None:
        check_auth(self.rv, event, self.state, self.create)

    def send(
        self,
        sender: str,
        type: str,
        content: dict[str, Any],
        state_key: str | None = None,
        **kw: Any,
    ) -> Event:
        """Build, authorise (raising AuthError) and apply an event."""
        event = self.build(sender, type, content, state_key, **kw)
        self.check(event)
        self.events.append(event)
        if event.is_state():
            self.state[(event.type, event.state_key or "")] = event
        return event

    def refused(
        self,
        sender: str,
        type: str,
        content: dict[str, Any],
        state_key: str | None = None,
        **kw: Any,
    ) -> str | None:
        """The AuthError reason if the event would be refused, else None (not applied)."""
        event = self.build(sender, type, content, state_key, **kw)
        try:
            self.check(event)
        except AuthError as exc:
            return exc.reason
        return None

    def join(self, user: str) -> Event:
        return self.send(user, "m.room.member", {"membership": "join"}, state_key=user)

    def set_power(self, users: dict[str, int], **levels: Any) -> Event:
        return self.send(self.creator, "m.room.power_levels", {"users": users, **levels}, "")


# Forks and state resolution ---------------------------------------------------------


def fork(room: Room) -> Room:
    """A copy of ``room`` sharing its history so far.

    Events sent to the copy and to the original afterwards are concurrent: each
    branch has its own state and its own latest event.
    """
    import copy

    branch = copy.copy(room)
    branch.state = dict(room.state)
    branch.events = list(room.events)
    return branch


def state_ids(room: Room) -> dict[tuple[str, str], str]:
    """The room's current state as (type, state_key) -> event_id."""
    return {key: event.event_id for key, event in room.state.items()}


def events_by_id(*rooms: Room) -> dict[str, Event]:
    """Every event of the given rooms (or branches), by ID."""
    return {event.event_id: event for room in rooms for event in room.events}


def send_at(
    room: Room,
    origin_server_ts: int,
    sender: str,
    type: str,
    content: dict[str, Any],
    state_key: str | None = None,
) -> Event:
    """Like ``Room.send`` but with a chosen origin_server_ts (for ordering tie-breaks)."""
    wanted = auth_types_for_event(room.rv, type, sender, state_key, content)
    pdu = build_pdu(
        room.rv,
        room_id=room.room_id,
        sender=sender,
        type=type,
        content=content,
        state_key=state_key,
        prev_event_ids=[room.events[-1].event_id],
        auth_event_ids=[room.state[k].event_id for k in wanted if k in room.state],
        depth=len(room.events) + 1,
        origin_server_ts=origin_server_ts,
    )
    server = server_name_of(sender)
    event = finalize_pdu(pdu, server, key_for(server), room.rv)
    room.check(event)
    room.events.append(event)
    if event.is_state():
        room.state[(event.type, event.state_key or "")] = event
    return event


def auth_chain_index(events: dict[str, Event]) -> dict[str, set[str]]:
    """Each event's auth chain (not including itself), as a storage index would give it."""
    chains: dict[str, set[str]] = {}

    def chain(event_id: str) -> set[str]:
        if event_id not in chains:
            result: set[str] = set()
            for auth_id in events[event_id].auth_event_ids:
                result.add(auth_id)
                result |= chain(auth_id)
            chains[event_id] = result
        return chains[event_id]

    for event_id in events:
        chain(event_id)
    return chains
