"""Sending and reading room events: send (idempotent per transaction ID), state get/put,
event by ID, redact, members and joined_members."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from twisted.web.http import Request

from broker.client_api import CLIENT_PREFIX
from broker.http.errors import MatrixError, bad_param, bad_type, forbidden, not_found
from broker.http.parsing import parse_json_body, query_arg
from broker.http.validation import optional
from broker.rooms.client_events import serialize_event, serialize_events
from broker.rooms.live_room import LiveRoom
from broker.rooms.membership import Membership
from broker.rooms.visibility import may_read
from protocol.identifiers import is_room_alias, within_id_limit

if TYPE_CHECKING:
    from broker.http.server import Router
    from broker.node import Node

ROOM = "(?P<room_id>[^/]+)"


def _check_type_and_key(event_type: str, state_key: str = "") -> None:
    if not within_id_limit(event_type) or not within_id_limit(state_key):
        raise bad_param("Event types and state keys are at most 255 bytes")


async def check_canonical_alias(membership: Membership, room_id: str,
                                content: dict[str, Any]) -> None:
    """``m.room.canonical_alias`` content names only aliases of ``room_id``: 400
    M_INVALID_PARAM for a value that is not an alias, M_BAD_ALIAS for one that does not
    resolve to the room (asking the alias's server for a remote one)."""
    aliases = [] if content.get("alias") is None else [content["alias"]]
    alt = content.get("alt_aliases")
    if alt is not None:
        if not isinstance(alt, list):
            raise bad_type("'alt_aliases' must be an array of room aliases")
        aliases += alt
    for alias in dict.fromkeys(a if isinstance(a, str) else repr(a) for a in aliases):
        if not is_room_alias(alias):
            raise bad_param(f"{alias!r} is not a room alias")
        try:
            target, _servers = await membership.resolve_room(alias)
        except MatrixError:
            target = None
        if target != room_id:
            raise MatrixError(400, "M_BAD_ALIAS", f"{alias} does not point to this room")


def _member_profile(content: dict[str, Any]) -> dict[str, str]:
    """A joined member's display name and avatar as /joined_members answers them: only those
    the member event sets to a string (the spec's schema has no null)."""
    fields = {"display_name": content.get("displayname"), "avatar_url": content.get("avatar_url")}
    return {name: value for name, value in fields.items() if isinstance(value, str)}


def register_servlets(node: Node, router: Router) -> None:
    rooms = node.rooms
    membership = Membership(node)

    async def send(request: Request, room_id: str, event_type: str,
                   txn_id: str) -> tuple[int, dict[str, Any]]:
        requester = await node.auth.get_requester(request)
        node.ratelimiter.check("messages", requester.user_id, exempt=requester.is_admin)
        content = parse_json_body(request)
        _check_type_and_key(event_type)
        if event_type == "m.room.redaction":
            raise bad_param("Use the /redact endpoint to redact events")
        await rooms.require_joined(room_id, requester.user_id)
        event = await rooms.send(room_id, requester.user_id, event_type, content,
                                 device_id=requester.device_id, txn_id=txn_id)
        return 200, {"event_id": event.event_id}

    async def redact(request: Request, room_id: str, event_id: str,
                     txn_id: str) -> tuple[int, dict[str, Any]]:
        requester = await node.auth.get_requester(request)
        node.ratelimiter.check("messages", requester.user_id, exempt=requester.is_admin)
        body = parse_json_body(request, allow_empty=True)
        content: dict[str, Any] = {}
        reason = optional(body, "reason", str)
        if reason is not None:
            content["reason"] = reason
        await rooms.require_joined(room_id, requester.user_id)
        event = await rooms.send(room_id, requester.user_id, "m.room.redaction", content,
                                 redacts=event_id, device_id=requester.device_id, txn_id=txn_id)
        return 200, {"event_id": event.event_id}

    async def put_state(request: Request, room_id: str, event_type: str,
                        state_key: str = "") -> tuple[int, dict[str, Any]]:
        requester = await node.auth.get_requester(request)
        node.ratelimiter.check("messages", requester.user_id, exempt=requester.is_admin)
        content = parse_json_body(request, allow_empty=False)
        _check_type_and_key(event_type, state_key)
        if event_type == "m.room.member":
            raise bad_param("Use the membership endpoints to change membership")
        room = await rooms.require_joined(room_id, requester.user_id)
        if event_type == "m.room.canonical_alias":
            await check_canonical_alias(membership, room_id, content)
        if event_type == "m.room.encryption" and ("m.room.encryption", "") in room.state and \
                not isinstance(content.get("algorithm"), str):
            raise forbidden("Encryption cannot be turned off in a room once it is on")
        current = room.state.get((event_type, state_key))
        if current is not None and current.content == content and \
                current.sender == requester.user_id:
            return 200, {"event_id": current.event_id}
        event = await rooms.send(room_id, requester.user_id, event_type, content,
                                 state_key=state_key)
        return 200, {"event_id": event.event_id}

    async def visible_room(requester_user: str, room_id: str) -> LiveRoom:
        """The room if the user is or was in it (left users see state as of leaving)."""
        room = await rooms.get_room(room_id)
        membership = room.membership_of(requester_user)
        if membership == "join":
            return room
        if membership in ("leave", "ban"):
            return room
        raise forbidden(f"User {requester_user} is not in room {room_id}")

    async def state_at_leave(room: LiveRoom, user_id: str) -> dict[tuple[str, str], str] | None:
        if room.membership_of(user_id) == "join":
            return None
        leave_event = room.state[("m.room.member", user_id)]
        return await node.stores.state.get_state_ids_at_event(leave_event.event_id)

    async def get_state(request: Request, room_id: str) -> tuple[int, Any]:
        requester = await node.auth.get_requester(request)
        room = await visible_room(requester.user_id, room_id)
        at_leave = await state_at_leave(room, requester.user_id)
        if at_leave is None:
            events = list(room.state.values())
        else:
            events = list((await node.stores.events.get_events(at_leave.values())).values())
        return 200, await serialize_events(node, events)

    async def get_state_event(request: Request, room_id: str, event_type: str,
                              state_key: str = "") -> tuple[int, Any]:
        requester = await node.auth.get_requester(request)
        room = await visible_room(requester.user_id, room_id)
        at_leave = await state_at_leave(room, requester.user_id)
        if at_leave is None:
            event = room.state.get((event_type, state_key))
        else:
            event_id = at_leave.get((event_type, state_key))
            event = (await node.stores.events.get_events([event_id])).get(event_id) \
                if event_id else None
        if event is None:
            raise not_found("Event not found")
        if query_arg(request, "format") == "event":
            return 200, serialize_event(event, node.clock.time_ms())
        return 200, event.content

    async def get_event(request: Request, room_id: str, event_id: str) -> tuple[int, Any]:
        requester = await node.auth.get_requester(request)
        room = await visible_room(requester.user_id, room_id)
        found = await node.stores.events.get_events([event_id])
        event = found.get(event_id)
        if event is None or event.room_id != room_id:
            raise not_found("Event not found")
        if not await may_read(node, room, requester.user_id, event):
            raise not_found("Event not found")
        return 200, (await serialize_events(
            node, [event], device=(requester.user_id, requester.device_id)))[0]

    async def members(request: Request, room_id: str) -> tuple[int, Any]:
        requester = await node.auth.get_requester(request)
        room = await visible_room(requester.user_id, room_id)
        wanted = query_arg(request, "membership")
        not_wanted = query_arg(request, "not_membership")
        at_leave = await state_at_leave(room, requester.user_id)
        if at_leave is None:
            events = [e for k, e in room.state.items() if k[0] == "m.room.member"]
        else:
            ids = [eid for k, eid in at_leave.items() if k[0] == "m.room.member"]
            events = list((await node.stores.events.get_events(ids)).values())
        events = [e for e in events if (wanted is None or e.membership == wanted)
                  and (not_wanted is None or e.membership != not_wanted)]
        return 200, {"chunk": await serialize_events(node, events)}

    async def joined_members(request: Request, room_id: str) -> tuple[int, Any]:
        requester = await node.auth.get_requester(request)
        room = await rooms.require_joined(room_id, requester.user_id)
        joined: dict[str, Any] = {}
        for key, event in room.state.items():
            if key[0] == "m.room.member" and event.membership == "join":
                joined[key[1]] = _member_profile(event.content)
        return 200, {"joined": joined}

    router.register("PUT", f"{CLIENT_PREFIX}/rooms/{ROOM}/send/(?P<event_type>[^/]+)/"
                    "(?P<txn_id>[^/]+)", send)
    router.register("PUT", f"{CLIENT_PREFIX}/rooms/{ROOM}/redact/(?P<event_id>[^/]+)/"
                    "(?P<txn_id>[^/]+)", redact)
    state_path = f"{CLIENT_PREFIX}/rooms/{ROOM}/state/(?P<event_type>[^/]+)"
    router.register("PUT", state_path, put_state)
    router.register("PUT", state_path + "/(?P<state_key>.*)", put_state)
    router.register("GET", f"{CLIENT_PREFIX}/rooms/{ROOM}/state", get_state)
    router.register("GET", state_path, get_state_event)
    router.register("GET", state_path + "/(?P<state_key>.*)", get_state_event)
    router.register("GET", f"{CLIENT_PREFIX}/rooms/{ROOM}/event/(?P<event_id>[^/]+)", get_event)
    router.register("GET", f"{CLIENT_PREFIX}/rooms/{ROOM}/members", members)
    router.register("GET", f"{CLIENT_PREFIX}/rooms/{ROOM}/joined_members", joined_members)
