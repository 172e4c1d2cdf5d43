"""What kind of room a live room is, read from its state in memory: an official group (state
``in.gov.broker.group`` with ``"kind": "official"``), a direct chat (a create event made by
createRoom with ``is_direct``), or an informal room; and how many members it has.

These are the facts the access policy decides on (:class:`broker.access_policy.RoomFacts`).
"""

from __future__ import annotations

from typing import Any

from broker.access_policy import IMAGE_PACKS, INFORMAL, OFFICIAL, RoomFacts
from broker.errors import InvalidInput
from broker.rooms.live_room import LiveRoom
from protocol.signing import server_name_of

GROUP_EVENT = "in.gov.broker.group"
# A key of m.room.create content: the room was created as a direct chat (createRoom is_direct).
DIRECT_KEY = "in.gov.broker.direct"
# A key of m.room.create content: the room holds an organisation's image packs (its value).
IMAGE_PACKS_KEY = "in.gov.broker.image_packs"
KINDS = (OFFICIAL, INFORMAL)
# Memberships counted against a room's member limit.
COUNTED = ("join", "invite")


def facts_of(room: LiveRoom, server_name: str) -> RoomFacts:
    """The room's facts as this node (``server_name``) holds them.  A room is an official
    group only when it was created here and its creator set the group event: this node's
    policy checked that creation and refuses any later group event, so a group event in a
    room made elsewhere, or sent by anyone else (a user of another server with the power to),
    makes no official group."""
    create = room.state.get(("m.room.create", ""))
    group = room.state.get((GROUP_EVENT, ""))
    kind, organisation = INFORMAL, ""
    if group is not None and create is not None and declares_official(room) and \
            server_name_of(create.sender) == server_name:
        kind, organisation = OFFICIAL, str(group.content.get("organisation", ""))
    elif create is not None and isinstance(create.content.get(IMAGE_PACKS_KEY), str) and \
            server_name_of(create.sender) == server_name:
        kind, organisation = IMAGE_PACKS, create.content[IMAGE_PACKS_KEY]
    direct = create is not None and create.content.get(DIRECT_KEY) is True
    return RoomFacts(kind, organisation, direct, len(room.members_with(*COUNTED)))


def knock_reaches(room: LiveRoom, user_id: str) -> list[str]:
    """Whom a knock on the room asks to be let in by, for the access policy: the other party
    of a direct chat (its joined and invited members but the knocker); nobody in particular
    for any other room (its moderators decide)."""
    create = room.state.get(("m.room.create", ""))
    if create is None or create.content.get(DIRECT_KEY) is not True:
        return []
    return [u for u in room.members_with(*COUNTED) if u != user_id]


def declares_official(room: LiveRoom) -> bool:
    """Whether the room's creator made it an official group, on whichever server: the rooms
    a user who stops being verified leaves (their node speaks for them everywhere; only the
    node that created the group checked it and admits to it, see :func:`facts_of`)."""
    create = room.state.get(("m.room.create", ""))
    group = room.state.get((GROUP_EVENT, ""))
    return group is not None and create is not None and group.sender == create.sender and \
        group.content.get("kind") == OFFICIAL


def adds_member(room: LiveRoom, membership: str | None, target: str) -> bool:
    """Whether ``target`` taking ``membership`` makes them a counted member they were not."""
    return membership in COUNTED and room.membership_of(target) not in COUNTED


def requested_group(initial_state: list[dict[str, Any]]) -> tuple[str, str] | None:
    """The kind and organisation createRoom's ``initial_state`` asks for (None: no group
    event); InvalidInput for a group event that is not one of the shapes the node knows."""
    found = [s for s in initial_state if s.get("type") == GROUP_EVENT]
    if not found:
        return None
    if len(found) > 1 or found[0].get("state_key", "") != "":
        raise InvalidInput(f"initial_state may hold one {GROUP_EVENT} event, of state key \"\"")
    content = found[0].get("content")
    if not isinstance(content, dict) or content.get("kind") not in KINDS:
        raise InvalidInput(f"{GROUP_EVENT} content needs \"kind\": one of {', '.join(KINDS)}")
    organisation = content.get("organisation")
    if content["kind"] == OFFICIAL and (not isinstance(organisation, str) or not organisation):
        raise InvalidInput(f"an official group's {GROUP_EVENT} names its \"organisation\"")
    return str(content["kind"]), organisation if isinstance(organisation, str) else ""
