"""Who a broadcast reaches: the members of the sending organisation's sub-tree (active
accounts placed in it), narrowed by each criterion the audience gives, all of them at once:

- ``organisations``: placed in one of these organisations or their sub-trees (each within the
  sender's sub-tree, else refused);
- ``designations``: holding one of these designations;
- ``roles``: holding one of these roles over an organisation of the sub-tree;
- ``users``: one of these users (each a member of the sub-tree, else refused, naming them).

An empty audience (``{}``) is the whole sub-tree.  A broadcast that would reach nobody is
refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from broker.access_policy import REASON_FIELD
from broker.admin.model import ROLES, BadField, Tree, check_body, check_org_id
from broker.errors import InvalidInput
from protocol.identifiers import is_user_id
from storage.broadcasts import BroadcastStore

FIELDS = ("organisations", "designations", "roles", "users")
MAX_LISTED = 10_000  # entries of one criterion
OUTSIDE = "broadcast_recipient_outside_organisation"
EMPTY = "broadcast_audience_empty"


@dataclass(frozen=True)
class Audience:
    organisations: tuple[str, ...] = ()
    designations: tuple[str, ...] = ()
    roles: tuple[str, ...] = ()
    users: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {name: list(getattr(self, name)) for name in FIELDS if getattr(self, name)}


def _strings(value: Any, field: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise BadField(field, "must be a list of non-empty strings")
    if len(value) > MAX_LISTED:
        raise BadField(field, f"may list at most {MAX_LISTED}", errcode="M_INVALID_PARAM")
    return tuple(dict.fromkeys(value))


def parse_audience(value: Any) -> Audience:
    """The ``audience`` field of a broadcast (absent or null: everyone)."""
    if value is None:
        return Audience()
    if not isinstance(value, dict):
        raise BadField("audience", "must be an object")
    check_body(value, FIELDS)
    lists = {name: _strings(value[name], f"audience.{name}") for name in FIELDS
             if value.get(name) is not None}
    for index, org_id in enumerate(lists.get("organisations", ())):
        check_org_id(org_id, f"audience.organisations[{index}]")
    for index, role in enumerate(lists.get("roles", ())):
        if role not in ROLES:
            raise BadField(f"audience.roles[{index}]", f"must be one of: {', '.join(ROLES)}",
                           errcode="M_INVALID_PARAM")
    for index, user_id in enumerate(lists.get("users", ())):
        if not is_user_id(user_id):
            raise BadField(f"audience.users[{index}]", f"{user_id!r} is not a user ID",
                           errcode="M_INVALID_PARAM")
    return Audience(**lists)


async def recipients(store: BroadcastStore, tree: Tree, org_id: str, audience: Audience,
                     exclude: str) -> list[str]:
    """The users ``audience`` names within ``org_id``'s sub-tree, in user ID order
    (``exclude``: the sender)."""
    scope = tree.subtree(org_id)
    for listed in audience.organisations:
        if listed not in scope:
            raise InvalidInput(f"{listed!r} is not {org_id!r} nor one of its sub-organisations",
                               **{REASON_FIELD: OUTSIDE})
    members = await store.members(scope)
    if audience.users:
        known = {user for user, _, _ in members}
        outside = [user for user in audience.users if user not in known]
        if outside:
            raise InvalidInput(f"not members of {org_id!r} or its sub-organisations: "
                               f"{', '.join(outside[:20])}", **{REASON_FIELD: OUTSIDE},
                               users=outside)
    users, designations = set(audience.users), set(audience.designations)
    chosen = [user for user, member_of, designation in members
              if _matches(tree, audience, users, designations, member_of, designation, user)]
    if audience.roles:
        holders = await store.role_holders(audience.roles, scope)
        chosen = [user for user in chosen if user in holders]
    chosen = [user for user in chosen if user != exclude]
    if not chosen:
        raise InvalidInput("the audience holds nobody", **{REASON_FIELD: EMPTY})
    return chosen


def _matches(tree: Tree, audience: Audience, users: set[str], designations: set[str],
             member_of: str, designation: str, user: str) -> bool:
    if users and user not in users:
        return False
    if designations and designation not in designations:
        return False
    return not audience.organisations or any(
        tree.covers(listed, member_of) for listed in audience.organisations)
