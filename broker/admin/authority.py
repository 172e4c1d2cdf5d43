"""Reading what a permission decision needs: the actor's grants and the organisation tree.

The decision itself is :mod:`broker.admin.permissions`; this only loads its inputs (admin
calls are rare and read the tree each time; nothing here is on the send or sync path).
"""

from __future__ import annotations

from broker.admin import permissions
from broker.admin.model import Actor, BadField, Grant, Tree
from storage.organisations import OrganisationStore
from storage.roles import NODE, RoleStore


def grants_from_rows(rows: set[tuple[str, str]]) -> list[Grant]:
    return sorted((Grant(role, None if org == NODE else org) for role, org in rows),
                  key=lambda g: (g.role, g.organisation or ""))


class Authority:
    def __init__(self, roles: RoleStore, organisations: OrganisationStore) -> None:
        self.roles = roles
        self.organisations = organisations

    async def grants(self, actor: Actor) -> list[Grant]:
        if actor.authority is not None:
            return list(actor.authority)
        return grants_from_rows(await self.roles.grants_of(actor.user_id))

    async def tree(self) -> Tree:
        return Tree(await self.organisations.all())

    async def require(self, actor: Actor, action: str, organisation: str | None
                      ) -> tuple[Tree, list[Grant]]:
        """The tree and the actor's grants, once :func:`permissions.require` allowed it."""
        tree, grants = await self.tree(), await self.grants(actor)
        permissions.require(grants, action, organisation, tree)
        return tree, grants

    async def scope(self, actor: Actor, action: str, organisation: str | None
                    ) -> tuple[Tree, list[Grant], list[str] | None]:
        """What a listing of ``action`` covers: ``organisation``'s sub-tree (the actor must be
        allowed ``action`` on it), or every sub-tree the actor's grants for ``action`` cover
        (None: the whole node); with the tree and the actor's grants."""
        tree, grants = await self.tree(), await self.grants(actor)
        if organisation is not None:
            if organisation not in tree:
                raise BadField("organisation", f"unknown organisation {organisation!r}",
                               errcode="M_INVALID_PARAM")
            permissions.require(grants, action, organisation, tree)
            return tree, grants, tree.subtree(organisation)
        roots = permissions.visible_roots(permissions.require_some(grants, action), tree)
        return tree, grants, None if roots is None else [
            o for root in roots for o in tree.subtree(root)]
