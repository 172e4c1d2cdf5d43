"""Invites across servers, seen from this node.

- Inviting a user of another server: the invite is signed here, countersigned by the invitee's
  server (``PUT /_matrix/federation/v2/invite``), then applied to the room like any local event.
- Declining an invite to a room held elsewhere: make_leave / send_leave through the inviting
  server.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING
from urllib.parse import quote

from broker.errors import Forbidden, InvalidInput, NotFound, Unavailable
from broker.rooms.creator import EventSpec
from broker.rooms.live_room import LiveRoom
from broker.rooms.remote_join import EventSigner
from broker.rooms.stripped_state import stripped_state
from protocol.errors import HttpResponseError
from protocol.events import Event
from protocol.pdu_checks import PduRejected, check_pdu
from protocol.room_versions import get_room_version
from protocol.signing import server_name_of

if TYPE_CHECKING:
    from broker.rooms.service import Rooms
    from broker.streams import StreamWriter
    from federation.keyring import Keyring
    from federation.transport_client import FederationClient
    from storage.remote_invites import RemoteInviteStore

logger = logging.getLogger(__name__)

FED_V1 = "/_matrix/federation/v1"
FED_V2 = "/_matrix/federation/v2"
class RemoteInvites:
    """Invites that need another server: ours to its users, and declining its invites."""

    def __init__(self, signer: EventSigner, client: FederationClient,
                 keyring: Keyring, rooms: Rooms, invites: RemoteInviteStore,
                 streams: StreamWriter) -> None:
        self.signer = signer
        self.client = client
        self.keyring = keyring
        self.rooms = rooms
        self.invites = invites
        self.streams = streams

    async def invite(self, room: LiveRoom, spec: EventSpec) -> Event:
        """Have the invitee's server countersign the invite, then apply and persist it."""
        target = spec.state_key or ""
        destination = server_name_of(target)
        event = self.rooms.creator.sign_checked(room, spec)
        try:
            answer = await self.client.put_json(
                destination, f"{FED_V2}/invite/{quote(room.room_id)}/{quote(event.event_id)}",
                {"event": event.pdu, "room_version": room.room_version.identifier,
                 "invite_room_state": stripped_state(room)})
        except HttpResponseError as e:
            kind = {400: InvalidInput, 403: Forbidden, 404: NotFound}.get(e.status, Unavailable)
            raise kind(f"{destination} refused the invite: {e}",
                       errcode="M_FORBIDDEN" if e.status == 403 else "M_UNKNOWN") from e
        except Exception as e:
            raise Unavailable(f"Could not reach {destination}: {e}") from e
        try:
            signed = await check_pdu(self.keyring, answer.get("event"), room.room_version)
        except PduRejected as e:
            raise Unavailable(f"{destination} returned a bad invite: {e}") from e
        if signed.event_id != event.event_id or destination not in signed.signatures:
            raise Unavailable(f"{destination} did not countersign the invite")
        item = self.rooms.creator.apply_signed(room, signed)
        await self.rooms.writer.persist([item])
        return signed

    async def decline(self, room_id: str, user_id: str) -> None:
        """Leave a room we only know from an invite, through the inviting server."""
        invite = await self.invites.get_invite(user_id, room_id)
        if invite is None:
            raise Forbidden(f"User {user_id} is not in room {room_id}")
        server = server_name_of(str(invite.event.get("sender", "")))
        version = get_room_version(invite.room_version)
        client = self.client
        try:
            template = await client.get_json(
                server, f"{FED_V1}/make_leave/{quote(room_id)}/{quote(user_id)}")
            leave = self.signer.sign_template(template["event"], version)
            await client.put_json(
                server, f"{FED_V2}/send_leave/{quote(room_id)}/{quote(leave.event_id)}", leave.pdu)
        except Exception as e:  # the inviting server is gone: decline locally all the same
            logger.info("declining %s through %s failed (%s); forgetting the invite", room_id,
                        server, e)
        await self.streams.write(
            lambda _sid: self.invites.delete_invite(user_id, room_id),
            users=[user_id])
