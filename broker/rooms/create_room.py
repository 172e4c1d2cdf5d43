"""``createRoom``: the spec's sequence of initial events, built in memory and written in one batch.

Order (per the Client-Server API): m.room.create, the creator's join, m.room.power_levels,
m.room.canonical_alias, the preset's join rules / history visibility / guest access,
initial_state, m.room.name, m.room.topic, then invites.
"""

from __future__ import annotations

import logging
import secrets
import string
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from broker.errors import DomainError, InvalidInput
from broker.rooms.creator import EventSpec
from broker.rooms.live_room import RECENT_EVENTS, LiveRoom
from broker.rooms.room_kind import GROUP_EVENT
from protocol.room_versions import KNOWN_ROOM_VERSIONS, get_room_version
from storage.events import PersistItem

if TYPE_CHECKING:
    from broker.clock import Clock
    from broker.rooms.aliases import Aliases
    from broker.rooms.remote_invites import RemoteInvites
    from broker.rooms.service import Rooms

logger = logging.getLogger(__name__)

MEGOLM = "m.megolm.v1.aes-sha2"

PRESETS = {
    "private_chat": {"join_rule": "invite", "history": "shared", "guest": "can_join"},
    "trusted_private_chat": {"join_rule": "invite", "history": "shared", "guest": "can_join"},
    "public_chat": {"join_rule": "public", "history": "shared", "guest": "forbidden"},
}


@dataclass
class CreateRoomRequest:
    creator: str
    preset: str
    visibility: str = "private"
    room_version: str = "12"
    name: str | None = None
    topic: str | None = None
    room_alias_name: str | None = None
    invite: list[str] = field(default_factory=list)
    initial_state: list[dict[str, Any]] = field(default_factory=list)
    creation_content: dict[str, Any] = field(default_factory=dict)
    power_level_content_override: dict[str, Any] | None = None
    is_direct: bool = False
    encrypt: bool = False  # add m.room.encryption (the node's encryption-by-default policy)
    creator_profile: dict[str, Any] = field(default_factory=dict)
    # Leave out the history visibility and guest access events, whose absence says "shared"
    # and "forbidden" (a room made by the thousand: the notice rooms).
    implied_defaults: bool = False


def default_power_levels(creator: str, invitees: list[str], preset: str,
                         creators_are_implicit: bool) -> dict[str, Any]:
    users: dict[str, int] = {} if creators_are_implicit else {creator: 100}
    if preset == "trusted_private_chat" and not creators_are_implicit:
        users.update({user: 100 for user in invitees})
    return {
        "users": users,
        "users_default": 0,
        "events": {
            "m.room.name": 50,
            "m.room.power_levels": 100,
            "m.room.history_visibility": 100,
            "m.room.canonical_alias": 50,
            "m.room.avatar": 50,
            "m.room.tombstone": 150 if creators_are_implicit else 100,
            "m.room.server_acl": 100,
            "m.room.encryption": 100,
        },
        "events_default": 0,
        "state_default": 50,
        "ban": 50,
        "kick": 50,
        "redact": 50,
        "invite": 0,
        "historical": 100,
        "notifications": {"room": 50},
    }


def protect_group_event(power_levels: dict[str, Any]) -> None:
    """Only the top level of the room's power levels may send its group event (none of ours
    may, a later one is refused by the access policy; this holds it on every server)."""
    events = power_levels.get("events")
    events = dict(events) if isinstance(events, dict) else {}
    levels = [v for v in (*events.values(), *(power_levels.get("users") or {}).values())
              if isinstance(v, int)]
    events[GROUP_EVENT] = max([100, *levels])
    power_levels["events"] = events


def new_legacy_room_id(server_name: str) -> str:
    alphabet = string.ascii_letters
    return "!" + "".join(secrets.choice(alphabet) for _ in range(18)) + ":" + server_name


