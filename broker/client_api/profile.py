"""Profiles: ``GET /profile/{userId}`` and ``GET/PUT /profile/{userId}/{displayname|avatar_url}``.

Reading a profile needs no access token.  Only the owner may change a profile (403 M_FORBIDDEN
otherwise); an unknown local user is 404 M_NOT_FOUND.  Remote profiles would need a federation
query, which this node does not make yet: they are 404 M_NOT_FOUND too.  A change is restated in
the user's joined rooms by the rooms engine (``node.rooms.propagate_profile``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from twisted.web.http import Request

from broker.client_api import CLIENT_PREFIX
from broker.http.errors import MatrixError, forbidden, not_found
from broker.http.parsing import parse_json_body
from broker.http.validation import check
from protocol.identifiers import is_user_id

if TYPE_CHECKING:
    from broker.http.server import Router
    from broker.node import Node

# Longest value accepted per field (characters).
FIELD_LIMITS = {"displayname": 256, "avatar_url": 1000}


def validate_field(field: str, value: str | None) -> str | None:
    """The value to store for ``field`` (None clears it); 400 M_INVALID_PARAM if unusable."""
    if value is None or value == "":
        return None
    if len(value) > FIELD_LIMITS[field]:
        raise MatrixError(400, "M_INVALID_PARAM",
                          f"'{field}' must be at most {FIELD_LIMITS[field]} characters")
    if field == "avatar_url" and not value.startswith("mxc://"):
        raise MatrixError(400, "M_INVALID_PARAM", "'avatar_url' must be an mxc:// URI")
    return value


def register_servlets(node: Node, router: Router) -> None:
    users = node.stores.users

    async def load_profile(user_id: str) -> dict[str, Any]:
        if not is_user_id(user_id):
            raise MatrixError(400, "M_INVALID_PARAM", f"{user_id!r} is not a user ID")
        if not node.is_mine(user_id):
            raise not_found("Profiles of users on other servers are not available")
        profile = await users.get_profile(user_id)
        if profile is None:
            raise not_found("No such user")
        return profile

    async def get_profile(request: Request, user_id: str) -> tuple[int, dict[str, Any]]:
        return 200, await load_profile(user_id)

    async def get_field(request: Request, user_id: str, field: str) -> tuple[int, dict[str, Any]]:
        profile = await load_profile(user_id)
        return 200, {field: profile[field]} if field in profile else {}

    async def set_field(request: Request, user_id: str, field: str) -> tuple[int, dict[str, Any]]:
        requester = await node.auth.get_requester(request)
        if requester.user_id != user_id:
            raise forbidden("You may only change your own profile")
        body = parse_json_body(request)
        if field not in body:
            raise MatrixError(400, "M_MISSING_PARAM", f"Missing '{field}'")
        value = check(body, field, str) if body[field] is not None else None
        await users.set_profile_field(user_id, field, validate_field(field, value))
        await node.rooms.propagate_profile(user_id)
        return 200, {}

    field_path = f"{CLIENT_PREFIX}/profile/(?P<user_id>[^/]+)/(?P<field>displayname|avatar_url)"
    router.register("GET", f"{CLIENT_PREFIX}/profile/(?P<user_id>[^/]+)", get_profile)
    router.register("GET", field_path, get_field)
    router.register("PUT", field_path, set_field)
