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

The rules live in :mod:`broker.services.directory`; this module parses the requests.
"""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Any, Literal

from annotated_types import Ge
from pydantic import model_validator

from broker.client_api import CLIENT_PREFIX
from broker.errors import InvalidInput
from broker.http.bodies import Body
from broker.http.endpoint import Access, Call, Endpoints, endpoint
from broker.http.validation import parse_int_arg
from broker.services.directory import MAX_PAGE, Directory, SortKey
from broker.services.directory import PublicRoomsQuery as Query
from protocol.strict_json import loads_strict

ROOM = "(?P<room_id>[^/]+)"
ALIAS_PATH = f"{CLIENT_PREFIX}/directory/room/(?P<alias>[^/]+)"
LIST_PATH = f"{CLIENT_PREFIX}/directory/list/room/{ROOM}"
PUBLIC_ROOMS = f"{CLIENT_PREFIX}/publicRooms"


def parse_token(token: str) -> tuple[str, SortKey]:
    """("n" | "p", sort key) of a pagination token; 400 M_INVALID_PARAM if it is not ours."""
    try:
        direction, payload = token[0], token[1:]
        decoded = loads_strict(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        members, room_id = decoded
        if direction not in "np" or not isinstance(members, int) or \
                not isinstance(room_id, str):
            raise ValueError(token)
    except (ValueError, IndexError, TypeError, binascii.Error) as e:
        raise InvalidInput("Invalid pagination token 'since'") from e
    return direction, (-members, room_id)


class PublicRoomsQuery(Query):
    """A query of the directory as a request states it."""


class RoomFilter(Body):
    generic_search_term: str | None = None
    room_types: list[str | None] | None = None


class PublicRoomsBody(Body):
    """``POST /publicRooms`` (the federation API takes the same body)."""

    limit: Annotated[int, Ge(1)] | None = None
    since: str | None = None
    filter: RoomFilter | None = None
    include_all_networks: bool = False
    third_party_instance_id: str | None = None

    @model_validator(mode="after")
    def _one_network(self) -> PublicRoomsBody:
        if self.third_party_instance_id is not None and self.include_all_networks:
            raise InvalidInput(
                "Cannot combine include_all_networks with third_party_instance_id")
        return self

    def query(self) -> PublicRoomsQuery:
        flt = self.filter or RoomFilter()
        return PublicRoomsQuery(limit=min(self.limit or MAX_PAGE, MAX_PAGE), since=self.since,
                                search=flt.generic_search_term, room_types=flt.room_types,
                                network=self.third_party_instance_id)


class AliasBody(Body):
    room_id: str


class VisibilityBody(Body):
    visibility: Literal["public", "private"] = "public"


def with_anchor(query: Query) -> Query:
    if query.since:
        query.anchor = parse_token(query.since)
    return query


class DirectoryEndpoints(Endpoints):
    def __init__(self, directory: Directory) -> None:
        self.directory = directory

    @endpoint("PUT", ALIAS_PATH, access=Access.USER, body=AliasBody)
    async def put_alias(self, call: Call, alias: str, body: AliasBody
                        ) -> tuple[int, dict[str, Any]]:
        await self.directory.create_alias(call.user.user_id, call.user.is_admin, alias,
                                          body.room_id)
        return 200, {}

    @endpoint("GET", ALIAS_PATH, access=Access.PUBLIC)
    async def get_alias(self, call: Call, alias: str) -> tuple[int, dict[str, Any]]:
        return 200, await self.directory.resolve(alias)

    @endpoint("DELETE", ALIAS_PATH, access=Access.USER)
    async def delete_alias(self, call: Call, alias: str) -> tuple[int, dict[str, Any]]:
        await self.directory.delete_alias(call.user.user_id, call.user.is_admin, alias)
        return 200, {}

    @endpoint("GET", f"{CLIENT_PREFIX}/rooms/{ROOM}/aliases", access=Access.USER)
    async def room_aliases(self, call: Call, room_id: str) -> tuple[int, dict[str, Any]]:
        found = await self.directory.room_aliases(call.user.user_id, call.user.is_admin, room_id)
        return 200, {"aliases": found}

    @endpoint("GET", LIST_PATH, access=Access.PUBLIC)
    async def get_visibility(self, call: Call, room_id: str) -> tuple[int, dict[str, Any]]:
        return 200, {"visibility": await self.directory.visibility(room_id)}

    @endpoint("PUT", LIST_PATH, access=Access.USER, body=VisibilityBody, body_optional=True)
    async def put_visibility(self, call: Call, room_id: str, body: VisibilityBody
                             ) -> tuple[int, dict[str, Any]]:
        await self.directory.set_visibility(call.user.user_id, call.user.is_admin, room_id,
                                            body.visibility)
        return 200, {}

    @endpoint("GET", PUBLIC_ROOMS, access=Access.USER)
    async def public_rooms_get(self, call: Call) -> tuple[int, dict[str, Any]]:
        query = PublicRoomsQuery(
            limit=parse_int_arg(call.arg("limit"), "limit", MAX_PAGE, minimum=1,
                                maximum=MAX_PAGE),
            since=call.arg("since"))
        return 200, await self.directory.list_rooms(with_anchor(query), call.arg("server"),
                                                    None)

    @endpoint("POST", PUBLIC_ROOMS, access=Access.USER, body=PublicRoomsBody,
              body_optional=True)
    async def public_rooms_post(self, call: Call, body: PublicRoomsBody
                                ) -> tuple[int, dict[str, Any]]:
        return 200, await self.directory.list_rooms(with_anchor(body.query()),
                                                    call.arg("server"), body.source)
