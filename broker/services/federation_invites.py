"""Invites of our users by other servers: the invite is checked, countersigned and kept (with
the stripped room state the inviting server sent) so the user sees it in /sync and can join or
decline.  An invite to a room the user knocked on lets them in: the knock is over.  An invite
the user ignores (their ``m.invite_permission_config``) is countersigned but not kept: the
inviting server learns nothing, the user never sees it."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from twisted.internet import defer

from broker.access_policy import AccessPolicy
from broker.errors import Forbidden, InvalidInput, NotFound
from broker.remote_classes import RemoteClasses
from broker.rooms.live_room import RoomRegistry
from broker.streams import StreamWriter
from protocol.events import Event
from protocol.pdu_checks import PduRejected, check_pdu
from protocol.room_versions import KNOWN_ROOM_VERSIONS, RoomVersion, get_room_version
from protocol.signing import server_name_of, sign_event
from storage.remote_invites import RemoteInvite, RemoteInviteStore
from storage.remote_knocks import RemoteKnockStore
from storage.users import UserStore

logger = logging.getLogger(__name__)


class InboundInvites:
    def __init__(self, server_name: str, signing_key: Any, keyring: Any, users: UserStore,
                 registry: RoomRegistry, invites: RemoteInviteStore, knocks: RemoteKnockStore,
                 streams: StreamWriter, access: AccessPolicy,
                 remote_classes: RemoteClasses,
                 ignores_invite: Callable[[str, str], bool]) -> None:
        self.remote_classes = remote_classes  # what the inviter's node attests
        self.server_name = server_name
        self.signing_key = signing_key
        self.keyring = keyring
        self.users = users
        self.registry = registry
        self.invites = invites
        self.knocks = knocks
        self.streams = streams
        self.access = access  # the policy decision point
        self.ignores_invite = ignores_invite  # (invitee, inviter): taken but never shown
        # Told each invite kept, with its invitee (a notice room's is joined for them:
        # broker.notice_invites).
        self.on_kept: Callable[[Event, str], None] | None = None

    async def receive(self, origin: str, room_id: str, event_id: str,
                      body: dict[str, Any]) -> dict[str, Any]:
        """The invite event countersigned by us, once kept for the invitee."""
        version = self._room_version(body.get("room_version"))
        try:
            event = await check_pdu(self.keyring, body.get("event"), version)
        except PduRejected as e:
            raise InvalidInput(str(e)) from e
        if event.event_id != event_id or event.room_id != room_id:
            raise InvalidInput("The event does not match the request path")
        invitee = await self._check_invite(origin, event)
        await self.remote_classes.ensure(event.sender)  # the inviter's class, from its node
        self.access.may_invite(event.sender, invitee, room_id, origin=origin)
        pdu = dict(event.pdu)
        pdu["signatures"] = {k: dict(v) for k, v in event.signatures.items()}
        sign_event(pdu, self.server_name, self.signing_key, version)
        if self.ignores_invite(invitee, event.sender):
            logger.info("%s ignores invites from %s: %s not kept", invitee, event.sender,
                        event_id)
            return pdu
        state = body.get("invite_room_state")
        stripped = [s for s in state if isinstance(s, dict)] if isinstance(state, list) else []

        async def write(stream_id: int) -> None:
            await self.invites.add_invite(RemoteInvite(
                user_id=invitee, room_id=room_id, event_id=event_id,
                room_version=version.identifier, event=pdu, invite_state=stripped,
                stream_id=stream_id))
            await self.knocks.delete_knock(invitee, room_id)

        await self.streams.write(lambda stream_id: defer.ensureDeferred(write(stream_id)),
                                 users=[invitee])
        logger.info("%s invited %s to %s", event.sender, invitee, room_id)
        if self.on_kept is not None:
            self.on_kept(event, invitee)
        return pdu

    @staticmethod
    def _room_version(version_id: Any) -> RoomVersion:
        if version_id not in KNOWN_ROOM_VERSIONS:
            raise InvalidInput(f"Room version {version_id!r} is not supported by this server",
                               errcode="M_INCOMPATIBLE_ROOM_VERSION", room_version=version_id)
        return get_room_version(str(version_id))

    async def _check_invite(self, origin: str, event: Event) -> str:
        """The invitee, if the event is an invite of a local user by a user of ``origin``
        into a room the invitee is neither in nor banned from."""
        invitee = event.state_key or ""
        if event.type != "m.room.member" or event.membership != "invite":
            raise InvalidInput("Expected an m.room.member invite")
        if invitee.split(":", 1)[-1] != self.server_name or \
                await self.users.get_user(invitee) is None:
            raise NotFound(f"Unknown user {invitee}")
        if server_name_of(event.sender) != origin:
            raise Forbidden("The inviter does not belong to the requesting server")
        room = await self.registry.get(event.room_id)
        if room is not None and room.membership_of(invitee) in ("join", "ban"):
            raise Forbidden(f"{invitee} is already in or banned from the room")
        return invitee
