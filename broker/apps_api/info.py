"""``GET /_broker/apps/v1/app``: the calling application as the node knows it (an app checks
its token and sees its sender and kinds)."""

from __future__ import annotations

from typing import Any

from broker.apps_api.calls import APPS_PREFIX, calling_app
from broker.http.endpoint import Access, Call, Endpoints, endpoint


class AppInfoEndpoints(Endpoints):
    @endpoint("GET", f"{APPS_PREFIX}/app", access=Access.APP, rate_limit="app_messages")
    async def whoami(self, call: Call) -> tuple[int, dict[str, Any]]:
        app = calling_app(call)
        return 200, {"app_id": app.app_id, "name": app.name, "organisation": app.org_id,
                     "sender": app.sender, "kinds": list(app.kinds)}
