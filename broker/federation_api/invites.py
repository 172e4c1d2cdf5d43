"""``PUT /_matrix/federation/v2/invite/{roomId}/{eventId}``: another server invites one of our
users.  We check the invite, countersign it, and keep it (with the stripped room state the
inviting server sent) so the user sees it in /sync and can join or decline."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from twisted.web.http import Request

from broker.federation_api import FED_V2
from broker.federation_api.authentication import authenticate
from broker.http.errors import MatrixError, bad_param, forbidden
from broker.http.parsing import parse_json_body
from protocol.pdu_checks import PduRejected, check_pdu
from protocol.room_versions import KNOWN_ROOM_VERSIONS, get_room_version
from protocol.signing import server_name_of, sign_event
from storage.remote_invites import RemoteInvite

if TYPE_CHECKING:
    from broker.http.server import Router
    from broker.node import Node

logger = logging.getLogger(__name__)


def register_servlets(node: Node, router: Router) -> None:
    async def invite(request: Request, room_id: str, event_id: str) -> tuple[int, Any]:
        origin = await authenticate(node, request)
        body = parse_json_body(request)
        version_id = body.get("room_version")
        if version_id not in KNOWN_ROOM_VERSIONS:
            raise MatrixError(400, "M_INCOMPATIBLE_ROOM_VERSION",
                              f"Room version {version_id!r} is not supported by this server",
                              room_version=version_id)
        version = get_room_version(str(version_id))
        try:
            event = await check_pdu(node.keyring, body.get("event"), version)
        except PduRejected as e:
            raise bad_param(str(e)) from e
        if event.event_id != event_id or event.room_id != room_id:
            raise bad_param("The event does not match the request path")
        invitee = event.state_key or ""
        if event.type != "m.room.member" or event.membership != "invite":
            raise bad_param("Expected an m.room.member invite")
        if not node.is_mine(invitee) or await node.stores.users.get_user(invitee) is None:
            raise MatrixError(404, "M_NOT_FOUND", f"Unknown user {invitee}")
        if server_name_of(event.sender) != origin:
            raise forbidden("The inviter does not belong to the requesting server")
        room = await node.rooms.registry.get(room_id)
        if room is not None and room.membership_of(invitee) in ("join", "ban"):
            raise forbidden(f"{invitee} is already in or banned from the room")
        pdu = dict(event.pdu)
        pdu["signatures"] = {k: dict(v) for k, v in event.signatures.items()}
        sign_event(pdu, node.server_name, node.signing_key, version)
        state = body.get("invite_room_state")
        stripped = [s for s in state if isinstance(s, dict)] if isinstance(state, list) else []

        def write(stream_id: int) -> Any:
            return node.stores.remote_invites.add_invite(RemoteInvite(
                user_id=invitee, room_id=room_id, event_id=event_id,
                room_version=version.identifier, event=pdu, invite_state=stripped,
                stream_id=stream_id))

        await node.write_with_stream_id(write, users=[invitee])
        logger.info("%s invited %s to %s", event.sender, invitee, room_id)
        return 200, {"event": pdu}

    router.register("PUT", f"{FED_V2}/invite/(?P<room_id>[^/]+)/(?P<event_id>[^/]+)", invite)
