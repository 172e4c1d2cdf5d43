"""Room aliases and the public room directory: alias mappings (create, resolve, delete), a
room's local aliases, whether a room is published, and pages of the published rooms (ours, or
another server's through federation when the node federates)."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any

from broker.access_policy import AccessPolicy
from broker.errors import Forbidden, NotFound, Unavailable
from broker.rooms.aliases import Aliases
from broker.rooms.live_room import LiveRoom
from broker.rooms.service import Rooms
from broker.services.remote_aliases import RemoteAliases
from federation.transport_client import FederationClient
from protocol.errors import DestinationRefused, HttpResponseError
from protocol.power_levels import get_required_level, get_user_power_level
from storage.state import StateStore

CANONICAL_ALIAS = "m.room.canonical_alias"
MAX_PAGE = 500
SUMMARY_TYPES = ("m.room.create", "m.room.name", "m.room.topic", "m.room.canonical_alias",
                 "m.room.avatar", "m.room.join_rules", "m.room.history_visibility",
                 "m.room.guest_access")
SortKey = tuple[int, str]  # (-joined members, room_id)


def may_manage_aliases(room: LiveRoom, user_id: str) -> bool:
    """Whether ``user_id`` is joined and may send ``m.room.canonical_alias`` in ``room``."""
    if room.membership_of(user_id) != "join":
        return False
    power_levels = room.power_levels
    level = get_user_power_level(user_id, power_levels, room.create_event, room.room_version)
    needed = get_required_level(CANONICAL_ALIAS, True,
                                power_levels.content if power_levels is not None else None)
    return level >= needed


@dataclass
class PublicRoomsQuery:
    limit: int = MAX_PAGE
    since: str | None = None
    anchor: tuple[str, SortKey] | None = None  # 'since' parsed: ("n" | "p", sort key)
    search: str | None = None
    room_types: list[str | None] | None = None
    network: str | None = None  # a third-party network: none are bridged here


def page_token(direction: str, key: SortKey) -> str:
    raw = json.dumps([-key[0], key[1]], separators=(",", ":")).encode()
    return direction + base64.urlsafe_b64encode(raw).decode().rstrip("=")


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


def _page(chunks: list[dict[str, Any]], query: PublicRoomsQuery) -> dict[str, Any]:
    """The page of the sorted ``chunks`` the query's anchor and limit select."""
    keys = [(-c["num_joined_members"], c["room_id"]) for c in chunks]
    direction, anchor = query.anchor or ("n", None)
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
        result["next_batch"] = page_token("n", keys[end - 1])
    if page and start > 0:
        result["prev_batch"] = page_token("p", keys[start])
    return result


