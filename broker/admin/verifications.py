"""Verifying government accounts and revoking verifications (the admin API and the
``broker users verify|revoke`` commands).

Verifying needs ``users.verify`` on the organisation the verification is for and on the
user's current organisation, if another (so a verifier of one organisation cannot verify
another's user); it places the user in that organisation and replaces any verification
before it.  Revoking needs ``users.verify`` on the verification's organisation.  The history
is kept: nothing is deleted.  The class cache (:class:`broker.admin.classes.UserClasses`) is
updated with each write.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from broker.admin import permissions
from broker.admin.account_fields import (
    BASES,
    VERIFY_FIELDS,
    Place,
    check_choice,
    verification_json,
)
from broker.admin.accounts import AdminAccounts, new_verification
from broker.admin.audit import Recording
from broker.admin.model import Actor, BadField, check_body, check_org_id
from broker.errors import Conflict, NotFound
from storage.accounts import AccountRow, VerificationRow
from storage.email_codes import CodeUsed, CursorWrite, RequestDecided

MAX_TS = 2**53 - 1


def check_expiry(value: Any, now_ms: int) -> int | None:
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or not 0 < value <= MAX_TS:
        raise BadField("expires_at", "must be a time in milliseconds since the epoch")
    if value <= now_ms:
        raise BadField("expires_at", "lies in the past", errcode="M_INVALID_PARAM")
    return value


@dataclass(frozen=True)
class Grantee:
    """What a verification says: its organisation, basis, expiry (if any), and the official
    email it proved (if any)."""

    organisation: str
    basis: str
    expires_ts: int | None = None
    email: str | None = None


class Verifications:
    def __init__(self, accounts: AdminAccounts) -> None:
        self.accounts = accounts
        self.authority = accounts.authority
        self.audit = accounts.audit
        self.clock = accounts.clock
        self.classes = accounts.classes
        self.store = accounts.store

    async def verify(self, actor: Actor, user_id: str, body: dict[str, Any]
                     ) -> dict[str, Any]:
        async with self.audit.recording(actor, permissions.VERIFY, user_id) as entry:
            check_body(body, VERIFY_FIELDS, ("organisation", "basis"))
            org_id = check_org_id(body["organisation"], "organisation")
            basis = check_choice("basis", body["basis"], BASES)
            entry.organisation = org_id
            expires = check_expiry(body.get("expires_at"), self.clock.time_ms())
            return await self.grant(actor, entry, user_id, Grantee(org_id, basis, expires))

    async def grant(self, actor: Actor, entry: Recording, user_id: str, grantee: Grantee,
                    also: CursorWrite | None = None) -> dict[str, Any]:
        """Verify ``user_id`` as ``grantee`` says, once the actor may: the one path of every
        verification an admin or a verifier makes (through the API, or by approving a
        request).  ``also`` is written in the same transaction."""
        org_id = entry.organisation = grantee.organisation
        tree, grants = await self.authority.require(actor, permissions.VERIFY, org_id)
        if org_id not in tree:
            raise BadField("organisation", f"unknown organisation {org_id!r}",
                           errcode="M_INVALID_PARAM")
        row = await self.accounts.existing(user_id)
        before = Place.of(row.member)
        if before.organisation not in (None, org_id):
            permissions.require(grants, permissions.VERIFY, before.organisation, tree)
        await self.record(entry, row, new_verification(
            user_id, org_id, grantee.basis, actor, self.clock.time_ms(), grantee.expires_ts),
            grantee.email, also)
        return await self.accounts.fresh(user_id, tree, grants)

    async def record(self, entry: Recording, row: AccountRow, verification: VerificationRow,
                     email: str | None = None, also: CursorWrite | None = None) -> None:
        """Write ``verification`` (placing the user in its organisation, with ``email`` as
        their official email if given) with ``entry`` and ``also``, and update the class
        cache; whoever calls has decided the verification may be made."""
        user_id, org_id = row.user_id, verification.org_id
        if row.deactivated:
            raise Conflict(f"{user_id} is deactivated: a deactivated account stays public")
        before = Place.of(row.member)
        entry.detail.update(basis=verification.basis, expires_at=verification.expires_ts,
                            moved_from=before.organisation
                            if before.organisation != org_id else None)
        place = replace(before, organisation=org_id)
        if email is not None:
            place = replace(place, email=email)
        member = place.member(user_id)
        assert member is not None
        try:
            await self.store.verify(verification, member, entry.draft(), also)
        except CodeUsed as e:
            raise Conflict("This code has been used already") from e
        except RequestDecided as e:
            raise Conflict("This request has been decided meanwhile") from e
        self.classes.verified(verification)

    async def revoke(self, actor: Actor, user_id: str) -> dict[str, Any]:
        async with self.audit.recording(actor, "users.revoke", user_id) as entry:
            await self.accounts.located(entry)
            current = next((v for v in reversed(await self.store.history(user_id))
                            if v.revoked_ts is None), None)
            if current is not None:
                entry.organisation = current.org_id
            tree, grants = await self.authority.require(actor, permissions.VERIFY,
                                                        entry.organisation)
            if current is None:
                raise NotFound(f"{user_id} holds no verification to revoke")
            entry.detail.update(verified_at=current.verified_ts, basis=current.basis)
            await self.store.revoke(user_id, actor.user_id, self.clock.time_ms(),
                                    entry.draft())
            self.classes.ended(user_id)
            return await self.accounts.fresh(user_id, tree, grants)

    async def history(self, actor: Actor, user_id: str) -> dict[str, Any]:
        async with self.audit.recording(actor, "users.verification.read", user_id) as entry:
            row = await self.accounts.located(entry)
            await self.authority.require(actor, permissions.USERS_READ, entry.organisation)
            now = self.clock.time_ms()
            user_class = "public" if row.deactivated else self.classes.class_of(user_id)
            return {"user_id": user_id, "class": user_class,
                    "history": [verification_json(v, now)
                                for v in await self.store.history(user_id)]}
