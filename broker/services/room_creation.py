"""Creating a room on behalf of a user: the node's defaults (room version, encryption by
default), the creator's profile in their join, and the policy decision point for the creation and
for every invite it carries (with the facts of the room asked for: an official group's kind and
organisation, a direct chat, its members)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from broker.access_policy import INFORMAL, OFFICIAL, AccessPolicy, RoomFacts
from broker.admin.model import Tree
from broker.errors import InvalidInput
from broker.rooms.create_room import CreateRoomRequest
from broker.rooms.membership import MemberProfile
from broker.rooms.room_kind import DIRECT_KEY, requested_group
from storage.organisations import OrganisationStore

PRIVATE_PRESETS = ("private_chat", "trusted_private_chat")


def wants_encryption(policy: str, req: CreateRoomRequest) -> bool:
    """Whether the node's ``encryption_by_default`` (all, private, off) encrypts this room."""
    return policy == "all" or (policy == "private" and (
        req.preset in PRIVATE_PRESETS or req.is_direct))


class RoomCreation:
    def __init__(self, create: Callable[[CreateRoomRequest], Awaitable[str]],
                 member_profile: MemberProfile, policy: AccessPolicy, server_name: str,
                 encryption_by_default: str, organisations: OrganisationStore) -> None:
        self._create = create
        self.member_profile = member_profile  # what the creator's membership event restates
        self.policy = policy
        self.server_name = server_name
        self.encryption_by_default = encryption_by_default
        self.organisations = organisations
        self.on_created: Callable[[str, RoomFacts], None] | None = None  # creator, facts
        # Told the invitees before the room is made: application services are asked about
        # unknown users of their exclusive namespaces (who then exist to be invited).
        self.before_invites: Callable[[list[str]], Awaitable[None]] | None = None

    async def create(self, req: CreateRoomRequest) -> tuple[str, str | None]:
        """The new room's ID and its alias (if one was asked for)."""
        kind, organisation = requested_group(req.initial_state) or (INFORMAL, "")
        if req.is_direct:
            req.creation_content = {**req.creation_content, DIRECT_KEY: True}
        facts = RoomFacts(kind, organisation, req.creation_content.get(DIRECT_KEY) is True,
                          len({req.creator, *req.invite}))
        lineage = await self._lineage(organisation) if kind == OFFICIAL else ()
        self.policy.may_create_room(req.creator, facts, lineage)
        for invitee in req.invite:
            self.policy.may_invite(req.creator, invitee, "", room=facts)
        if req.invite and self.before_invites is not None:
            await self.before_invites(req.invite)
        req.encrypt = wants_encryption(self.encryption_by_default, req)
        req.creator_profile = await self.member_profile(req.creator, facts)
        room_id = await self._create(req)
        if self.on_created is not None:
            self.on_created(req.creator, facts)
        alias = f"#{req.room_alias_name}:{self.server_name}" if req.room_alias_name else None
        return room_id, alias

    async def _lineage(self, organisation: str) -> tuple[str, ...]:
        """The organisation and its ancestors, nearest first."""
        tree = Tree(await self.organisations.all())
        if organisation not in tree:
            raise InvalidInput(f"unknown organisation {organisation!r}")
        return tuple(tree.ancestors(organisation))