class Directory:
    def __init__(self, aliases: Aliases, rooms: Rooms, state: StateStore, server_name: str,
                 federation_client: FederationClient | None, policy: AccessPolicy,
                 remote_aliases: RemoteAliases | None = None) -> None:
        self.aliases = aliases
        self.remote_aliases = remote_aliases
        self.policy = policy
        self.rooms = rooms
        self.state = state
        self.server_name = server_name
        self.federation_client = federation_client

    async def create_alias(self, user_id: str, is_admin: bool, alias: str, room_id: str) -> None:
        self.aliases.validate(alias)
        room = await self.rooms.get_room(room_id)
        self.policy.may_create_alias(user_id, room_id)
        if not is_admin and room.membership_of(user_id) != "join":
            raise Forbidden("You must be joined to a room to give it an alias.")
        await self.aliases.create_alias(alias, room_id, user_id)

    async def resolve(self, alias: str) -> dict[str, Any]:
        """The room of an alias: ours from the store, another server's by asking it."""
        self.aliases.validate(alias, must_be_local=False)
        if self.remote_aliases is not None and \
                alias[1:].partition(":")[2] != self.server_name:
            return await self.remote_aliases.resolve(alias)
        room_id = await self.aliases.resolve(alias)
        servers = {self.server_name}
        room = await self.rooms.registry.get(room_id)
        if room is not None:
            servers.update(user.split(":", 1)[1] for user in room.members_with("join"))
        ordered = [self.server_name] + sorted(servers - {self.server_name})
        return {"room_id": room_id, "servers": ordered}

    async def delete_alias(self, user_id: str, is_admin: bool, alias: str) -> None:
        self.aliases.validate(alias, must_be_local=False)
        found = await self.aliases.store.get_alias(alias)
        if found is None:
            raise NotFound(f"Room alias {alias} not found")
        room_id, creator = found
        room = await self.rooms.registry.get(room_id)
        may_manage = room is not None and may_manage_aliases(room, user_id)
        if not (user_id == creator or is_admin or may_manage):
            raise Forbidden("You may not delete this alias.")
        if not await self.aliases.store.delete_alias(alias):
            raise NotFound(f"Room alias {alias} not found")
        if room is not None and may_manage:
            await self._drop_from_canonical_alias(room, user_id, alias)

    async def _drop_from_canonical_alias(self, room: LiveRoom, user_id: str, alias: str) -> None:
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
            await self.rooms.send(room.room_id, user_id, CANONICAL_ALIAS, content, state_key="")

    async def room_aliases(self, user_id: str, is_admin: bool, room_id: str) -> list[str]:
        room = await self.rooms.get_room(room_id)
        visibility = (room.state_content("m.room.history_visibility") or {}).get(
            "history_visibility")
        if not (room.membership_of(user_id) == "join" or is_admin
                or visibility == "world_readable"):
            raise Forbidden("You are not a member of the room.")
        return list(await self.aliases.store.get_aliases_for_room(room_id))

    async def visibility(self, room_id: str) -> str:
        info = await self.state.room_info(room_id)
        if info is None:
            raise NotFound("Room not found")
        return "public" if info["is_public"] else "private"

    async def set_visibility(self, user_id: str, is_admin: bool, room_id: str,
                             visibility: str) -> None:
        room = await self.rooms.get_room(room_id)
        if not (is_admin or may_manage_aliases(room, user_id)):
            raise Forbidden("You may not change this room's visibility in the directory.")
        await self.state.set_room_public(room_id, visibility == "public")
        room.is_public = visibility == "public"

    async def public_rooms(self, query: PublicRoomsQuery) -> dict[str, Any]:
        """One page of the published rooms, largest first (ties by room ID)."""
        if query.network is not None:
            return {"chunk": [], "total_room_count_estimate": 0}
        room_ids = await self.state.get_public_room_ids()
        summaries = await self.state.get_room_summaries(room_ids, SUMMARY_TYPES)
        chunks = [_chunk(room_id, joined, state)
                  for room_id, (joined, state) in summaries.items()]
        chunks = [c for c in chunks if _wanted(c, query)]
        chunks.sort(key=lambda c: (-c["num_joined_members"], c["room_id"]))
        return _page(chunks, query)

    async def list_rooms(self, query: PublicRoomsQuery, server: str | None,
                         body: dict[str, Any] | None) -> dict[str, Any]:
        """Our directory, or ``server``'s through federation (``body`` as posted, if any)."""
        if server is None or server == self.server_name:
            return await self.public_rooms(query)
        try:
            answer = await self._remote_rooms(server, query, body)
        except DestinationRefused as e:
            raise Forbidden(str(e)) from e
        except HttpResponseError as e:
            raise Unavailable(f"{server} refused: {e}") from e
        except Exception as e:
            raise Unavailable(f"Could not reach {server}: {e}") from e
        if not isinstance(answer, dict) or not isinstance(answer.get("chunk"), list):
            raise Unavailable(f"{server} sent a malformed room list")
        return answer

    async def _remote_rooms(self, server: str, query: PublicRoomsQuery,
                            body: dict[str, Any] | None) -> Any:
        client = self.federation_client
        if client is None:
            raise Unavailable("Federation is not enabled")
        path = "/_matrix/federation/v1/publicRooms"
        if body is not None:
            return await client.post_json(server, path, body)
        args = {"limit": str(query.limit)}
        if query.since:
            args["since"] = query.since
        return await client.get_json(server, path, args=args)