class NewRooms:
    """Creates rooms: the initial events built in memory and written in one batch."""

    def __init__(self, server_name: str, rooms: Rooms, aliases: Aliases,
                 remote_invites: RemoteInvites, clock: Clock) -> None:
        self.server_name = server_name
        self.rooms = rooms
        self.aliases = aliases
        self.remote_invites = remote_invites
        self.clock = clock
        # Rooms v12 take their ID from the create event's hash, so two rooms created with the
        # same content by the same user in the same millisecond would get one ID: each create
        # event of this node carries a later time than the one before.
        self._last_create_ts = 0

    async def create(self, req: CreateRoomRequest) -> str:
        """Create the room; returns its ID.  Nothing is written unless every event is authorised."""
        if req.room_version not in KNOWN_ROOM_VERSIONS:
            raise InvalidInput(f"Room version {req.room_version} is not supported", errcode="M_UNSUPPORTED_ROOM_VERSION")
        if req.preset not in PRESETS:
            raise InvalidInput(f"Unknown preset {req.preset!r}")
        alias = None
        if req.room_alias_name is not None:
            alias = f"#{req.room_alias_name}:{self.server_name}"
            await self.aliases.check_alias_free(alias)

        room, items = self.build(req, alias)
        rooms = self.rooms
        rooms.registry.add(room)
        try:
            await rooms.writer.persist(items)
        except Exception:
            rooms.registry.invalidate(room.room_id)
            raise
        if alias is not None:
            await self.aliases.create_alias(alias, room.room_id, req.creator)
        for invitee in req.invite:
            if not invitee.split(":", 1)[-1] == self.server_name:
                # A remote invite needs the invitee's server to countersign it.
                spec = EventSpec(sender=req.creator, type="m.room.member",
                                 content=_invite_content(req), state_key=invitee)
                try:
                    await self.remote_invites.invite(room, spec)
                except DomainError as e:
                    logger.warning("createRoom %s: inviting %s failed: %s", room.room_id, invitee,
                                   e.message)
        return room.room_id

    def build(self, req: CreateRoomRequest, alias: str | None = None
              ) -> tuple[LiveRoom, list[PersistItem]]:
        """The room's initial events, authorised and applied to a new live room (synchronous;
        nothing is written or registered).  Raises before anything is kept if one is refused."""
        rooms = self.rooms
        version = get_room_version(req.room_version)
        room = LiveRoom(
            room_id="" if version.room_id_is_create_event_hash else new_legacy_room_id(
                self.server_name),
            room_version=version, state={}, extremities=[], depth=0, state_group=0,
            state_group_depth=0, last_stream=0, recent=deque(maxlen=RECENT_EVENTS))
        items: list[PersistItem] = []

        def add(event_type: str, content: dict[str, Any], state_key: str = "") -> None:
            ts = self._create_ts() if not items else None
            items.append(rooms.creator.build(
                room, EventSpec(sender=req.creator, type=event_type, content=content,
                                state_key=state_key, origin_server_ts=ts)))
            if not room.room_id:  # room v12: the ID is the create event's hash
                room.room_id = items[0].event.room_id
                assert items[0].new_state_group is not None
                items[0].new_state_group.room_id = room.room_id

        try:
            _add_initial_events(req, alias, add)
        except Exception:
            rooms.writer.release(items)
            raise
        items[0].new_room = {
            "room_id": room.room_id, "room_version": req.room_version, "creator": req.creator,
            "is_public": req.visibility == "public", "created_ts": self.clock.time_ms()}
        room.is_public = req.visibility == "public"
        return room, items


    def _create_ts(self) -> int:
        self._last_create_ts = max(self.clock.time_ms(), self._last_create_ts + 1)
        return self._last_create_ts


def _add_initial_events(req: CreateRoomRequest, alias: str | None,
                        add: Callable[..., None]) -> None:
    version = get_room_version(req.room_version)
    preset = PRESETS[req.preset]
    creation = dict(req.creation_content)
    creation["room_version"] = req.room_version
    if version.privileged_creators and req.preset == "trusted_private_chat" and req.invite:
        extra = creation.get("additional_creators") or []
        creation["additional_creators"] = list(dict.fromkeys([*extra, *req.invite]))
    add("m.room.create", creation)
    add("m.room.member", {"membership": "join", **req.creator_profile}, req.creator)
    power_levels = default_power_levels(req.creator, req.invite, req.preset,
                                        version.privileged_creators)
    if req.power_level_content_override:
        power_levels.update(req.power_level_content_override)
    if any(state["type"] == GROUP_EVENT for state in req.initial_state):
        protect_group_event(power_levels)
    add("m.room.power_levels", power_levels)
    if alias is not None:
        add("m.room.canonical_alias", {"alias": alias})
    add("m.room.join_rules", {"join_rule": preset["join_rule"]})
    if not req.implied_defaults:
        add("m.room.history_visibility", {"history_visibility": preset["history"]})
        add("m.room.guest_access", {"guest_access": preset["guest"]})
    for state in req.initial_state:
        add(state["type"], state["content"], state.get("state_key", ""))
    if req.encrypt and not any(s["type"] == "m.room.encryption" for s in req.initial_state):
        add("m.room.encryption", {"algorithm": MEGOLM})
    if req.name is not None:
        add("m.room.name", {"name": req.name})
    if req.topic is not None:
        add("m.room.topic", {"topic": req.topic})
    for invitee in req.invite:
        if invitee.split(":", 1)[-1] != req.creator.split(":", 1)[-1]:
            continue  # users of other servers are invited once the room exists (see below)
        add("m.room.member", _invite_content(req), invitee)


def _invite_content(req: CreateRoomRequest) -> dict[str, Any]:
    content: dict[str, Any] = {"membership": "invite"}
    if req.is_direct:
        content["is_direct"] = True
    return content
