"""Role grants: reading and replacing a user's roles (the admin API), granting and revoking
one (``broker roles grant|revoke``).

Every grant added or removed must be within the actor's own authority
(:func:`broker.admin.permissions.require_grant_authority`: no escalation), and no change may
leave the node without a node admin (checked in the write's transaction).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from broker.admin import permissions
from broker.admin.audit import AuditLog, Recording
from broker.admin.authority import Authority, grants_from_rows
from broker.admin.model import Actor, BadField, Grant, Tree, check_body, check_org_id
from broker.errors import Forbidden, NotFound
from storage.roles import NODE, LastNodeAdmin, RoleStore

FindUser = Callable[[str], Awaitable[object | None]]  # the user's record, None if unknown


def grants_from_body(body: dict[str, Any]) -> set[Grant]:
    """The grants of a ``{"roles": [{"role", "organisation"?}]}`` body."""
    check_body(body, ("roles",), ("roles",))
    if not isinstance(body["roles"], list):
        raise BadField("roles", "must be a list of {\"role\", \"organisation\"?} objects")
    found: set[Grant] = set()
    for index, item in enumerate(body["roles"]):
        field = f"roles[{index}]"
        if not isinstance(item, dict):
            raise BadField(field, "must be an object with 'role' and optional 'organisation'")
        for name in item:
            if name not in ("role", "organisation"):
                raise BadField(f"{field}.{name}", "unknown field (expected one of: role,"
                               " organisation)")
        if not isinstance(item.get("role"), str):
            raise BadField(f"{field}.role", "must be a string")
        organisation = item.get("organisation")
        if organisation is not None:
            check_org_id(organisation, f"{field}.organisation")
        found.add(Grant(item["role"], organisation))
    return found


class Roles:
    def __init__(self, store: RoleStore, authority: Authority, audit: AuditLog, clock: Any,
                 find_user: FindUser, changed: Callable[[str], None]) -> None:
        self.store = store
        self.authority = authority
        self.audit = audit
        self.clock = clock
        self.find_user = find_user
        self.changed = changed  # told the user whose grants changed (caches of the flag)

    async def get(self, actor: Actor, user_id: str) -> list[Grant]:
        """The user's grants the actor may see (node-wide readers see all of them)."""
        async with self.audit.recording(actor, permissions.ROLES_READ, user_id):
            tree, grants = await self.authority.tree(), await self.authority.grants(actor)
            readers = permissions.require_some(grants, permissions.ROLES_READ)
            await self._existing(user_id)
            return await self.visible(user_id, readers, tree)

    async def visible(self, user_id: str, readers: list[Grant], tree: Tree) -> list[Grant]:
        """The user's grants that ``readers`` (the reader's grants allowing roles.read) cover:
        all of them for a node-wide reader."""
        held = grants_from_rows(await self.store.grants_of(user_id))
        if any(r.organisation is None for r in readers):
            return held
        return [g for g in held if g.organisation is not None
                and any(permissions.covers(r, g.organisation, tree) for r in readers)]

    async def replace(self, actor: Actor, user_id: str, body: dict[str, Any]) -> list[Grant]:
        """Make the user's grants exactly those of ``body``."""
        async with self.audit.recording(actor, permissions.ROLES_CHANGE, user_id) as entry:
            wanted = grants_from_body(body)
            return await self._change(actor, entry, lambda held: wanted)

    async def grant(self, actor: Actor, user_id: str, grant: Grant) -> list[Grant]:
        async with self.audit.recording(actor, permissions.ROLES_CHANGE, user_id) as entry:
            return await self._change(actor, entry, lambda held: held | {grant})

    async def revoke(self, actor: Actor, user_id: str, grant: Grant) -> list[Grant]:
        async with self.audit.recording(actor, permissions.ROLES_CHANGE, user_id) as entry:
            return await self._change(actor, entry, lambda held: held - {grant})

    async def _change(self, actor: Actor, entry: Recording,
                      wanted_from: Callable[[set[Grant]], set[Grant]]) -> list[Grant]:
        tree, grants = await self.authority.tree(), await self.authority.grants(actor)
        permissions.require_some(grants, permissions.ROLES_CHANGE)
        await self._existing(entry.target)
        held = set(grants_from_rows(await self.store.grants_of(entry.target)))
        wanted = wanted_from(held)
        for grant in sorted(wanted, key=_order):
            permissions.check_grant_shape(grant, tree)
        added, removed = sorted(wanted - held, key=_order), sorted(held - wanted, key=_order)
        entry.organisation = next((g.organisation for g in [*added, *removed]
                                   if g.organisation), None)
        entry.detail.update(added=[g.to_json() for g in added],
                            removed=[g.to_json() for g in removed])
        for grant in [*added, *removed]:
            permissions.require_grant_authority(grants, grant, tree)
        try:
            await self.store.replace(entry.target, _rows(wanted), actor.user_id,
                                     self.clock.time_ms(), entry.draft())
        except LastNodeAdmin as e:
            raise Forbidden("The node's last node admin cannot be removed: grant node_admin"
                            " to someone else first") from e
        self.changed(entry.target)
        return sorted(wanted, key=_order)

    async def _existing(self, user_id: str) -> None:
        if await self.find_user(user_id) is None:
            raise NotFound(f"no user {user_id!r} on this node")


def _order(grant: Grant) -> tuple[str, str]:
    return grant.role, grant.organisation or ""


def _rows(grants: Iterable[Grant]) -> set[tuple[str, str]]:
    return {(g.role, g.organisation or NODE) for g in grants}
