"""Reporting content: ``POST /rooms/{roomId}/report/{eventId}`` (an event; the reporter must be
joined), ``POST /rooms/{roomId}/report`` (a room, spec v1.13) and ``POST /users/{userId}/report``
(a user, spec v1.14).

Reports are kept in the ``event_reports`` table for the node's admins (with the reported event's
sender, so the origin of reported misuse can be traced) and logged at INFO (see
:mod:`broker.services.reports`).  Reporting takes from the ``messages`` rate limit.
"""

from __future__ import annotations

from typing import Annotated, Any

from annotated_types import Interval, MaxLen

from broker.client_api import CLIENT_PREFIX
from broker.http.bodies import Body
from broker.http.endpoint import Access, Call, Endpoints, endpoint
from broker.services.reports import MAX_REASON_CHARS, Reports

ROOM = "(?P<room_id>[^/]+)"


class Report(Body):
    reason: Annotated[str, MaxLen(MAX_REASON_CHARS)] | None = None


class EventReport(Report):
    score: Annotated[int, Interval(ge=-100, le=0)] | None = None


class ReportEndpoints(Endpoints):
    def __init__(self, reports: Reports) -> None:
        self.reports = reports

    @endpoint("POST", f"{CLIENT_PREFIX}/rooms/{ROOM}/report/(?P<event_id>[^/]+)",
              access=Access.USER, rate_limit="messages", body=EventReport, body_optional=True)
    async def report_event(self, call: Call, room_id: str, event_id: str, body: EventReport
                           ) -> tuple[int, dict[str, Any]]:
        await self.reports.report_event(call.user.user_id, room_id, event_id, body.reason,
                                        body.score)
        return 200, {}

    @endpoint("POST", f"{CLIENT_PREFIX}/rooms/{ROOM}/report", access=Access.USER,
              rate_limit="messages", body=Report, body_optional=True)
    async def report_room(self, call: Call, room_id: str, body: Report
                          ) -> tuple[int, dict[str, Any]]:
        await self.reports.report_room(call.user.user_id, room_id, body.reason)
        return 200, {}

    @endpoint("POST", f"{CLIENT_PREFIX}/users/(?P<user_id>[^/]+)/report", access=Access.USER,
              rate_limit="messages", body=Report, body_optional=True)
    async def report_user(self, call: Call, user_id: str, body: Report
                          ) -> tuple[int, dict[str, Any]]:
        await self.reports.report_user(call.user.user_id, user_id, body.reason)
        return 200, {}
