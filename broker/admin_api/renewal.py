"""``POST /_broker/admin/v1/users/{user_id}/renew``: renewing an account's validity
(:mod:`broker.admin.account_renewal`)."""

from __future__ import annotations

from typing import Any

from broker.admin import permissions
from broker.admin.account_renewal import AccountRenewal
from broker.admin.audit import AuditLog
from broker.admin_api.calls import AdminEndpoints
from broker.admin_api.users import ONE
from broker.http.bodies import JsonObject
from broker.http.endpoint import Access, Call, endpoint


class RenewalEndpoints(AdminEndpoints):
    BODY_ACTIONS = {"renew": (permissions.USERS_RENEW, "user_id")}

    def __init__(self, renewal: AccountRenewal, audit: AuditLog) -> None:
        super().__init__(audit)
        self.renewal = renewal

    @endpoint("POST", f"{ONE}/renew", access=Access.USER, body=JsonObject, body_optional=True)
    async def renew(self, call: Call, user_id: str, body: dict[str, Any]
                    ) -> tuple[int, dict[str, Any]]:
        return 200, await self.renewal.renew(self.actor(call), user_id, body)
