"""Sending into a room and reading its state, events and members, as a member sees them.

Validation is in domain terms (event types and state keys of at most 255 bytes, redactions only
through redact, membership only through the membership service, a canonical alias must point
to the room, encryption cannot be turned off, message tags must be known); every send asks the
policy decision point.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from broker.access_policy import AccessPolicy
from broker.errors import DomainError, Forbidden, InvalidInput, MalformedContent, NotFound
from broker.message_tags import MessageTags
from broker.retention import Retention
from broker.rooms.client_events import ClientEvents, serialize_event
from broker.rooms.live_room import LiveRoom
from broker.rooms.membership import Membership
from broker.rooms.service import Rooms
from broker.rooms.visibility import Visibility
from protocol.events import Event
from protocol.identifiers import is_room_alias, within_id_limit
from storage.events import EventStore
from storage.state import StateStore

StateIds = dict[tuple[str, str], str]


def check_type_and_key(event_type: str, state_key: str = "") -> None:
    if not within_id_limit(event_type) or not within_id_limit(state_key):
        raise InvalidInput("Event types and state keys are at most 255 bytes")


def member_profile(content: dict[str, Any]) -> dict[str, str]:
    """A joined member's display name and avatar as /joined_members answers them: only those
    the member event sets to a string (the spec's schema has no null)."""
    fields = {"display_name": content.get("displayname"), "avatar_url": content.get("avatar_url")}
    return {name: value for name, value in fields.items() if isinstance(value, str)}


class RoomEvents:
    def __init__(self, rooms: Rooms, membership: Membership, events: EventStore,
                 state: StateStore, visibility: Visibility, client_events: ClientEvents,
                 policy: AccessPolicy, tags: MessageTags, clock: Any,
                 retention: Retention) -> None:
        self.rooms = rooms
        self.retention = retention
        self.membership = membership
        self.events = events
        self.state = state
        self.visibility = visibility
        self.client_events = client_events
        self.policy = policy
        self.tags = tags
        self.clock = clock
        self.on_sent: Callable[[str], None] | None = None  # told each message's sender
        # refuses a duplicate annotation (broker/services/relations.py)
        self.check_annotation: Callable[[str, str, str, dict[str, Any]], Awaitable[None]] | \
            None = None

    # -- writing ------------------------------------------------------------------------------
    async def send(self, user_id: str, device_id: str, room_id: str, event_type: str,
                   content: dict[str, Any], txn_id: str) -> str:
        check_type_and_key(event_type)
        if event_type == "m.room.redaction":
            raise InvalidInput("Use the /redact endpoint to redact events")
        await self.rooms.require_joined(room_id, user_id)
        self.policy.may_send(user_id, room_id, event_type)
        lifetime = self.tags.check(user_id, event_type, content)
        if self.check_annotation is not None and "m.relates_to" in content:
            await self.check_annotation(user_id, device_id, txn_id, content)
        event = await self.rooms.send(room_id, user_id, event_type, content,
                                      device_id=device_id, txn_id=txn_id,
                                      auto_delete_ms=lifetime)
        if self.on_sent is not None:
            self.on_sent(user_id)
        return event.event_id

    async def redact(self, user_id: str, device_id: str, room_id: str, event_id: str,
                     reason: str | None, txn_id: str) -> str:
        content = {} if reason is None else {"reason": reason}
        await self.rooms.require_joined(room_id, user_id)
        self.policy.may_send(user_id, room_id, "m.room.redaction")
        event = await self.rooms.send(room_id, user_id, "m.room.redaction", content,
                                      redacts=event_id, device_id=device_id, txn_id=txn_id)
        return event.event_id

    async def put_state(self, user_id: str, room_id: str, event_type: str, state_key: str,
                        content: dict[str, Any]) -> str:
        check_type_and_key(event_type, state_key)
        if event_type == "m.room.member":
            raise InvalidInput("Use the membership endpoints to change membership")
        room = await self.rooms.require_joined(room_id, user_id)
        if event_type == "m.room.canonical_alias":
            await self.check_canonical_alias(room_id, content)
        if event_type == "m.room.encryption" and ("m.room.encryption", "") in room.state and \
                not isinstance(content.get("algorithm"), str):
            raise Forbidden("Encryption cannot be turned off in a room once it is on")
        current = room.state.get((event_type, state_key))
        if current is not None and current.content == content and current.sender == user_id:
            return current.event_id
        self.policy.may_send(user_id, room_id, event_type)
        event = await self.rooms.send(room_id, user_id, event_type, content,
                                      state_key=state_key)
        return event.event_id

    async def check_canonical_alias(self, room_id: str, content: dict[str, Any]) -> None:
        """``m.room.canonical_alias`` content names only aliases of ``room_id``: InvalidInput
        for a value that is not an alias, M_BAD_ALIAS for one that does not resolve to the room
        (asking the alias's server for a remote one)."""
        aliases = [] if content.get("alias") is None else [content["alias"]]
        alt = content.get("alt_aliases")
        if alt is not None:
            if not isinstance(alt, list):
                raise MalformedContent("'alt_aliases' must be an array of room aliases")
            aliases += alt
        for alias in dict.fromkeys(a if isinstance(a, str) else repr(a) for a in aliases):
            if not is_room_alias(alias):
                raise InvalidInput(f"{alias!r} is not a room alias")
            try:
                target, _servers = await self.membership.resolve_room(alias)
            except DomainError:
                target = None
            if target != room_id:
                raise InvalidInput(f"{alias} does not point to this room",
                                   errcode="M_BAD_ALIAS")

    # -- reading ------------------------------------------------------------------------------
    async def _visible_room(self, user_id: str, room_id: str) -> LiveRoom:
        """The room if the user is or was in it (left users see state as of leaving)."""
        room = await self.rooms.get_room(room_id)
        if room.membership_of(user_id) in ("join", "leave", "ban"):
            return room
        raise Forbidden(f"User {user_id} is not in room {room_id}")

    async def _state_at_leave(self, room: LiveRoom, user_id: str) -> StateIds | None:
        if room.membership_of(user_id) == "join":
            return None
        leave_event = room.state[("m.room.member", user_id)]
        return await self.state.get_state_ids_at_event(leave_event.event_id)

    async def _state_events(self, room: LiveRoom, user_id: str) -> list[Event]:
        """The room's state as the user may see it: current, or as of their leaving."""
        at_leave = await self._state_at_leave(room, user_id)
        if at_leave is None:
            return list(room.state.values())
        return list((await self.events.get_events(at_leave.values())).values())

    async def room_state(self, user_id: str, room_id: str) -> list[dict[str, Any]]:
        room = await self._visible_room(user_id, room_id)
        return await self.client_events.serialize(await self._state_events(room, user_id))

    async def state_event(self, user_id: str, room_id: str, event_type: str, state_key: str,
                          *, as_event: bool) -> dict[str, Any]:
        room = await self._visible_room(user_id, room_id)
        at_leave = await self._state_at_leave(room, user_id)
        event: Event | None
        if at_leave is None:
            event = room.state.get((event_type, state_key))
        else:
            event_id = at_leave.get((event_type, state_key))
            event = (await self.events.get_events([event_id])).get(event_id) \
                if event_id else None
        if event is None:
            raise NotFound("Event not found")
        return serialize_event(event, self.clock.time_ms()) if as_event else event.content

    async def event(self, user_id: str, device_id: str, room_id: str,
                    event_id: str) -> dict[str, Any]:
        room = await self._visible_room(user_id, room_id)
        event = (await self.events.get_events([event_id])).get(event_id)
        if event is None or event.room_id != room_id or \
                self.retention.expired(room.state, event) or \
                not await self.visibility.may_read(room, user_id, event):
            raise NotFound("Event not found")
        return (await self.client_events.serialize([event], device=(user_id, device_id),
                                                   aggregate=True))[0]

    async def members(self, user_id: str, room_id: str, membership: str | None,
                      not_membership: str | None) -> list[dict[str, Any]]:
        room = await self._visible_room(user_id, room_id)
        events = [e for e in await self._state_events(room, user_id)
                  if e.type == "m.room.member"
                  and (membership is None or e.membership == membership)
                  and (not_membership is None or e.membership != not_membership)]
        return await self.client_events.serialize(events)

    async def joined_members(self, user_id: str, room_id: str) -> dict[str, Any]:
        room = await self.rooms.require_joined(room_id, user_id)
        return {key[1]: member_profile(event.content) for key, event in room.state.items()
                if key[0] == "m.room.member" and event.membership == "join"}
