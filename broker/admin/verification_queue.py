"""The verifier queue: requests for verification by official email that a correct code put
in an organisation's queue (``settings.email_verification: queue``), listed, approved and
denied through the admin API.

Listing shows the requests of the organisations whose sub-trees the caller may verify for;
approving verifies the user with basis ``official_email`` through the same path as an admin's
verification (:meth:`broker.admin.verifications.Verifications.grant`: ``users.verify`` on the
organisation and on the user's current one, the audit entry, the class cache), the request
marked approved in the same transaction; denying needs ``users.verify`` too.  A request is
decided once.
"""

from __future__ import annotations

from typing import Any

from broker.admin import permissions
from broker.admin.audit import AuditLog
from broker.admin.authority import Authority
from broker.admin.email_verification import BASIS, request_json
from broker.admin.model import Actor, BadField, check_body
from broker.admin.verifications import Grantee, Verifications, check_expiry
from broker.errors import Conflict, NotFound
from storage.email_codes import (
    APPROVED,
    DENIED,
    PENDING,
    EmailCodeStore,
    RequestDecided,
    RequestQuery,
    RequestRow,
    decide_request,
)

STATES = (PENDING, APPROVED, DENIED)
READ_ACTION = "verification_requests.read"
DENY_ACTION = "verification_requests.deny"
MAX_REASON = 500


def _reason(body: dict[str, Any]) -> str | None:
    reason = body.get("reason")
    if reason is not None and (not isinstance(reason, str) or len(reason) > MAX_REASON):
        raise BadField("reason", f"must be a string of at most {MAX_REASON} characters")
    return reason


class VerificationQueue:
    def __init__(self, store: EmailCodeStore, verifications: Verifications,
                 authority: Authority, audit: AuditLog, clock: Any) -> None:
        self.store = store
        self.verifications = verifications
        self.authority = authority
        self.audit = audit
        self.clock = clock

    async def list(self, actor: Actor, organisation: str | None, state: str | None,
                   after: str, limit: int) -> list[dict[str, Any]]:
        """Requests in ``organisation``'s sub-tree (or every sub-tree the caller verifies
        for), in ``state`` if given, oldest first, after request ID ``after``."""
        async with self.audit.recording(actor, READ_ACTION) as entry:
            entry.organisation = organisation
            _, _, scope = await self.authority.scope(actor, permissions.VERIFY, organisation)
            rows = await self.store.requests(RequestQuery(scope, state, after, limit))
            return [request_json(r) for r in rows]

    async def _pending(self, request_id: str, entry: Any) -> RequestRow:
        row = await self.store.request(request_id)
        if row is None:
            raise NotFound(f"no verification request {request_id!r}")
        entry.target, entry.organisation = row.user_id, row.org_id
        entry.detail["request"] = request_id
        return row

    @staticmethod
    def _undecided(row: RequestRow) -> None:
        if row.state != PENDING:
            raise Conflict(f"This request was {row.state} by {row.decided_by} already")

    async def approve(self, actor: Actor, request_id: str, body: dict[str, Any]
                      ) -> dict[str, Any]:
        async with self.audit.recording(actor, permissions.VERIFY) as entry:
            check_body(body, ("reason", "expires_at"))
            reason = _reason(body)
            row = await self._pending(request_id, entry)
            await self.authority.require(actor, permissions.VERIFY, row.org_id)
            self._undecided(row)
            expires = check_expiry(body.get("expires_at"), self.clock.time_ms())
            entry.detail["reason"] = reason
            await self.verifications.grant(
                actor, entry, row.user_id, Grantee(row.org_id, BASIS, expires, row.address),
                decide_request(request_id, APPROVED, actor.user_id, self.clock.time_ms(),
                               reason))
            return await self._answer(request_id)

    async def deny(self, actor: Actor, request_id: str, body: dict[str, Any]
                   ) -> dict[str, Any]:
        async with self.audit.recording(actor, DENY_ACTION) as entry:
            check_body(body, ("reason",))
            reason = _reason(body)
            row = await self._pending(request_id, entry)
            await self.authority.require(actor, permissions.VERIFY, row.org_id)
            self._undecided(row)
            entry.detail["reason"] = reason
            try:
                await self.store.decide(request_id, DENIED, actor.user_id,
                                        self.clock.time_ms(), reason, entry.draft())
            except RequestDecided as e:
                raise Conflict("This request has been decided meanwhile") from e
            return await self._answer(request_id)

    async def _answer(self, request_id: str) -> dict[str, Any]:
        row = await self.store.request(request_id)
        assert row is not None
        return request_json(row)
