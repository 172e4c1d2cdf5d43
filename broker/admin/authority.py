"""Reading what a permission decision needs: the actor's grants and the organisation tree.

The decision itself is :mod:`broker.admin.permissions`; this only loads its inputs (admin
calls are rare and read the tree each time; nothing here is on the send or sync path).
"""

from __future__ import annotations

from broker.admin import permissions
from broker.admin.model import Actor, Grant, Tree
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
