"""``/_broker/admin/v1/broadcasts``: send a broadcast to chosen members of an organisation
(``POST``), list them (``GET ?organisation=&before_ts=&limit=``) and read one's progress and
statistics (``GET /broadcasts/{id}``); see :mod:`broker.broadcasts.service`."""

from __future__ import annotations

from typing import Any

from broker.admin import permissions
from broker.admin.audit import AuditLog
from broker.admin_api import ADMIN_PREFIX
from broker.admin_api.calls import AdminEndpoints
from broker.broadcasts.service import Broadcasts
from broker.http.bodies import JsonObject
from broker.http.endpoint import Access, Call, endpoint

BROADCASTS = f"{ADMIN_PREFIX}/broadcasts"


class BroadcastEndpoints(AdminEndpoints):
    """Each handler calls the service once; the service checks, records and refuses."""

    BODY_ACTIONS = {"send": (permissions.BROADCASTS_SEND, "")}

    def __init__(self, broadcasts: Broadcasts, audit: AuditLog) -> None:
        super().__init__(audit)
        self.broadcasts = broadcasts

    @endpoint("POST", BROADCASTS, access=Access.USER, body=JsonObject)
    async def send(self, call: Call, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        return 201, await self.broadcasts.send(self.actor(call), body)

    @endpoint("GET", BROADCASTS, access=Access.USER)
    async def listing(self, call: Call) -> tuple[int, dict[str, Any]]:
        action = permissions.BROADCASTS_READ
        limit = await self.query_limit(call, action)
        before = await self.query_int(call, action, "before_ts", 0)
        return 200, await self.broadcasts.listing(
            self.actor(call), call.arg("organisation"), before or None, limit)

    @endpoint("GET", BROADCASTS + "/(?P<broadcast_id>[^/]+)", access=Access.USER)
    async def show(self, call: Call, broadcast_id: str) -> tuple[int, dict[str, Any]]:
        return 200, await self.broadcasts.show(self.actor(call), broadcast_id)
