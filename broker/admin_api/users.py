"""``/_broker/admin/v1/users``: government accounts and their verification.

``GET /users?organisation=&class=&q=&from=&limit=`` lists accounts in user ID order
(``organisation`` covers its sub-tree; ``from`` is the last user ID of the page before, the
answer's ``next_from``).  Verifying is ``POST .../verification``, revoking ``DELETE`` the same,
and ``GET`` reads the history.
"""

from __future__ import annotations

from typing import Any

from broker.admin import permissions
from broker.admin.account_fields import CLASSES
from broker.admin.accounts import AdminAccounts
from broker.admin.audit import AuditLog
from broker.admin.verifications import Verifications
from broker.admin_api import ADMIN_PREFIX
from broker.admin_api.calls import AdminEndpoints, page
from broker.http.bodies import JsonObject
from broker.http.endpoint import Access, Call, endpoint

USERS = f"{ADMIN_PREFIX}/users"
ONE = f"{USERS}/(?P<user_id>[^/]+)"
VERIFICATION = f"{ONE}/verification"
MAX_QUERY = 200


class UserEndpoints(AdminEndpoints):
    BODY_ACTIONS = {"create": (permissions.USERS_CREATE, ""),
                    "update": (permissions.USERS_UPDATE, "user_id"),
                    "verify": (permissions.VERIFY, "user_id"),
                    "deactivate": (permissions.USERS_DEACTIVATE, "user_id")}

    def __init__(self, accounts: AdminAccounts, verifications: Verifications,
                 audit: AuditLog) -> None:
        super().__init__(audit)
        self.accounts = accounts
        self.verifications = verifications

    @endpoint("POST", USERS, access=Access.USER, body=JsonObject)
    async def create(self, call: Call, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        return 201, await self.accounts.create(self.actor(call), body)

    @endpoint("GET", USERS, access=Access.USER)
    async def list(self, call: Call) -> tuple[int, dict[str, Any]]:
        action = permissions.USERS_READ
        limit = await self.query_limit(call, action)
        user_class = await self.query_choice(call, action, "class", CLASSES)
        q = await self.query_text(call, action, "q", MAX_QUERY)
        users = await self.accounts.list_users(self.actor(call), call.arg("organisation"),
                                         user_class, q, call.arg("from") or "", limit)
        return 200, page("users", users, limit, "user_id")

    @endpoint("GET", ONE, access=Access.USER)
    async def get(self, call: Call, user_id: str) -> tuple[int, dict[str, Any]]:
        return 200, await self.accounts.get(self.actor(call), user_id)

    @endpoint("PATCH", ONE, access=Access.USER, body=JsonObject)
    async def update(self, call: Call, user_id: str, body: dict[str, Any]
                     ) -> tuple[int, dict[str, Any]]:
        return 200, await self.accounts.update(self.actor(call), user_id, body)

    @endpoint("POST", f"{ONE}/deactivate", access=Access.USER, body=JsonObject,
              body_optional=True)
    async def deactivate(self, call: Call, user_id: str, body: dict[str, Any]
                         ) -> tuple[int, dict[str, Any]]:
        return 200, await self.accounts.deactivate(self.actor(call), user_id, body)

    @endpoint("POST", VERIFICATION, access=Access.USER, body=JsonObject)
    async def verify(self, call: Call, user_id: str, body: dict[str, Any]
                     ) -> tuple[int, dict[str, Any]]:
        return 200, await self.verifications.verify(self.actor(call), user_id, body)

    @endpoint("DELETE", VERIFICATION, access=Access.USER)
    async def revoke(self, call: Call, user_id: str) -> tuple[int, dict[str, Any]]:
        return 200, await self.verifications.revoke(self.actor(call), user_id)

    @endpoint("GET", VERIFICATION, access=Access.USER)
    async def history(self, call: Call, user_id: str) -> tuple[int, dict[str, Any]]:
        return 200, await self.verifications.history(self.actor(call), user_id)
