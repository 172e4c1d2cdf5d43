"""Joining and leaving through a resident server: make_join / send_join (v2) and
make_leave / send_leave (v2), as the room's resident server answers them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from twisted.web.http import Request

from broker.federation_api import FED_V1, FED_V2
from broker.federation_api.authentication import authenticate
from broker.http.errors import MatrixError, bad_param, forbidden, not_found
from broker.http.parsing import parse_json_body, query_args
from broker.rooms.live_room import LiveRoom
from broker.rooms.remote_events import RemoteEventRejected
from protocol.auth_rules import check_auth
from protocol.errors import AuthError, InvalidEventError
from protocol.events import build_pdu, event_from_pdu
from protocol.identifiers import is_user_id
from protocol.pdu_checks import PduRejected, check_pdu
from protocol.signing import server_name_of

if TYPE_CHECKING:
    from broker.http.server import Router
    from broker.node import Node


def room_servers(node: Node, room: LiveRoom) -> set[str]:
    """Servers with a joined member in the room, other than us."""
    return {server_name_of(u) for u in room.members_with("join")} - {node.server_name}


def check_user_id(user_id: str) -> None:
    """400 M_INVALID_PARAM unless ``user_id`` follows the user ID grammar (historical
    localparts included, as users of other servers may have them)."""
    if not is_user_id(user_id):
        raise bad_param(f"Not a user ID: {user_id!r}")


def register_servlets(node: Node, router: Router) -> None:
    async def template(request: Request, room_id: str, user_id: str,
                       membership: str) -> tuple[int, dict[str, Any]]:
        origin = await authenticate(node, request)
        check_user_id(user_id)
        if server_name_of(user_id) != origin:
            raise forbidden("The user does not belong to the requesting server")
        room = await node.rooms.registry.get(room_id)
        if room is None:
            raise not_found(f"Unknown room {room_id}")
        if membership == "join":
            supported = query_args(request, "ver") or ["1"]
            if room.room_version.identifier not in supported:
                raise MatrixError(400, "M_INCOMPATIBLE_ROOM_VERSION",
                                  "Your server does not support this room's version",
                                  room_version=room.room_version.identifier)
        content = {"membership": membership}
        auth = room.auth_events_for("m.room.member", user_id, user_id, content)
        pdu = build_pdu(room.room_version, room_id=room.room_id, sender=user_id,
                        type="m.room.member", content=content, state_key=user_id,
                        prev_event_ids=room.extremities[-10:],
                        auth_event_ids=[e.event_id for e in auth.values()],
                        depth=room.depth + 1, origin_server_ts=node.clock.time_ms())
        # A template that cannot pass the auth rules is refused now, not after signing.
        probe = dict(pdu, hashes={"sha256": ""}, signatures={origin: {}})
        try:
            check_auth(room.room_version, event_from_pdu(probe, room.room_version), auth,
                       room.create_event)
        except AuthError as e:
            raise forbidden(f"You are not allowed to {membership} this room: {e}") from e
        except InvalidEventError as e:
            raise bad_param(f"No valid {membership} event can be built: {e}") from e
        return 200, {"event": pdu, "room_version": room.room_version.identifier}

    async def make_join(request: Request, room_id: str, user_id: str) -> tuple[int, Any]:
        return await template(request, room_id, user_id, "join")

    async def make_leave(request: Request, room_id: str, user_id: str) -> tuple[int, Any]:
        return await template(request, room_id, user_id, "leave")

    async def accept(request: Request, room_id: str, event_id: str,
                     membership: str) -> tuple[LiveRoom, dict[tuple[str, str], Any], Any]:
        origin = await authenticate(node, request)
        room = await node.rooms.registry.get(room_id)
        if room is None:
            raise not_found(f"Unknown room {room_id}")
        body = parse_json_body(request)
        try:
            event = await check_pdu(node.keyring, body, room.room_version)
        except PduRejected as e:
            raise bad_param(str(e)) from e
        if event.event_id != event_id or event.room_id != room_id:
            raise bad_param("The event does not match the request path")
        if event.type != "m.room.member" or event.membership != membership or \
                event.state_key != event.sender or server_name_of(event.sender) != origin:
            raise bad_param(f"Expected a {membership} of a user of {origin}")
        state_before = dict(room.state)
        try:
            await (await node.remote_events.on_pdu(origin, event))
        except RemoteEventRejected as e:
            raise forbidden(str(e)) from e
        destinations = room_servers(node, room) - {origin}
        if destinations:
            await node.federation_sender.enqueue_pdu(event.pdu, event.event_id, destinations)
        return room, state_before, event

    async def send_join(request: Request, room_id: str, event_id: str) -> tuple[int, Any]:
        room, state_before, event = await accept(request, room_id, event_id, "join")
        chain = await node.remote_events.state.load_with_auth_chains(
            {e.event_id for e in state_before.values()})
        state_ids = {e.event_id for e in state_before.values()}
        auth_chain = [e.pdu for eid, e in chain.items() if eid not in state_ids]
        return 200, {
            "origin": node.server_name,
            "state": [e.pdu for e in state_before.values()],
            "auth_chain": auth_chain,
            "event": event.pdu,
            "members_omitted": False,
            "servers_in_room": sorted(room_servers(node, room) | {node.server_name}),
        }

    async def send_leave(request: Request, room_id: str, event_id: str) -> tuple[int, Any]:
        await accept(request, room_id, event_id, "leave")
        return 200, {}

    user = "(?P<user_id>[^/]+)"
    room = "(?P<room_id>[^/]+)"
    router.register("GET", f"{FED_V1}/make_join/{room}/{user}", make_join)
    router.register("GET", f"{FED_V1}/make_leave/{room}/{user}", make_leave)
    router.register("PUT", f"{FED_V2}/send_join/{room}/(?P<event_id>[^/]+)", send_join)
    router.register("PUT", f"{FED_V2}/send_leave/{room}/(?P<event_id>[^/]+)", send_leave)
