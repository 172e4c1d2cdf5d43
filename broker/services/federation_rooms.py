"""Joining, knocking and leaving through this node as the room's resident server: the event
templates of make_join / make_knock / make_leave and the signed events of send_join /
send_knock / send_leave.  Also the room checks every Server-Server room endpoint shares."""

from __future__ import annotations

import logging
from typing import Any

from broker.access_policy import OFFICIAL, AccessPolicy
from broker.errors import Forbidden, InvalidInput, NotFound
from broker.remote_classes import RemoteClasses
from broker.rooms.live_room import LiveRoom, RoomRegistry
from broker.rooms.remote_events import RemoteEventRejected, RemoteEvents
from broker.rooms.room_kind import adds_member, facts_of, knock_reaches
from broker.rooms.state_loader import StateLoader
from broker.rooms.stripped_state import STRIPPED_TYPES
from protocol.auth_rules import check_auth
from protocol.errors import AuthError, InvalidEventError
from protocol.events import Event, build_pdu, event_from_pdu
from protocol.identifiers import is_user_id
from protocol.pdu_checks import PduRejected, check_pdu
from protocol.signing import server_name_of


def readable_room(room: LiveRoom | None, origin: str, room_id: str) -> LiveRoom:
    """``room`` if ``origin`` has a joined user in it: NotFound for no room, else Forbidden."""
    if room is None:
        raise NotFound(f"Unknown room {room_id}")
    if not any(server_name_of(u) == origin for u in room.members_with("join")):
        raise Forbidden(f"{origin} has no user in {room_id}")
    return room


def check_user_id(user_id: str) -> None:
    """InvalidInput unless ``user_id`` follows the user ID grammar (historical localparts
    included, as users of other servers may have them)."""
    if not is_user_id(user_id):
        raise InvalidInput(f"Not a user ID: {user_id!r}")


logger = logging.getLogger(__name__)


