"""``/_broker/admin/v1/apps``: an organisation's eGov applications (see
:mod:`broker.apps.registry`): register one (its token and callback secret are answered once),
list or read them, change an app's callback URL or kinds, rotate its token, revoke it."""

from __future__ import annotations

from typing import Any

from broker.admin.audit import AuditLog
from broker.admin_api import ADMIN_PREFIX
from broker.admin_api.calls import AdminEndpoints
from broker.apps.registry import Apps
from broker.http.bodies import JsonObject, NoBody
from broker.http.endpoint import Access, Call, endpoint

APPS = f"{ADMIN_PREFIX}/apps"
ONE = f"{APPS}/(?P<app_id>[^/]+)"


class AppEndpoints(AdminEndpoints):
    BODY_ACTIONS = {"register": ("apps.register", ""), "update": ("apps.update", "app_id")}

    def __init__(self, apps: Apps, audit: AuditLog) -> None:
        super().__init__(audit)
        self.apps = apps

    @endpoint("POST", APPS, access=Access.USER, body=JsonObject)
    async def register(self, call: Call, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        return 201, await self.apps.register(self.actor(call), body)

    @endpoint("GET", APPS, access=Access.USER)
    async def list(self, call: Call) -> tuple[int, dict[str, Any]]:
        return 200, await self.apps.list(self.actor(call), call.arg("organisation"))

    @endpoint("GET", ONE, access=Access.USER)
    async def get(self, call: Call, app_id: str) -> tuple[int, dict[str, Any]]:
        return 200, await self.apps.get(self.actor(call), app_id)

    @endpoint("PATCH", ONE, access=Access.USER, body=JsonObject)
    async def update(self, call: Call, app_id: str, body: dict[str, Any]
                     ) -> tuple[int, dict[str, Any]]:
        return 200, await self.apps.update(self.actor(call), app_id, body)

    @endpoint("POST", f"{ONE}/token", access=Access.USER, body=NoBody)
    async def rotate_token(self, call: Call, app_id: str) -> tuple[int, dict[str, Any]]:
        return 200, await self.apps.rotate_token(self.actor(call), app_id)

    @endpoint("DELETE", ONE, access=Access.USER)
    async def revoke(self, call: Call, app_id: str) -> tuple[int, dict[str, Any]]:
        return 200, await self.apps.revoke(self.actor(call), app_id)
