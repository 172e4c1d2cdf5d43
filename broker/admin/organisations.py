"""Organisations: creating, reading, changing and deleting them, one at a time (the admin
API) or many at once (a YAML file, at start or with ``broker orgs import``).

Every call asks :mod:`broker.admin.permissions` first and is recorded in the audit log (a
change in the transaction that makes it; a refusal on its own).  Deleting needs an empty
organisation: no sub-organisations, no members (asked of ``members``, the user to
organisation table) and no role grants scoped to it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from typing import Any

from broker.admin import permissions
from broker.admin.audit import AuditLog, Recording
from broker.admin.authority import Authority
from broker.admin.model import (
    Actor,
    EntryError,
    FieldConflict,
    Tree,
    check_org_id,
    organisation_from,
    organisation_json,
)
from broker.errors import Conflict, DomainError, MalformedContent, NotFound
from storage.audit import AuditDraft
from storage.database import IntegrityError
from storage.organisations import Organisation, OrganisationStore

Count = Callable[[str], Awaitable[int]]
Written = Callable[[list[Organisation]], None]
Deleted = Callable[[str], None]


def check_domains(tree: Tree | dict[str, str], org: Organisation) -> None:
    """Refuse an email domain another organisation owns (in ``tree``, or a mapping of
    domain to owner)."""
    owners = tree if isinstance(tree, dict) else {
        domain: other.org_id for other in tree.orgs.values() for domain in other.email_domains}
    for index, domain in enumerate(org.email_domains):
        owner = owners.get(domain)
        if owner is not None and owner != org.org_id:
            raise FieldConflict(f"email_domains[{index}]", f"{domain!r} belongs to {owner!r}")


def check_entries(entries: Sequence[Any], now_ms: int,
                  existing: Tree | None = None) -> list[Organisation]:
    """The organisations a list of entries describes (each a create body; one naming an
    existing organisation updates the fields it gives), checked against each other and
    ``existing``: IDs, fields, duplicates, parents, cycles and email domains.  The first
    problem is an :class:`EntryError` naming the entry and the field."""
    existing = existing or Tree(())
    found: list[Organisation] = []
    for index, entry in enumerate(entries):
        try:
            if not isinstance(entry, dict):
                raise MalformedContent("must be a mapping of organisation fields")
            before = existing.get(check_org_id(entry.get("id")))
            org = organisation_from(entry, now_ms) if before is None else organisation_from(
                {k: v for k, v in entry.items() if k != "id"}, now_ms, before)
            if any(o.org_id == org.org_id for o in found):
                raise FieldConflict("id", f"{org.org_id!r} is listed twice")
        except DomainError as e:
            raise EntryError(index, e) from e
        found.append(org)
    listed = {f.org_id for f in found}
    kept = [o for o in existing.orgs.values() if o.org_id not in listed]
    merged = Tree([*kept, *found])
    owners = {domain: o.org_id for o in kept for domain in o.email_domains}
    for index, org in enumerate(found):
        try:
            merged.check_placement(org.org_id, org.parent)
            check_domains(owners, org)  # against the rest of the node and earlier entries
        except DomainError as e:
            raise EntryError(index, e) from e
        owners.update(dict.fromkeys(org.email_domains, org.org_id))
    return sorted(found, key=lambda o: len(list(merged.ancestors(o.org_id))))


class Organisations:
    def __init__(self, store: OrganisationStore, authority: Authority, audit: AuditLog,
                 clock: Any, members: Count, grants_in: Count) -> None:
        self.store = store
        self.authority = authority
        self.audit = audit
        self.clock = clock
        self.members = members
        self.grants_in = grants_in
        self._written: list[Written] = []
        self._deleted: list[Deleted] = []

    def watch(self, written: Written, deleted: Deleted) -> None:
        """Tell ``written`` the organisations each change creates or changes (after it is
        stored), ``deleted`` each one deleted (what the node holds in memory of them)."""
        self._written.append(written)
        self._deleted.append(deleted)

    def _tell_written(self, orgs: list[Organisation]) -> None:
        for listener in self._written:
            listener(orgs)

    async def create(self, actor: Actor, body: dict[str, Any]) -> Organisation:
        async with self.audit.recording(actor, permissions.ORG_CREATE) as entry:
            entry.target = str(body.get("id", ""))
            org = organisation_from(body, self.clock.time_ms())
            entry.organisation = org.org_id
            tree, _ = await self.authority.require(actor, permissions.ORG_CREATE, org.parent)
            if org.org_id in tree:
                raise FieldConflict("id", f"organisation {org.org_id!r} exists already")
            tree.check_placement(org.org_id, org.parent)
            check_domains(tree, org)
            entry.detail["organisation"] = organisation_json(org)
            await self._write(self.store.create(org, entry.draft()))
        self._tell_written([org])
        return org

    async def get(self, actor: Actor, org_id: str) -> tuple[Organisation, list[str]]:
        """The organisation and the IDs of its sub-organisations."""
        async with self.audit.recording(actor, permissions.ORG_READ, org_id) as entry:
            entry.organisation = org_id
            tree, _ = await self.authority.require(actor, permissions.ORG_READ, org_id)
            return self._existing(tree, org_id), tree.children(org_id)

    async def tree(self, actor: Actor) -> list[dict[str, Any]]:
        """The tree as nested objects: all of it, or the sub-trees the actor's grants cover."""
        async with self.audit.recording(actor, permissions.ORG_READ):
            tree, grants = await self.authority.tree(), await self.authority.grants(actor)
            roots = permissions.visible_roots(
                permissions.require_some(grants, permissions.ORG_READ), tree)
            if roots is None:
                return tree.nested()
            return [{**organisation_json(tree.orgs[root]), "children": tree.nested(root)}
                    for root in roots]

    async def update(self, actor: Actor, org_id: str, body: dict[str, Any]) -> Organisation:
        async with self.audit.recording(actor, permissions.ORG_UPDATE, org_id) as entry:
            entry.organisation = org_id
            tree, grants = await self.authority.require(actor, permissions.ORG_UPDATE, org_id)
            before = self._existing(tree, org_id)
            org = organisation_from(body, self.clock.time_ms(), before)
            if org.parent != before.parent:  # a move: the new place must be the actor's too
                permissions.require(grants, permissions.ORG_CREATE, org.parent, tree)
                tree.check_placement(org_id, org.parent)
            check_domains(tree, org)
            entry.detail["changed"] = {k: organisation_json(org)[k] for k in sorted(body)}
            await self._write(self.store.update(org, entry.draft()))
        self._tell_written([org])
        return org

    async def delete(self, actor: Actor, org_id: str) -> None:
        async with self.audit.recording(actor, permissions.ORG_DELETE, org_id) as entry:
            entry.organisation = org_id
            tree, _ = await self.authority.require(actor, permissions.ORG_DELETE, org_id)
            self._existing(tree, org_id)
            if tree.children(org_id):
                raise Conflict(f"organisation {org_id!r} has sub-organisations"
                               f" ({', '.join(tree.children(org_id))}): delete or move them first")
            members = await self.members(org_id)
            if members:
                raise Conflict(f"organisation {org_id!r} has {members} member(s): move them"
                               " first")
            grants = await self.grants_in(org_id)
            if grants:
                raise Conflict(f"organisation {org_id!r} has {grants} role grant(s) scoped to"
                               " it: revoke them first")
            await self._write(self.store.delete(org_id, entry.draft()))
        for listener in self._deleted:
            listener(org_id)

    async def import_entries(self, actor: Actor, entries: Sequence[Any], target: str,
                             source: str = "", digest: str = "") -> list[Organisation]:
        """Create or update every organisation ``entries`` name (read from ``target``), all
        or nothing; with a ``source``, record ``digest`` as the content last applied from it."""
        async with self.audit.recording(actor, "organisations.import", target) as entry:
            now = self.clock.time_ms()
            tree, grants = await self.authority.tree(), await self.authority.grants(actor)
            orgs = check_entries(entries, now, tree)
            drafts = []
            for org in orgs:
                before = tree.get(org.org_id)
                if before is None:
                    action = permissions.ORG_CREATE
                    permissions.require(grants, action, org.parent, tree)
                else:
                    action = permissions.ORG_UPDATE
                    permissions.require(grants, action, org.org_id, tree)
                    if org.parent != before.parent:  # a move, as through the API
                        permissions.require(grants, permissions.ORG_CREATE, org.parent, tree)
                drafts.append(self.audit_entry(entry, action, org))
            await self._write(self.store.save_all(
                orgs, drafts, (source, digest, now) if source else None))
        self._tell_written(orgs)
        return orgs

    @staticmethod
    def audit_entry(entry: Recording, action: str, org: Organisation) -> AuditDraft:
        """The entry of one organisation written by an import."""
        return replace(entry.draft(), action=action, target=org.org_id,
                       organisation=org.org_id,
                       detail={"source": entry.target, "organisation": organisation_json(org)})

    async def applied_digest(self, source: str) -> str | None:
        return await self.store.applied_digest(source)

    @staticmethod
    def _existing(tree: Tree, org_id: str) -> Organisation:
        org = tree.get(org_id)
        if org is None:
            raise NotFound(f"no organisation {org_id!r}")
        return org

    @staticmethod
    async def _write(write: Awaitable[None]) -> None:
        try:
            await write
        except IntegrityError as e:  # a concurrent change got there first
            raise Conflict(f"the change conflicts with another one made meanwhile: {e}") from e