class FederationMembership:
    def __init__(self, server_name: str, registry: RoomRegistry, keyring: Any,
                 remote_events: RemoteEvents, state: StateLoader, sender: Any,
                 clock: Any, access: AccessPolicy, remote_classes: RemoteClasses) -> None:
        self.server_name = server_name
        self.remote_classes = remote_classes  # what the joining user's node attests
        self.registry = registry
        self.keyring = keyring
        self.remote_events = remote_events
        self.state = state
        self.sender = sender  # FederationSender
        self.clock = clock
        self.access = access  # the policy decision point

    def room_servers(self, room: LiveRoom) -> set[str]:
        """Servers with a joined member in the room, other than us."""
        return {server_name_of(u) for u in room.members_with("join")} - {self.server_name}

    async def room(self, room_id: str) -> LiveRoom:
        room = await self.registry.get(room_id)
        if room is None:
            raise NotFound(f"Unknown room {room_id}")
        return room

    async def template_room(self, origin: str, room_id: str, user_id: str) -> LiveRoom:
        """The room a user of ``origin`` asks a membership template of."""
        check_user_id(user_id)
        if server_name_of(user_id) != origin:
            raise Forbidden("The user does not belong to the requesting server")
        return await self.room(room_id)

    @staticmethod
    def check_version(room: LiveRoom, supported: list[str]) -> None:
        """InvalidInput (M_INCOMPATIBLE_ROOM_VERSION) unless the joining server supports the
        room's version."""
        if room.room_version.identifier not in supported:
            raise InvalidInput("Your server does not support this room's version",
                               errcode="M_INCOMPATIBLE_ROOM_VERSION",
                               room_version=room.room_version.identifier)

    async def template(self, origin: str, room: LiveRoom, user_id: str,
                       membership: str) -> dict[str, Any]:
        """An unsigned membership event the user's server may sign and send back."""
        await self._ask_policy(origin, room, user_id, membership)
        content = {"membership": membership}
        auth = room.auth_events_for("m.room.member", user_id, user_id, content)
        pdu = build_pdu(room.room_version, room_id=room.room_id, sender=user_id,
                        type="m.room.member", content=content, state_key=user_id,
                        prev_event_ids=room.extremities[-10:],
                        auth_event_ids=[e.event_id for e in auth.values()],
                        depth=room.depth + 1, origin_server_ts=self.clock.time_ms())
        # A template that cannot pass the auth rules is refused now, not after signing.
        probe = dict(pdu, hashes={"sha256": ""}, signatures={origin: {}})
        try:
            check_auth(room.room_version, event_from_pdu(probe, room.room_version), auth,
                       room.create_event)
        except AuthError as e:
            raise Forbidden(f"You are not allowed to {membership} this room: {e}") from e
        except InvalidEventError as e:
            raise InvalidInput(f"No valid {membership} event can be built: {e}") from e
        return pdu

    async def accept(self, origin: str, room: LiveRoom, event_id: str, body: dict[str, Any],
                     membership: str) -> tuple[dict[tuple[str, str], Event], Event]:
        """Apply a signed join or leave of a user of ``origin`` and pass it on to the room's
        other servers: (the state before it, the event)."""
        try:
            event = await check_pdu(self.keyring, body, room.room_version)
        except PduRejected as e:
            raise InvalidInput(str(e)) from e
        if event.event_id != event_id or event.room_id != room.room_id:
            raise InvalidInput("The event does not match the request path")
        if event.type != "m.room.member" or event.membership != membership or \
                event.state_key != event.sender or server_name_of(event.sender) != origin:
            raise InvalidInput(f"Expected a {membership} of a user of {origin}")
        if membership == "join":
            self.remote_classes.learn(event)  # what the join itself attests, signed by origin
        await self._ask_policy(origin, room, event.sender, membership)
        if membership == "join":
            if adds_member(room, "join", event.sender):
                self.access.may_add_member(event.sender, room.room_id, facts_of(room, self.server_name))
        state_before = dict(room.state)
        try:
            await (await self.remote_events.on_pdu(origin, event))
        except RemoteEventRejected as e:
            raise Forbidden(str(e)) from e
        destinations = self.room_servers(room) - {origin}
        if destinations:
            await self.sender.enqueue_pdu(event.pdu, event.event_id, destinations)
        return state_before, event

    async def admits(self, origin: str, room: LiveRoom, event: Event) -> bool:
        """Whether a membership event from ``origin`` may enter the room's current state as
        the node's policy decides for send_join, send_knock and invites: the same rules hold
        for a join, knock or invite pushed in a transaction (one refused is soft-failed by the caller, counted by
        the policy).  A member already joined restating their join is no new admission (what
        it attests is taken in)."""
        user_id = event.state_key
        membership = event.membership
        if membership == "invite" and user_id is not None:
            return await self._admits_invite(origin, room, event, user_id)
        if membership not in ("join", "knock") or user_id != event.sender or \
                user_id is None or server_name_of(user_id) == self.server_name:
            return True
        if membership == "join":
            self.remote_classes.learn(event)  # what the join itself attests, signed by origin
            if room.membership_of(user_id) == "join":
                return True
        try:
            await self._ask_policy(origin, room, user_id, membership)
        except Forbidden as e:
            logger.warning("refusing %s's %s of %s in %s from a transaction: %s",
                           origin, membership, user_id, room.room_id, e)
            return False
        return True

    async def _admits_invite(self, origin: str, room: LiveRoom, event: Event,
                             invitee: str) -> bool:
        """An invite pushed in a transaction, decided as a local invite is: into an official
        group only a verified invitee (asking the invitee's node when memory holds nothing
        fresh).  Our own users' invites were decided when their node asked us to sign them."""
        if server_name_of(invitee) == self.server_name or \
                room.membership_of(invitee) in ("invite", "join"):
            return True
        facts = facts_of(room, self.server_name)
        if facts.kind == OFFICIAL:
            await self.remote_classes.ensure(invitee)
        try:
            self.access.may_invite(event.sender, invitee, room.room_id, origin=origin,
                                   room=facts)
        except Forbidden as e:
            logger.warning("refusing %s's invite of %s to %s from a transaction: %s",
                           origin, invitee, room.room_id, e)
            return False
        return True

    async def _ask_policy(self, origin: str, room: LiveRoom, user_id: str,
                          membership: str) -> None:
        """The access policy's say on a user of ``origin`` joining or knocking (a leave needs
        none), after asking that server what it attests of the user when memory holds
        nothing fresh and the class decides: the room is an official group, or the knock is
        on a direct chat (whose other party a public user may not reach)."""
        facts = facts_of(room, self.server_name)
        reached = knock_reaches(room, user_id) if membership == "knock" else []
        if (facts.kind == OFFICIAL and membership in ("join", "knock")) or reached:
            await self.remote_classes.ensure(user_id)
        if membership == "join":
            self.access.may_join(user_id, room.room_id, origin=origin, room=facts)
        elif membership == "knock":
            self.access.may_knock(user_id, room.room_id, origin=origin, room=facts,
                                  reached=reached)

    @staticmethod
    def knock_answer(room: LiveRoom) -> dict[str, Any]:
        """The send_knock answer: the state events that describe the room to the knocker, as
        the room version formats them (the create event first)."""
        return {"knock_room_state": [event.pdu for event_type in STRIPPED_TYPES
                                     if (event := room.state.get((event_type, ""))) is not None]}

    async def join_answer(self, room: LiveRoom, state_before: dict[tuple[str, str], Event],
                          event: Event) -> dict[str, Any]:
        """The send_join answer: the room's state before the join and its auth chain."""
        state_ids = {e.event_id for e in state_before.values()}
        chain = await self.state.load_with_auth_chains(state_ids)
        return {
            "origin": self.server_name,
            "state": [e.pdu for e in state_before.values()],
            "auth_chain": [e.pdu for eid, e in chain.items() if eid not in state_ids],
            "event": event.pdu,
            "members_omitted": False,
            "servers_in_room": sorted(self.room_servers(room) | {self.server_name}),
        }
