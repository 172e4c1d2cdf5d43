"""``/_broker/admin/v1/verification_requests``: the verifier queue.

``GET`` lists requests (``organisation`` covers its sub-tree, ``state`` one of pending,
approved, denied; ``from`` is the last request ID of the page before, the answer's
``next_from``); ``POST .../{request_id}/approve`` verifies the user (basis
``official_email``), ``POST .../{request_id}/deny`` refuses, each with an optional
``reason``.  The rules are :mod:`broker.admin.verification_queue`.
"""

from __future__ import annotations

from typing import Any

from broker.admin import permissions
from broker.admin.audit import AuditLog
from broker.admin.verification_queue import DENY_ACTION, READ_ACTION, STATES, VerificationQueue
from broker.admin_api import ADMIN_PREFIX
from broker.admin_api.calls import AdminEndpoints
from broker.http.bodies import JsonObject
from broker.http.endpoint import Access, Call, endpoint

REQUESTS = f"{ADMIN_PREFIX}/verification_requests"
ONE = f"{REQUESTS}/(?P<request_id>[^/]+)"
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000


class VerificationRequestEndpoints(AdminEndpoints):
    BODY_ACTIONS = {"approve": (permissions.VERIFY, "request_id"),
                    "deny": (DENY_ACTION, "request_id")}

    def __init__(self, queue: VerificationQueue, audit: AuditLog) -> None:
        super().__init__(audit)
        self.queue = queue

    @endpoint("GET", REQUESTS, access=Access.USER)
    async def list(self, call: Call) -> tuple[int, dict[str, Any]]:
        limit = max(await self.query_int(call, READ_ACTION, "limit", DEFAULT_LIMIT,
                                         maximum=MAX_LIMIT), 1)
        state = await self.query_choice(call, READ_ACTION, "state", STATES)
        requests = await self.queue.list(self.actor(call), call.arg("organisation"), state,
                                         call.arg("from") or "", limit)
        answer: dict[str, Any] = {"requests": requests}
        if len(requests) == limit:
            answer["next_from"] = requests[-1]["request_id"]
        return 200, answer

    @endpoint("POST", f"{ONE}/approve", access=Access.USER, body=JsonObject,
              body_optional=True)
    async def approve(self, call: Call, request_id: str, body: dict[str, Any]
                      ) -> tuple[int, dict[str, Any]]:
        return 200, await self.queue.approve(self.actor(call), request_id, body)

    @endpoint("POST", f"{ONE}/deny", access=Access.USER, body=JsonObject, body_optional=True)
    async def deny(self, call: Call, request_id: str, body: dict[str, Any]
                   ) -> tuple[int, dict[str, Any]]:
        return 200, await self.queue.deny(self.actor(call), request_id, body)
