"""Profiles: ``GET /profile/{userId}`` and ``GET/PUT /profile/{userId}/{displayname|avatar_url}``;
``GET /profile/{userId}/in.gov.broker.{class|organisation|designation}`` (custom profile
fields, set by the node from the government account: ``PUT`` or ``DELETE`` on any key of the
``in.gov.broker.`` namespace is 403).

Reading a profile needs no access token (a token, if given, says who reads, for the policy).
Only the owner may change a profile (403 M_FORBIDDEN otherwise); an unknown local user is
404 M_NOT_FOUND.  A profile of a user of another server is asked of that server (the
federation profile query: what the public may see), 404 M_NOT_FOUND if it does not know the
user or is not a server this node federates with, 502 if it cannot answer.  A change is restated in the user's joined rooms (see
:mod:`broker.services.profiles`).
"""

from __future__ import annotations

from typing import Any

from broker.client_api import CLIENT_PREFIX
from broker.errors import MissingInput, NotFound
from broker.http.bodies import Body, JsonObject
from broker.http.endpoint import Access, Call, Endpoints, endpoint
from broker.services.profiles import Profiles

PROFILE = f"{CLIENT_PREFIX}/profile/(?P<user_id>[^/]+)"
FIELD = PROFILE + "/(?P<field>displayname|avatar_url)"
GOVERNMENT = PROFILE + r"/(?P<key>in\.gov\.broker\.\w+)"  # the node's namespace


class ProfileField(Body):
    """``PUT .../{field}``: the new value of the field the path names (null clears it)."""

    NULLABLE = frozenset({"displayname", "avatar_url"})
    displayname: str | None = None
    avatar_url: str | None = None


def _viewer(call: Call) -> str:
    return call.requester.user_id if call.requester is not None else ""


class ProfileEndpoints(Endpoints):
    def __init__(self, profiles: Profiles) -> None:
        self.profiles = profiles

    @endpoint("GET", PROFILE, access=Access.ANYONE_OR_USER)
    async def get_profile(self, call: Call, user_id: str) -> tuple[int, dict[str, Any]]:
        return 200, await self.profiles.profile(_viewer(call), user_id)

    @endpoint("GET", FIELD, access=Access.ANYONE_OR_USER)
    async def get_field(self, call: Call, user_id: str, field: str
                        ) -> tuple[int, dict[str, Any]]:
        profile = await self.profiles.profile(_viewer(call), user_id)
        return 200, {field: profile[field]} if field in profile else {}

    @endpoint("GET", GOVERNMENT, access=Access.ANYONE_OR_USER)
    async def get_government_field(self, call: Call, user_id: str, key: str
                                   ) -> tuple[int, dict[str, Any]]:
        profile = await self.profiles.profile(_viewer(call), user_id)
        if key not in profile:
            raise NotFound(f"{user_id} has no {key!r}")
        return 200, {key: profile[key]}

    @endpoint("PUT", GOVERNMENT, access=Access.USER, body=JsonObject)
    async def set_government_field(self, call: Call, user_id: str, key: str,
                                   body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        self.profiles.refuse_government_field(key)
        return 200, {}

    @endpoint("DELETE", GOVERNMENT, access=Access.USER)
    async def delete_government_field(self, call: Call, user_id: str, key: str
                                      ) -> tuple[int, dict[str, Any]]:
        self.profiles.refuse_government_field(key)
        return 200, {}

    @endpoint("PUT", FIELD, access=Access.USER, body=ProfileField)
    async def set_field(self, call: Call, user_id: str, field: str, body: ProfileField
                        ) -> tuple[int, dict[str, Any]]:
        self.profiles.check_owner(call.user.user_id, user_id)
        if not body.given(field):
            raise MissingInput(f"Missing '{field}'")
        await self.profiles.set_field(call.user.user_id, user_id, field, getattr(body, field))
        return 200, {}
