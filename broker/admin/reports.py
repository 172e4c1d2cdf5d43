"""Reports made with the client ``/report`` endpoints, for admins: listing, reading and
resolving them.

Reports concern the whole node, so only node-wide grants cover them.  What a report shows is
metadata: who reported what (room, event ID, the reported event's sender or the reported
user), the reporter's reason and score, when, and how it was resolved.  The reported event
itself (type, sender, time and content) is shown only when asked for (``content``) by a role
allowed ``reports.content`` (node admins, reviewing abuse); each such read is recorded in the
audit log, as every refusal.  Resolving records who resolved the report, when and the
resolution, in the report and in the audit log (one transaction).
"""

from __future__ import annotations

from typing import Any

from broker.admin import permissions
from broker.admin.audit import AuditLog
from broker.admin.authority import Authority
from broker.admin.model import Actor, optional_text
from broker.errors import Conflict, NotFound
from storage.events import EventStore
from storage.reports import Report, ReportQuery, ReportStore

MAX_RESOLUTION = 1000
STATES = ("open", "resolved")


def report_json(report: Report) -> dict[str, Any]:
    return {**report.to_json(), "state": "open" if report.resolved_ts is None else "resolved",
            "resolved_ts": report.resolved_ts, "resolved_by": report.resolved_by,
            "resolution": report.resolution}


class AdminReports:
    def __init__(self, store: ReportStore, events: EventStore, authority: Authority,
                 audit: AuditLog, clock: Any) -> None:
        self.store = store
        self.events = events
        self.authority = authority
        self.audit = audit
        self.clock = clock

    async def list_reports(self, actor: Actor, query: ReportQuery) -> list[dict[str, Any]]:
        """Newest first."""
        async with self.audit.recording(actor, permissions.REPORTS_READ):
            await self.authority.require(actor, permissions.REPORTS_READ, None)
            return [report_json(r) for r in await self.store.find_reports(query)]

    async def get(self, actor: Actor, report_id: int, content: bool) -> dict[str, Any]:
        action = permissions.REPORTS_CONTENT if content else permissions.REPORTS_READ
        async with self.audit.recording(actor, action, str(report_id)) as entry:
            await self.authority.require(actor, permissions.REPORTS_READ, None)
            if content:
                await self.authority.require(actor, action, None)
            report = await self._existing(report_id)
            answer = report_json(report)
            if content:
                answer["event"] = await self._event(report)
                entry.detail["event_id"] = report.event_id
                await self.audit.record(entry)
            return answer

    async def resolve(self, actor: Actor, report_id: int, body: dict[str, Any]
                      ) -> dict[str, Any]:
        async with self.audit.recording(actor, permissions.REPORTS_RESOLVE,
                                        str(report_id)) as entry:
            resolution = optional_text(body, "resolution", MAX_RESOLUTION)
            await self.authority.require(actor, permissions.REPORTS_RESOLVE, None)
            await self._existing(report_id)
            entry.detail["resolution"] = resolution
            if not await self.store.resolve(report_id, actor.user_id, entry.ts, resolution,
                                            entry.draft()):
                raise Conflict(f"report {report_id} is resolved already")
            return report_json(await self._existing(report_id))

    async def _existing(self, report_id: int) -> Report:
        report = await self.store.get_report(report_id)
        if report is None:
            raise NotFound(f"no report {report_id}")
        return report

    async def _event(self, report: Report) -> dict[str, Any] | None:
        """The reported event as this node holds it (None for a room or user report, or an
        event no longer held)."""
        if report.event_id is None:
            return None
        event = (await self.events.get_events([report.event_id])).get(report.event_id)
        if event is None:
            return None
        return {"event_id": event.event_id, "type": event.type, "sender": event.sender,
                "origin_server_ts": event.origin_server_ts, "content": event.content}
