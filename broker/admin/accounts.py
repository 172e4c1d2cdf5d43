"""Government accounts through the admin API: creating, reading, listing, changing and
deactivating them.

Every call asks :mod:`broker.admin.permissions` on the user's organisation (an account in no
organisation needs a node-wide grant) and is recorded in the audit log, a change in the
transaction that makes it.  A new account is public unless created ``"class": "verified"`` by
someone allowed to verify for its organisation; moving a user to another organisation ends
their verification (it was for the old one).  Deactivation is the client API's own
(:meth:`broker.services.accounts.Accounts.end_account`): every session ends at once.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any

from broker.admin import permissions
from broker.admin.account_fields import (
    REACHABLE,
    Place,
    account_json,
    check_create,
    check_localpart,
    check_update,
    place_from,
    verification_json,
)
from broker.admin.audit import AuditLog, Recording
from broker.admin.authority import Authority
from broker.admin.classes import PUBLIC, UserClasses
from broker.admin.model import Actor, BadField, Grant, Tree, check_body
from broker.admin.reachability import Reachability
from broker.admin.roles import Roles
from broker.errors import Conflict, Forbidden, NotFound
from storage.accounts import AccountRow, AccountStore, NewAccount, UserQuery, VerificationRow
from storage.audit import AuditDraft
from storage.database import IntegrityError
from storage.reachability import set_forced_txn

HashPassword = Callable[[str], Awaitable[str]]
EndAccount = Callable[[str, Callable[[], Awaitable[list[str]]]], Awaitable[None]]


@dataclass(frozen=True)
class AccountDeps:
    """What the accounts service needs besides its store (given by the node or a command)."""

    server_name: str
    hash_password: HashPassword
    check_password: Callable[[str], None]  # the password policy
    end_account: EndAccount


def new_verification(user_id: str, org_id: str, basis: str, actor: Actor, now_ms: int,
                     expires_ts: int | None = None) -> VerificationRow:
    return VerificationRow(secrets.token_hex(12), user_id, org_id, basis, actor.user_id,
                           now_ms, expires_ts)


class AdminAccounts:
    def __init__(self, store: AccountStore, authority: Authority, audit: AuditLog, clock: Any,
                 classes: UserClasses, roles: Roles, deps: AccountDeps,
                 reachability: Reachability) -> None:
        self.store = store
        self.authority = authority
        self.audit = audit
        self.clock = clock
        self.classes = classes
        self.roles = roles
        self.deps = deps
        self.reachability = reachability
        self._moved: list[Callable[[str], None]] = []
        self._created: list[Callable[[str], None]] = []

    def on_moved(self, listener: Callable[[str], None]) -> None:
        """Tell ``listener`` each user this node moves to another organisation (or out of
        one), once the move is stored."""
        self._moved.append(listener)

    def on_created(self, listener: Callable[[str], None]) -> None:
        """Tell ``listener`` each account created (one at a time or imported), once stored."""
        self._created.append(listener)

    # -- reading ---------------------------------------------------------------------------
    async def existing(self, user_id: str) -> AccountRow:
        row = await self.store.account(user_id)
        if row is None:
            raise NotFound(f"no user {user_id!r} on this node")
        return row

    async def located(self, entry: Recording) -> AccountRow:
        """The account ``entry`` targets, its organisation set on ``entry``."""
        row = await self.existing(entry.target)
        entry.organisation = Place.of(row.member).organisation
        return row

    async def fresh(self, user_id: str, tree: Tree, grants: list[Grant]) -> dict[str, Any]:
        """The account's JSON as it is now (after a change)."""
        return await self.answer(await self.existing(user_id), tree, grants)

    async def answer(self, row: AccountRow, tree: Tree, grants: list[Grant]) -> dict[str, Any]:
        """The account's JSON for a reader holding ``grants``."""
        history = await self.store.history(row.user_id)
        last = next((v for v in reversed(history) if v.revoked_ts is None), None)
        readers = [g for g in grants if g.role in permissions.PERMISSIONS[permissions.ROLES_READ]]
        roles = [g.to_json() for g in await self.roles.visible(row.user_id, readers, tree)]
        user_class = PUBLIC if row.deactivated else self.classes.class_of(row.user_id)
        return account_json(row, user_class,
                            None if last is None else verification_json(
                                last, self.clock.time_ms()), roles,
                            self.reachability.forced_of(row.user_id))

    async def get(self, actor: Actor, user_id: str) -> dict[str, Any]:
        async with self.audit.recording(actor, permissions.USERS_READ, user_id) as entry:
            row = await self.located(entry)
            tree, grants = await self.authority.require(actor, permissions.USERS_READ,
                                                        entry.organisation)
            return await self.answer(row, tree, grants)

    async def list_users(self, actor: Actor, organisation: str | None, user_class: str | None,
                   q: str, after: str, limit: int) -> list[dict[str, Any]]:
        """Accounts the actor may read, in user ID order: in ``organisation``'s sub-tree (if
        given), of ``user_class`` (if given), matching ``q``, after ``after``."""
        async with self.audit.recording(actor, permissions.USERS_READ) as entry:
            entry.organisation = organisation
            tree, grants, scope = await self.authority.scope(actor, permissions.USERS_READ,
                                                             organisation)
            found: list[dict[str, Any]] = []
            while len(found) < limit:
                rows = await self.store.accounts(UserQuery(scope, q, after, limit))
                for row in rows:
                    answer = await self.answer(row, tree, grants)
                    if user_class is None or answer["class"] == user_class:
                        found.append(answer)
                if len(rows) < limit:
                    break
                after = rows[-1].user_id
            return found[:limit]

    async def profile_fields(self, user_id: str) -> dict[str, str]:
        """The government fields of the user's profile: class always, organisation,
        designation, official email and phone when the user has them (a deactivated account
        shows only that it is public: the user has left).  All of them: what a viewer sees
        is :mod:`broker.admin.profile_visibility`'s choice."""
        row = await self.store.account(user_id)
        if row is None or row.deactivated:
            return {"in.gov.broker.class": PUBLIC}
        place = Place.of(row.member)
        found = {"in.gov.broker.class": self.classes.class_of(user_id)}
        if place.organisation is not None:
            found["in.gov.broker.organisation"] = place.organisation
        for name, key in (("designation", "in.gov.broker.designation"),
                          ("email", "in.gov.broker.email"), ("phone", "in.gov.broker.phone")):
            value = getattr(place, name)
            if value is not None:
                found[key] = value
        return found

    # -- changing --------------------------------------------------------------------------
    async def create(self, actor: Actor, body: dict[str, Any]) -> dict[str, Any]:
        async with self.audit.recording(actor, permissions.USERS_CREATE) as entry:
            tree, grants = await self.authority.tree(), await self.authority.grants(actor)
            account, password = self.prepare(entry, tree, grants, body)
            if password is not None:
                account = replace(account,
                                  password_hash=await self.deps.hash_password(password))
            await self.write([account], [entry.draft()])
            return await self.fresh(account.user_id, tree, grants)

    def prepare(self, entry: Recording, tree: Tree, grants: list[Grant],
                body: dict[str, Any]) -> tuple[NewAccount, str | None]:
        """The account a create body describes (its password not hashed yet) and its
        password: every field checked and the actor's right asked, as one account through
        the API or each of an import; ``entry`` is set to record it."""
        check_create(body)
        user_id = check_localpart(body["localpart"], self.deps.server_name)
        entry.target = user_id
        place = place_from(body)
        entry.organisation = place.organisation
        permissions.require(grants, permissions.USERS_CREATE, place.organisation, tree)
        self._check_place(tree, place)
        verification = None
        if body.get("class") == "verified":
            verification = self._verification_at_creation(
                entry.actor, grants, tree, user_id, place, body.get("basis", "in_person"))
        password = body.get("password")
        if password is not None:
            self.deps.check_password(password)
        entry.detail.update(place=_place_json(place), verified=verification is not None)
        return NewAccount(user_id, None, entry.ts, body.get("displayname"),
                          place.member(user_id), verification), password

    async def write(self, accounts: list[NewAccount], entries: list[AuditDraft],
                    written: Callable[[int], None] | None = None) -> None:
        """Create the prepared accounts, all or none (see :meth:`AccountStore.create_all`)."""
        try:
            await self.store.create_all(accounts, entries, written)
        except IntegrityError as e:
            if len(accounts) == 1:
                raise Conflict(f"{accounts[0].user_id} exists already",
                               errcode="M_USER_IN_USE") from e
            raise Conflict("an account was created meanwhile with a user ID of the file: nothing"
                           " was written (run it again to see which)",
                           errcode="M_USER_IN_USE") from e
        for account in accounts:
            if account.verification is not None:
                self.classes.verified(account.verification)
            for listener in self._created:
                listener(account.user_id)

    def _verification_at_creation(self, actor: Actor, grants: list[Grant], tree: Tree,
                                  user_id: str, place: Place, basis: str) -> VerificationRow:
        if place.organisation is None:
            raise BadField("class", "a verified account needs an organisation",
                           errcode="M_INVALID_PARAM")
        try:
            permissions.require(grants, permissions.VERIFY, place.organisation, tree)
        except Forbidden as e:
            raise Forbidden(f"You may create accounts but not verified ones: {e.message}"
                            ) from e
        return new_verification(user_id, place.organisation, basis, actor,
                                self.clock.time_ms())

    async def update(self, actor: Actor, user_id: str, body: dict[str, Any]) -> dict[str, Any]:
        async with self.audit.recording(actor, permissions.USERS_UPDATE, user_id) as entry:
            row = await self.existing(user_id)
            before = Place.of(row.member)
            entry.organisation = before.organisation
            tree, grants = await self.authority.require(actor, permissions.USERS_UPDATE,
                                                        before.organisation)
            check_update(body)
            place = place_from(body, before)
            moved = place.organisation != before.organisation
            if moved:  # the new place must be the actor's too
                permissions.require(grants, permissions.USERS_UPDATE, place.organisation, tree)
                self._check_place(tree, place)
            entry.detail.update(changed={k: body[REACHABLE] if k == REACHABLE else
                                         getattr(place, k) for k in sorted(body)})
            ends = moved and self.classes.verification(user_id) is not None
            entry.detail.update(verification_ended=ends)
            now = self.clock.time_ms()
            reach = (lambda cur: set_forced_txn(cur, user_id, body[REACHABLE], actor.user_id,
                                                now)) if REACHABLE in body else None
            await self.store.update(user_id, place.member(user_id),
                                    actor.user_id if moved else None, now, entry.draft(), reach)
            if REACHABLE in body:
                self.reachability.force(user_id, body[REACHABLE])
            if moved:
                self.classes.ended(user_id)
                for listener in self._moved:
                    listener(user_id)
            return await self.fresh(user_id, tree, grants)

    async def deactivate(self, actor: Actor, user_id: str, body: dict[str, Any]
                         ) -> dict[str, Any]:
        async with self.audit.recording(actor, permissions.USERS_DEACTIVATE, user_id) as entry:
            check_body(body, ())
            row = await self.located(entry)
            tree, grants = await self.authority.require(actor, permissions.USERS_DEACTIVATE,
                                                        entry.organisation)
            if row.deactivated:
                raise Conflict(f"{user_id} is deactivated already")
            if any(g.role == "node_admin" for g in await self.roles.visible(
                    user_id, [Grant("node_admin")], tree)):
                raise Forbidden("A node admin cannot be deactivated: revoke node_admin first")
            await self.deps.end_account(
                user_id, lambda: self.store.deactivate(user_id, entry.draft()))
            self.classes.ended(user_id)
            return await self.fresh(user_id, tree, grants)

    @staticmethod
    def _check_place(tree: Tree, place: Place) -> None:
        if place.organisation is not None and place.organisation not in tree:
            raise BadField("organisation", f"unknown organisation {place.organisation!r}",
                           errcode="M_INVALID_PARAM")


def _place_json(place: Place) -> dict[str, Any]:
    return {"organisation": place.organisation, "designation": place.designation,
            "employee_id": place.employee_id, "email": place.email, "phone": place.phone}


