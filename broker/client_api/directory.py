"""Room aliases and the public room directory.

- ``PUT/GET/DELETE /directory/room/{roomAlias}``: create (joined users; aliases of this node
  only), resolve (no token needed) and delete (the alias's creator, a member allowed to send
  ``m.room.canonical_alias``, or a node admin) alias mappings.
- ``GET /rooms/{roomId}/aliases``: the room's local aliases, for members (and anyone when the
  room is world-readable, and node admins).
- ``GET/PUT /directory/list/room/{roomId}``: whether the room is published in the directory;
  changing it takes the power to send ``m.room.canonical_alias`` (or a node admin).
- ``GET/POST /publicRooms``: the published rooms, largest first, with search and pagination.
  Pagination tokens name the last (or first) room of a page by its sort key, so a page never
  repeats or skips a room that stayed put while others joined or left.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from twisted.web.http import Request

from broker.client_api import CLIENT_PREFIX
from broker.http.errors import MatrixError, bad_param, forbidden, not_found
from broker.http.parsing import parse_json_body, query_arg
from broker.http.strict_json import loads_strict
from broker.http.validation import optional, parse_int_arg, require
from broker.rooms.live_room import LiveRoom
from protocol.errors import DestinationRefused, HttpResponseError
from protocol.power_levels import get_required_level, get_user_power_level

if TYPE_CHECKING:
    from broker.http.server import Router
    from broker.node import Node

ROOM = "(?P<room_id>[^/]+)"
CANONICAL_ALIAS = "m.room.canonical_alias"
VISIBILITIES = ("public", "private")


def may_manage_aliases(room: LiveRoom, user_id: str) -> bool:
    """Whether ``user_id`` is joined and may send ``m.room.canonical_alias`` in ``room``."""
    if room.membership_of(user_id) != "join":
        return False
    power_levels = room.power_levels
    level = get_user_power_level(user_id, power_levels, room.create_event, room.room_version)
    needed = get_required_level(CANONICAL_ALIAS, True,
                                power_levels.content if power_levels is not None else None)
    return level >= needed


# -- the public room list ------------------------------------------------------------------------
MAX_PAGE = 500
SUMMARY_TYPES = ("m.room.create", "m.room.name", "m.room.topic", "m.room.canonical_alias",
                 "m.room.avatar", "m.room.join_rules", "m.room.history_visibility",
                 "m.room.guest_access")
SortKey = tuple[int, str]  # (-joined members, room_id)


@dataclass
class PublicRoomsQuery:
    limit: int = MAX_PAGE
    since: str | None = None
    search: str | None = None
    room_types: list[str | None] | None = None
    network: str | None = None  # a third-party network: none are bridged here

    @classmethod
    def from_body(cls, body: dict[str, Any]) -> PublicRoomsQuery:
        limit = optional(body, "limit", int)
        if limit is not None and limit < 1:
            raise bad_param("'limit' must be positive")
        flt = optional(body, "filter", dict, {})
        room_types = optional(flt, "room_types", list)
        if room_types is not None and any(t is not None and not isinstance(t, str)
                                          for t in room_types):
            raise MatrixError(400, "M_BAD_JSON", "'room_types' must hold strings or null")
        network = optional(body, "third_party_instance_id", str)
        if network is not None and optional(body, "include_all_networks", bool, False):
            raise bad_param("Cannot combine include_all_networks with third_party_instance_id")
        return cls(limit=min(limit or MAX_PAGE, MAX_PAGE), since=optional(body, "since", str),
                   search=optional(flt, "generic_search_term", str), room_types=room_types,
                   network=network)


def _token(direction: str, key: SortKey) -> str:
    raw = json.dumps([-key[0], key[1]], separators=(",", ":")).encode()
    return direction + base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _parse_token(token: str) -> tuple[str, SortKey]:
    """("n" | "p", sort key) of a pagination token; 400 M_INVALID_PARAM if it is not ours."""
    try:
        direction, payload = token[0], token[1:]
        decoded = loads_strict(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        members, room_id = decoded
        if direction not in "np" or not isinstance(members, int) or \
                not isinstance(room_id, str):
            raise ValueError(token)
    except (ValueError, IndexError, TypeError, binascii.Error) as e:
        raise bad_param("Invalid pagination token 'since'") from e
    return direction, (-members, room_id)


def _chunk(room_id: str, joined: int, state: dict[str, dict[str, Any]]) -> dict[str, Any]:
    def field(event_type: str, key: str) -> Any:
        value = state.get(event_type, {}).get(key)
        return value if isinstance(value, str) else None

    chunk: dict[str, Any] = {
        "room_id": room_id, "num_joined_members": joined,
        "world_readable": field("m.room.history_visibility", "history_visibility")
        == "world_readable",
        "guest_can_join": field("m.room.guest_access", "guest_access") == "can_join",
        "join_rule": field("m.room.join_rules", "join_rule") or "invite",
    }
    optional_fields = {"name": ("m.room.name", "name"), "topic": ("m.room.topic", "topic"),
                       "canonical_alias": ("m.room.canonical_alias", "alias"),
                       "avatar_url": ("m.room.avatar", "url"),
                       "room_type": ("m.room.create", "type")}
    for name, (event_type, key) in optional_fields.items():
        value = field(event_type, key)
        if value is not None:
            chunk[name] = value
    return chunk


def _wanted(chunk: dict[str, Any], query: PublicRoomsQuery) -> bool:
    if query.room_types is not None and chunk.get("room_type") not in query.room_types:
        return False
    if query.search:
        term = query.search.lower()
        texts = (chunk.get("name"), chunk.get("topic"), chunk.get("canonical_alias"))
        return any(term in text.lower() for text in texts if text)
    return True


async def list_public_rooms(node: Node, query: PublicRoomsQuery) -> dict[str, Any]:
    """One page of the published rooms, largest first (ties by room ID)."""
    direction, anchor = _parse_token(query.since) if query.since else ("n", None)
    if query.network is not None:
        return {"chunk": [], "total_room_count_estimate": 0}
    room_ids = await node.stores.state.get_public_room_ids()
    summaries = await node.stores.state.get_room_summaries(room_ids, SUMMARY_TYPES)
    chunks = [_chunk(room_id, joined, state) for room_id, (joined, state) in summaries.items()]
    chunks = [c for c in chunks if _wanted(c, query)]
    chunks.sort(key=lambda c: (-c["num_joined_members"], c["room_id"]))
    keys = [(-c["num_joined_members"], c["room_id"]) for c in chunks]
    if anchor is None:
        start, end = 0, query.limit
    elif direction == "n":  # the page after the anchor
        start = sum(1 for key in keys if key <= anchor)
        end = start + query.limit
    else:  # the page before the anchor
        end = sum(1 for key in keys if key < anchor)
        start = max(0, end - query.limit)
    end = min(end, len(chunks))
    page = chunks[start:end]
    result: dict[str, Any] = {"chunk": page, "total_room_count_estimate": len(chunks)}
    if page and end < len(chunks):
        result["next_batch"] = _token("n", keys[end - 1])
    if page and start > 0:
        result["prev_batch"] = _token("p", keys[start])
    return result



def register_servlets(node: Node, router: Router) -> None:
    aliases = node.aliases

    async def put_alias(request: Request, alias: str) -> tuple[int, dict[str, Any]]:
        requester = await node.auth.get_requester(request)
        body = parse_json_body(request)
        room_id = require(body, "room_id", str)
        aliases.validate(alias)
        room = await node.rooms.get_room(room_id)
        if not requester.is_admin and room.membership_of(requester.user_id) != "join":
            raise forbidden("You must be joined to a room to give it an alias.")
        await aliases.create_alias(alias, room_id, requester.user_id)
        return 200, {}

    async def get_alias(request: Request, alias: str) -> tuple[int, dict[str, Any]]:
        room_id = await aliases.resolve(alias)
        servers = {node.server_name}
        room = await node.rooms.registry.get(room_id)
        if room is not None:
            servers.update(user.split(":", 1)[1] for user in room.members_with("join"))
        ordered = [node.server_name] + sorted(servers - {node.server_name})
        return 200, {"room_id": room_id, "servers": ordered}

    async def delete_alias(request: Request, alias: str) -> tuple[int, dict[str, Any]]:
        requester = await node.auth.get_requester(request)
        aliases.validate(alias, must_be_local=False)
        found = await aliases.store.get_alias(alias)
        if found is None:
            raise not_found(f"Room alias {alias} not found")
        room_id, creator = found
        room = await node.rooms.registry.get(room_id)
        may_manage = room is not None and may_manage_aliases(room, requester.user_id)
        if not (requester.user_id == creator or requester.is_admin or may_manage):
            raise forbidden("You may not delete this alias.")
        if not await aliases.store.delete_alias(alias):
            raise not_found(f"Room alias {alias} not found")
        if room is not None and may_manage:
            await _drop_from_canonical_alias(room, requester.user_id, alias)
        return 200, {}

    async def _drop_from_canonical_alias(room: LiveRoom, user_id: str, alias: str) -> None:
        """Remove a deleted alias from the room's m.room.canonical_alias, as the spec suggests."""
        content = dict(room.state_content(CANONICAL_ALIAS) or {})
        alt = content.get("alt_aliases")
        changed = False
        if content.get("alias") == alias:
            del content["alias"]
            changed = True
        if isinstance(alt, list) and alias in alt:
            content["alt_aliases"] = [a for a in alt if a != alias]
            changed = True
        if changed:
            await node.rooms.send(room.room_id, user_id, CANONICAL_ALIAS, content, state_key="")

    async def room_aliases(request: Request, room_id: str) -> tuple[int, dict[str, Any]]:
        requester = await node.auth.get_requester(request)
        room = await node.rooms.get_room(room_id)
        visibility = (room.state_content("m.room.history_visibility") or {}).get(
            "history_visibility")
        if not (room.membership_of(requester.user_id) == "join" or requester.is_admin
                or visibility == "world_readable"):
            raise forbidden("You are not a member of the room.")
        return 200, {"aliases": await aliases.store.get_aliases_for_room(room_id)}

    async def get_visibility(request: Request, room_id: str) -> tuple[int, dict[str, Any]]:
        info = await node.stores.state.room_info(room_id)
        if info is None:
            raise not_found("Room not found")
        return 200, {"visibility": "public" if info["is_public"] else "private"}

    async def put_visibility(request: Request, room_id: str) -> tuple[int, dict[str, Any]]:
        requester = await node.auth.get_requester(request)
        body = parse_json_body(request, allow_empty=True)
        visibility = optional(body, "visibility", str, "public")
        if visibility not in VISIBILITIES:
            raise bad_param("'visibility' must be 'public' or 'private'")
        room = await node.rooms.get_room(room_id)
        if not (requester.is_admin or may_manage_aliases(room, requester.user_id)):
            raise forbidden("You may not change this room's visibility in the directory.")
        await node.stores.state.set_room_public(room_id, visibility == "public")
        room.is_public = visibility == "public"
        return 200, {}

    async def public_rooms_get(request: Request) -> tuple[int, dict[str, Any]]:
        await node.auth.get_requester(request)
        query = PublicRoomsQuery(
            limit=parse_int_arg(query_arg(request, "limit"), "limit", MAX_PAGE, minimum=1,
                                maximum=MAX_PAGE),
            since=query_arg(request, "since"))
        return 200, await _list(query, query_arg(request, "server"), None)

    async def public_rooms_post(request: Request) -> tuple[int, dict[str, Any]]:
        await node.auth.get_requester(request)
        body = parse_json_body(request, allow_empty=True)
        query = PublicRoomsQuery.from_body(body)
        return 200, await _list(query, query_arg(request, "server"), body)

    async def _list(query: PublicRoomsQuery, server: str | None,
                    body: dict[str, Any] | None) -> dict[str, Any]:
        if server is None or server == node.server_name:
            return await list_public_rooms(node, query)
        # Another server's directory, through federation.
        try:
            if body is None:
                args = {"limit": str(query.limit)}
                if query.since:
                    args["since"] = query.since
                answer = await node.federation_client.get_json(
                    server, "/_matrix/federation/v1/publicRooms", args=args)
            else:
                answer = await node.federation_client.post_json(
                    server, "/_matrix/federation/v1/publicRooms", body)
        except DestinationRefused as e:
            raise MatrixError(403, "M_FORBIDDEN", str(e)) from e
        except HttpResponseError as e:
            raise MatrixError(502, "M_UNKNOWN", f"{server} refused: {e}") from e
        except Exception as e:
            raise MatrixError(502, "M_UNKNOWN", f"Could not reach {server}: {e}") from e
        if not isinstance(answer, dict) or not isinstance(answer.get("chunk"), list):
            raise MatrixError(502, "M_UNKNOWN", f"{server} sent a malformed room list")
        return answer

    alias_path = f"{CLIENT_PREFIX}/directory/room/(?P<alias>[^/]+)"
    router.register("PUT", alias_path, put_alias)
    router.register("GET", alias_path, get_alias)
    router.register("DELETE", alias_path, delete_alias)
    router.register("GET", f"{CLIENT_PREFIX}/rooms/{ROOM}/aliases", room_aliases)
    list_path = f"{CLIENT_PREFIX}/directory/list/room/{ROOM}"
    router.register("GET", list_path, get_visibility)
    router.register("PUT", list_path, put_visibility)
    router.register("GET", f"{CLIENT_PREFIX}/publicRooms", public_rooms_get)
    router.register("POST", f"{CLIENT_PREFIX}/publicRooms", public_rooms_post)

