"""``/_broker/client/v1/verification``: a user verifies themself by official email.

``POST .../email/requestToken`` ``{"organisation", "email"}`` emails a one-time code and
answers ``{"sid", "expires_at"}``; ``POST .../email/submitToken`` ``{"sid", "token"}`` sends
the code back and answers the caller's status (verified at once, or a request pending for a
verifier); ``GET /_broker/client/v1/verification`` is that status.  The reference is
docs/api/broker-client.openapi.yaml; the rules are :mod:`broker.admin.email_verification`.
A body the declared type refuses is recorded in the audit log like every other refusal.
"""

from __future__ import annotations

from typing import Any

from broker.admin.audit import AuditLog
from broker.admin.email_verification import REQUEST_ACTION, SUBMIT_ACTION, EmailVerification
from broker.admin_api.calls import AdminEndpoints
from broker.http.bodies import Body
from broker.http.endpoint import Access, Call, endpoint

BROKER_CLIENT_PREFIX = "/_broker/client/v1"
VERIFICATION = f"{BROKER_CLIENT_PREFIX}/verification"


class CodeRequest(Body):
    organisation: str
    email: str


class CodeSubmission(Body):
    sid: str
    token: str


class EmailVerificationEndpoints(AdminEndpoints):
    """Like the admin API, a body the declared type refuses is recorded in the audit log."""

    BODY_ACTIONS = {"request_code": (REQUEST_ACTION, ""), "submit_code": (SUBMIT_ACTION, "")}

    def __init__(self, verification: EmailVerification, audit: AuditLog) -> None:
        super().__init__(audit)
        self.verification = verification

    @endpoint("POST", f"{VERIFICATION}/email/requestToken", access=Access.USER,
              body=CodeRequest)
    async def request_code(self, call: Call, body: CodeRequest) -> tuple[int, dict[str, Any]]:
        return 200, await self.verification.request_code(self.actor(call), body.organisation,
                                                         body.email)

    @endpoint("POST", f"{VERIFICATION}/email/submitToken", access=Access.USER,
              body=CodeSubmission)
    async def submit_code(self, call: Call, body: CodeSubmission
                          ) -> tuple[int, dict[str, Any]]:
        return 200, await self.verification.submit_code(self.actor(call), body.sid, body.token)

    @endpoint("GET", VERIFICATION, access=Access.USER)
    async def status(self, call: Call) -> tuple[int, dict[str, Any]]:
        return 200, await self.verification.status(self.actor(call))
