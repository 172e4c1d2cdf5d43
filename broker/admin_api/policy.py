"""``GET /_broker/admin/v1/policy``: the node's effective separation policy, one document
(see :mod:`broker.admin.policy_document`)."""

from __future__ import annotations

from typing import Any

from broker.admin.audit import AuditLog
from broker.admin.policy_document import PolicyDocument
from broker.admin_api import ADMIN_PREFIX
from broker.admin_api.calls import AdminEndpoints
from broker.http.endpoint import Access, Call, endpoint


class PolicyEndpoints(AdminEndpoints):
    def __init__(self, document: PolicyDocument, audit: AuditLog) -> None:
        super().__init__(audit)
        self.document = document

    @endpoint("GET", f"{ADMIN_PREFIX}/policy", access=Access.USER)
    async def read(self, call: Call) -> tuple[int, dict[str, Any]]:
        return 200, await self.document.read(self.actor(call))
