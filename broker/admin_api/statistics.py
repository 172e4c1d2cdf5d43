"""``GET /_broker/admin/v1/statistics?organisation=&from=&to=&format=``: usage counts per
organisation and day, from metadata only (see :mod:`broker.admin.statistics`); ``format=csv``
answers the same rows as ``text/csv``."""

from __future__ import annotations

from typing import Any

from broker.admin import permissions
from broker.admin.audit import AuditLog
from broker.admin.statistics import FORMATS, StatisticsQuery, StatisticsReport, as_csv
from broker.admin_api import ADMIN_PREFIX
from broker.admin_api.calls import AdminEndpoints
from broker.http.endpoint import Access, Call, endpoint
from broker.raw_response import RawResponse

CSV_TYPE = "text/csv; charset=utf-8"


class StatisticsEndpoints(AdminEndpoints):
    def __init__(self, report: StatisticsReport, audit: AuditLog) -> None:
        super().__init__(audit)
        self.report = report

    @endpoint("GET", f"{ADMIN_PREFIX}/statistics", access=Access.USER)
    async def read(self, call: Call) -> tuple[int, dict[str, Any]] | RawResponse:
        wanted = await self.query_choice(call, permissions.STATISTICS_READ, "format", FORMATS)
        answer = await self.report.read(self.actor(call), StatisticsQuery(
            call.arg("organisation"), call.arg("from"), call.arg("to")))
        if wanted == "csv":
            return RawResponse(as_csv(answer["rows"]), CSV_TYPE, headers={
                "Content-Disposition":
                    f'attachment; filename="statistics-{answer["from"]}-{answer["to"]}.csv"'})
        return 200, answer
