"""Self-service verification by official email (the client-facing ``/_broker/client/v1``).

A user asks to be verified for an organisation with an address of one of its email domains;
the node emails a one-time code (:mod:`broker.admin.email_codes`).  The code sent back either
verifies the user at once (basis ``official_email``) or queues the request for a verifier of
the organisation, as the organisation's ``settings.email_verification`` says (``queue``, the
default, or ``auto``).

Which addresses qualify: the address's domain is one of the organisation's ``email_domains``,
or a sub-domain of one (``dm.mha.gov.in`` under ``mha.gov.in``), unless that sub-domain is an
organisation's own domain: an address belongs to the organisation owning the longest domain
it ends with.  That owner must be the organisation asked for or one above it (a ministry's
domain serves its departments), never a sibling or one below.

A user in an organisation already may ask only for that organisation (moving is an admin's
decision).  Every request and every code sent back is recorded in the audit log, refusals
(a wrong, reused or expired code, a domain the organisation does not own) too.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

from broker.admin.account_fields import Place, check_detail, verification_json
from broker.admin.accounts import AdminAccounts, new_verification
from broker.admin.audit import AuditLog
from broker.admin.authority import Authority
from broker.admin.email_codes import OneTimeCodes
from broker.admin.model import Actor, BadField, Tree, check_org_id, email_mode
from broker.admin.verifications import Verifications
from broker.errors import Conflict, Forbidden, NotFound
from storage.email_codes import PENDING, CodeUsed, EmailCodeStore, RequestRow, use_code
from storage.organisations import Organisation

PURPOSE = "verification"
REQUEST_ACTION = "verification.email.request"
SUBMIT_ACTION = "verification.email.submit"
BASIS = "official_email"


def domain_owner(tree: Tree, address: str) -> str | None:
    """The organisation owning the longest email domain ``address`` ends with (None: none)."""
    owners = {domain: org.org_id for org in tree.orgs.values() for domain in org.email_domains}
    labels = address.rsplit("@", 1)[-1].lower().split(".")
    for start in range(len(labels) - 1):
        owner = owners.get(".".join(labels[start:]))
        if owner is not None:
            return owner
    return None


def request_id(now_ms: int) -> str:
    """A request ID that sorts by creation time (the queue's order and paging key)."""
    return f"{now_ms:013d}-{secrets.token_hex(6)}"


def request_json(row: RequestRow) -> dict[str, Any]:
    found: dict[str, Any] = {"request_id": row.request_id, "user_id": row.user_id,
                             "organisation": row.org_id, "email": row.address,
                             "state": row.state, "requested_at": row.created_ts}
    if row.decided_ts is not None:
        found.update(decided_by=row.decided_by, decided_at=row.decided_ts)
    if row.reason is not None:
        found["reason"] = row.reason
    return found


def _code_email(server_name: str, user_id: str, org: Organisation
                ) -> Callable[[str, int], str]:
    def text(code: str, minutes: int) -> str:
        return (f"Someone, hopefully you ({user_id}), asked {server_name} to verify them as a"
                f" member of {org.name} ({org.org_id}) with this email address.\n\n"
                f"Your code is {code}\n\n"
                f"It is valid for {minutes} minutes and can be used once. If you did not ask"
                " for it, ignore this email: nothing happens without the code.\n")

    return text


class EmailVerification:
    def __init__(self, codes: OneTimeCodes, store: EmailCodeStore, accounts: AdminAccounts,
                 verifications: Verifications, authority: Authority, audit: AuditLog,
                 server_name: str) -> None:
        self.codes = codes
        self.store = store
        self.accounts = accounts
        self.verifications = verifications
        self.authority = authority
        self.audit = audit
        self.clock = codes.clock
        self.server_name = server_name

    async def request_code(self, actor: Actor, organisation: str, email: str
                           ) -> dict[str, Any]:
        """Email a code proving ``email`` for verification in ``organisation``."""
        async with self.audit.recording(actor, REQUEST_ACTION, actor.user_id) as entry:
            org_id = check_org_id(organisation, "organisation")
            entry.organisation = org_id
            address = check_detail("email", email)
            if address is None:
                raise BadField("email", "must be an email address")
            entry.detail["email"] = address
            tree = await self.authority.tree()
            org = tree.get(org_id)
            if org is None:
                raise NotFound(f"There is no organisation {org_id!r} on this node")
            self._check_domain(tree, org, address)
            await self._check_user(actor.user_id, org_id)
            row = await self.codes.issue(
                PURPOSE, actor.user_id, address, org_id, entry,
                f"Your verification code for {org.name}",
                _code_email(self.server_name, actor.user_id, org))
            return {"sid": row.sid, "expires_at": row.expires_ts}

    @staticmethod
    def _check_domain(tree: Tree, org: Organisation, address: str) -> None:
        owner = domain_owner(tree, address)
        domain = address.rsplit("@", 1)[-1]
        if owner is None:
            raise Forbidden(f"{domain!r} is not an email domain of any organisation on this"
                            " node", errcode="M_THREEPID_DENIED")
        if not tree.covers(owner, org.org_id):
            raise Forbidden(f"{domain!r} is an email domain of {owner!r}, not of"
                            f" {org.org_id!r}", errcode="M_THREEPID_DENIED")

    async def _check_user(self, user_id: str, org_id: str) -> None:
        row = await self.accounts.existing(user_id)
        current = Place.of(row.member).organisation
        if current not in (None, org_id):
            raise Forbidden(f"Your account belongs to {current!r}: you may ask to be verified"
                            " for it only (an admin moves accounts between organisations)")
        verification = self.accounts.classes.verification(user_id)
        if verification is not None and verification.org_id == org_id:
            raise Conflict(f"You are verified for {org_id!r} already")
        if any(r.org_id == org_id for r in await self.store.pending_of(user_id)):
            raise Conflict(f"Your request to be verified for {org_id!r} waits for a verifier"
                           " already")

    async def submit_code(self, actor: Actor, sid: str, code: str) -> dict[str, Any]:
        """The code sent back: verify at once or queue the request, as the organisation
        says."""
        async with self.audit.recording(actor, SUBMIT_ACTION, actor.user_id) as entry:
            entry.detail["sid"] = sid
            row = await self.codes.check(sid, code, PURPOSE, actor.user_id)
            assert row.org_id is not None
            org_id = entry.organisation = row.org_id
            entry.detail["email"] = row.address
            tree = await self.authority.tree()
            org = tree.get(org_id)
            if org is None:
                raise NotFound(f"Organisation {org_id!r} no longer exists")
            await self._check_user(actor.user_id, org_id)
            now = self.clock.time_ms()
            if email_mode(org) == "auto":
                entry.detail["decision"] = "verified"
                account = await self.accounts.existing(actor.user_id)
                await self.verifications.record(
                    entry, account,
                    new_verification(actor.user_id, org_id, BASIS, actor, now),
                    row.address, use_code(sid, now))
                return await self.status(actor)
            request = RequestRow(request_id(now), actor.user_id, org_id, row.address,
                                 PENDING, now)
            entry.detail.update(decision="queued", request=request.request_id)
            try:
                await self.store.queue_request(sid, request, entry.draft())
            except CodeUsed as e:
                raise Conflict("This code has been used already") from e
            return await self.status(actor)

    async def status(self, actor: Actor) -> dict[str, Any]:
        """The caller's class, current verification and requests waiting for a verifier."""
        user_id = actor.user_id
        row = await self.accounts.existing(user_id)
        verification = self.accounts.classes.verification(user_id)
        return {
            "user_id": user_id,
            "class": "public" if row.deactivated else self.accounts.classes.class_of(user_id),
            "organisation": Place.of(row.member).organisation,
            "verification": None if verification is None else verification_json(
                verification, self.clock.time_ms()),
            "pending": [request_json(r) for r in await self.store.pending_of(user_id)],
        }
