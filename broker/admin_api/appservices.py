"""``GET /_broker/admin/v1/appservices``: each application service's delivery (state,
backlog, last success, last error), for node admins."""

from __future__ import annotations

from typing import Any

from broker.admin_api import ADMIN_PREFIX
from broker.appservice.pusher import AppServicePusher
from broker.http.endpoint import Access, Call, Endpoints, endpoint


class AppServiceEndpoints(Endpoints):
    def __init__(self, pusher: AppServicePusher) -> None:
        self.pusher = pusher

    @endpoint("GET", f"{ADMIN_PREFIX}/appservices", access=Access.ADMIN)
    async def list_services(self, call: Call) -> tuple[int, dict[str, Any]]:
        return 200, {"appservices": await self.pusher.status()}
