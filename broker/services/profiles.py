"""Users' profiles (display name, avatar, and the government fields the node sets: class,
organisation, designation): reads pass the policy decision point; a change is restated in the
user's joined rooms."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from broker.access_policy import AccessPolicy
from broker.errors import Forbidden, InvalidInput, NotFound
from broker.rooms.service import Rooms
from protocol.identifiers import is_user_id
from storage.users import UserStore

# Fields the node sets from the user's government account; nobody sets them through the
# profile API (see :func:`broker.admin.accounts.AdminAccounts.profile_fields`).
GOVERNMENT_FIELDS = ("in.gov.broker.class", "in.gov.broker.organisation",
                     "in.gov.broker.designation")
GovernmentFields = Callable[[str], Awaitable[dict[str, str]]]

# Longest value accepted per field (characters).
FIELD_LIMITS = {"displayname": 256, "avatar_url": 1000}


def validate_field(field: str, value: str | None) -> str | None:
    """The value to store for ``field`` (None clears it); ``InvalidInput`` if unusable."""
    if value is None or value == "":
        return None
    if len(value) > FIELD_LIMITS[field]:
        raise InvalidInput(f"'{field}' must be at most {FIELD_LIMITS[field]} characters")
    if field == "avatar_url" and not value.startswith("mxc://"):
        raise InvalidInput("'avatar_url' must be an mxc:// URI")
    return value


class Profiles:
    def __init__(self, users: UserStore, rooms: Rooms, policy: AccessPolicy,
                 server_name: str, government: GovernmentFields) -> None:
        self.users = users
        self.government = government
        self.rooms = rooms
        self.policy = policy
        self.server_name = server_name

    async def profile(self, viewer: str, user_id: str) -> dict[str, Any]:
        """``user_id``'s profile as ``viewer`` ("" when unauthenticated) may read it."""
        if not is_user_id(user_id):
            raise InvalidInput(f"{user_id!r} is not a user ID")
        self.policy.may_read_profile(viewer, user_id)
        if user_id.split(":", 1)[1] != self.server_name:
            raise NotFound("Profiles of users on other servers are not available")
        profile = await self.users.get_profile(user_id)
        if profile is None:
            raise NotFound("No such user")
        return {**profile, **await self.government(user_id)}

    @staticmethod
    def refuse_government_field(field: str) -> None:
        raise Forbidden(f"'{field}' is set by the node from your government account; ask"
                        " an admin of your organisation to change it")

    def check_owner(self, caller: str, user_id: str) -> None:
        """Only the owner may change a profile (checked before the body is read)."""
        if caller != user_id:
            raise Forbidden("You may only change your own profile")

    async def set_field(self, caller: str, user_id: str, field: str, value: str | None) -> None:
        self.check_owner(caller, user_id)
        await self.users.set_profile_field(user_id, field, validate_field(field, value))
        await self.rooms.propagate_profile(user_id)
