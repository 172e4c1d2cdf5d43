"""The access policy's rules for official groups, member limits and direct chats.

- Only a verified user creates an official group, for their own organisation or one of its
  sub-tree (``official_group_by_verified_only``, ``official_group_own_organisation``).
- A room's kind is fixed at creation: a later ``in.gov.broker.group`` state event is refused
  (``group_kind_fixed``).
- An official group admits verified users only, whatever its join rule: invites (createRoom's
  too), joins, knocks and federation joins, knocks and invites of public users are refused
  (``official_group_verified_only``).  A user of another server is verified here while their
  own node attests it (:mod:`broker.remote_classes`, memory); whoever decides a join, knock or
  invite of such a user awaits :meth:`RemoteClasses.ensure` first.
- Each kind has a member limit from config, a direct chat two (``member_limit``,
  ``direct_room_two_members``), counted where the room writer serialises the room's changes;
  an organisation's image pack room has none (it holds all the organisation's members).

The rules read only the decision and the class cache (memory): no database round trip.
See docs/admin/groups.md.
"""

from __future__ import annotations

import sys

from broker.access_policy import (
    IMAGE_PACKS,
    OFFICIAL,
    Decision,
    InstalledRule,
    Refusal,
    RoomFacts,
)
from broker.admin.classes import UserClasses
from broker.config import GroupsConfig
from broker.remote_classes import RemoteClasses
from broker.rooms.room_kind import GROUP_EVENT
from protocol.signing import server_name_of

BY_VERIFIED_ONLY = "official_group_by_verified_only"
OWN_ORGANISATION = "official_group_own_organisation"
KIND_FIXED = "group_kind_fixed"
VERIFIED_ONLY = "official_group_verified_only"
MEMBER_LIMIT = "member_limit"
DIRECT_TWO = "direct_room_two_members"
DIRECT_MAX_MEMBERS = 2
RULE = InstalledRule(
    "official_groups",
    (BY_VERIFIED_ONLY, OWN_ORGANISATION, KIND_FIXED, VERIFIED_ONLY, MEMBER_LIMIT, DIRECT_TWO),
    "Official groups are created by verified users of their organisation's sub-tree, admit"
    " verified users only, and keep their kind; each kind of room has a member limit, a direct"
    " chat two members")


def limit_of(limits: GroupsConfig, room: RoomFacts) -> tuple[int, str]:
    """The most members (joined or invited) the room may have, and the rule's name (an
    organisation's image pack room holds all its members, however many)."""
    if room.kind == IMAGE_PACKS:
        return sys.maxsize, MEMBER_LIMIT
    if room.direct:
        return DIRECT_MAX_MEMBERS, DIRECT_TWO
    if room.kind == OFFICIAL:
        return limits.official_max_members, MEMBER_LIMIT
    return limits.informal_max_members, MEMBER_LIMIT


class GroupRules:
    def __init__(self, classes: UserClasses, remote: RemoteClasses, server_name: str,
                 limits: GroupsConfig) -> None:
        self.classes = classes
        self.remote = remote
        self.server_name = server_name
        self.limits = limits

    def verification_org(self, user_id: str) -> str | None:
        """The organisation a user is verified for now; None for a public user (a user of
        another server: as their node attests, if it still holds)."""
        if server_name_of(user_id) != self.server_name:
            return self.remote.verification_org(user_id)
        row = self.classes.verification(user_id)
        return None if row is None else row.org_id

    def rule(self, decision: Decision) -> Refusal | None:
        action, room = decision.action, decision.room
        if action == "send":
            return self._send(decision)
        if room is None:
            return None
        if action == "create_room":
            return self._create(decision, room)
        if action == "invite":
            return self._admit(decision.target, room)
        if action in ("join", "knock"):
            return self._admit(decision.actor, room)
        if action == "add_member":
            return self._count(room, room.members + 1)
        return None

    @staticmethod
    def _send(decision: Decision) -> Refusal | None:
        if decision.event_type == GROUP_EVENT:
            return Refusal(KIND_FIXED, "A room's kind is set when it is created and cannot"
                           " change")
        return None

    def _create(self, decision: Decision, room: RoomFacts) -> Refusal | None:
        if room.kind == OFFICIAL:
            org = self.verification_org(decision.actor)
            if org is None:
                return Refusal(BY_VERIFIED_ONLY, "Only verified users may create official"
                               " groups")
            if org not in decision.lineage:
                return Refusal(OWN_ORGANISATION, f"You may create official groups of {org} and"
                               f" its sub-organisations only, not of {room.organisation}")
        return self._count(room, room.members)

    def _admit(self, user_id: str, room: RoomFacts) -> Refusal | None:
        if room.kind == OFFICIAL and self.verification_org(user_id) is None:
            return Refusal(VERIFIED_ONLY, f"{user_id} is not verified: official groups admit"
                           " verified users only")
        return None

    def _count(self, room: RoomFacts, members: int) -> Refusal | None:
        limit, name = limit_of(self.limits, room)
        if members > limit:
            return Refusal(name, f"This room may have at most {limit} members")
        return None
