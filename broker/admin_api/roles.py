"""``/_broker/admin/v1/users/{userId}/roles``: a user's role grants."""

from __future__ import annotations

from typing import Any

from broker.admin import permissions
from broker.admin.audit import AuditLog
from broker.admin.model import Grant
from broker.admin.roles import Roles
from broker.admin_api import ADMIN_PREFIX
from broker.admin_api.calls import AdminEndpoints
from broker.http.bodies import JsonObject
from broker.http.endpoint import Access, Call, endpoint

ROLES = f"{ADMIN_PREFIX}/users/(?P<user_id>[^/]+)/roles"


def _answer(user_id: str, grants: list[Grant]) -> dict[str, Any]:
    return {"user_id": user_id, "roles": [g.to_json() for g in grants]}


class RoleEndpoints(AdminEndpoints):
    BODY_ACTIONS = {"replace": (permissions.ROLES_CHANGE, "user_id")}

    def __init__(self, roles: Roles, audit: AuditLog) -> None:
        super().__init__(audit)
        self.roles = roles

    @endpoint("GET", ROLES, access=Access.USER)
    async def get(self, call: Call, user_id: str) -> tuple[int, dict[str, Any]]:
        return 200, _answer(user_id, await self.roles.get(self.actor(call), user_id))

    @endpoint("PUT", ROLES, access=Access.USER, body=JsonObject)
    async def replace(self, call: Call, user_id: str, body: dict[str, Any]
                      ) -> tuple[int, dict[str, Any]]:
        return 200, _answer(user_id, await self.roles.replace(self.actor(call), user_id, body))
