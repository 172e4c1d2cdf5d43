"""``/_broker/admin/v1/reports``: content reports made by users, and resolving them.

``GET /reports?state=open|resolved&room_id=&from=&limit=`` lists reports newest first
(``from``: the report ID the page before ended at, the answer's ``next_from``).
``GET /reports/{id}?content=true`` adds the reported event, for roles allowed to see content
(see :mod:`broker.admin.reports`).
"""

from __future__ import annotations

from typing import Any

from broker.admin import permissions
from broker.admin.audit import AuditLog
from broker.admin.reports import STATES, AdminReports
from broker.admin_api import ADMIN_PREFIX
from broker.admin_api.calls import AdminEndpoints, page
from broker.http.bodies import JsonObject
from broker.http.endpoint import Access, Call, endpoint
from storage.reports import ReportQuery

REPORTS = f"{ADMIN_PREFIX}/reports"
ONE = f"{REPORTS}/(?P<report_id>[^/]+)"
MAX_ID = 2**53 - 1


class ReportEndpoints(AdminEndpoints):
    BODY_ACTIONS = {"resolve": (permissions.REPORTS_RESOLVE, "report_id")}

    def __init__(self, reports: AdminReports, audit: AuditLog) -> None:
        super().__init__(audit)
        self.reports = reports

    @endpoint("GET", REPORTS, access=Access.USER)
    async def list(self, call: Call) -> tuple[int, dict[str, Any]]:
        action = permissions.REPORTS_READ
        limit = await self.query_limit(call, action)
        before = await self.query_int(call, action, "from", 0, maximum=MAX_ID)
        state = await self.query_choice(call, action, "state", STATES)
        query = ReportQuery(state, call.arg("room_id"), before or None, limit)
        return 200, page("reports", await self.reports.list_reports(self.actor(call), query),
                         limit, "id")

    @endpoint("GET", ONE, access=Access.USER)
    async def get(self, call: Call, report_id: str) -> tuple[int, dict[str, Any]]:
        number = await self.report_id(call, permissions.REPORTS_READ, report_id)
        content = await self.query_choice(call, permissions.REPORTS_READ, "content",
                                          ("true", "false"))
        return 200, await self.reports.get(self.actor(call), number, content == "true")

    @endpoint("POST", f"{ONE}/resolve", access=Access.USER, body=JsonObject,
              body_optional=True)
    async def resolve(self, call: Call, report_id: str, body: dict[str, Any]
                      ) -> tuple[int, dict[str, Any]]:
        number = await self.report_id(call, permissions.REPORTS_RESOLVE, report_id)
        return 200, await self.reports.resolve(self.actor(call), number, body)

    async def report_id(self, call: Call, action: str, value: str) -> int:
        """The report ID of the path: a positive integer, or 400 recorded."""
        if not (value.isascii() and value.isdigit()) or not 0 < int(value) <= MAX_ID:
            await self.refused(call, action, f"report ID must be a positive integer, not"
                               f" {value!r}")
        return int(value)
