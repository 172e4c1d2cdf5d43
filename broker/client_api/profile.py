"""Profiles: ``GET /profile/{userId}`` and ``GET/PUT /profile/{userId}/{displayname|avatar_url}``.

Reading a profile needs no access token (a token, if given, says who reads, for the policy).
Only the owner may change a profile (403 M_FORBIDDEN otherwise); an unknown local user is
404 M_NOT_FOUND.  Remote profiles would need a federation query, which this node does not make
yet: they are 404 M_NOT_FOUND too.  A change is restated in the user's joined rooms (see
:mod:`broker.services.profiles`).
"""

from __future__ import annotations

from typing import Any

from broker.client_api import CLIENT_PREFIX
from broker.errors import MissingInput
from broker.http.bodies import Body
from broker.http.endpoint import Access, Call, Endpoints, endpoint
from broker.services.profiles import Profiles

PROFILE = f"{CLIENT_PREFIX}/profile/(?P<user_id>[^/]+)"
FIELD = PROFILE + "/(?P<field>displayname|avatar_url)"


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

    @endpoint("PUT", FIELD, access=Access.USER, body=ProfileField)
    async def set_field(self, call: Call, user_id: str, field: str, body: ProfileField
                        ) -> tuple[int, dict[str, Any]]:
        self.profiles.check_owner(call.user.user_id, user_id)
        if not body.given(field):
            raise MissingInput(f"Missing '{field}'")
        await self.profiles.set_field(call.user.user_id, user_id, field, getattr(body, field))
        return 200, {}
