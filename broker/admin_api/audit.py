"""``GET /_broker/admin/v1/audit?from=&limit=``: pages of the audit log, oldest first.

``from`` is the sequence number after which to read (0, the default, reads from the start);
the answer's ``next_from`` is given when more entries may follow.  No route edits or deletes
an entry.
"""

from __future__ import annotations

from typing import Any

from broker.admin import permissions
from broker.admin.audit import AuditLog, AuditReader
from broker.admin_api import ADMIN_PREFIX
from broker.admin_api.calls import AdminEndpoints, page
from broker.http.endpoint import Access, Call, endpoint


class AuditEndpoints(AdminEndpoints):
    def __init__(self, reader: AuditReader, audit: AuditLog) -> None:
        super().__init__(audit)
        self.reader = reader

    @endpoint("GET", f"{ADMIN_PREFIX}/audit", access=Access.USER)
    async def read(self, call: Call) -> tuple[int, dict[str, Any]]:
        after = await self.query_int(call, permissions.AUDIT_READ, "from", 0)
        limit = await self.query_limit(call, permissions.AUDIT_READ)
        entries = await self.reader.read(self.actor(call), after, limit)
        return 200, page("entries", entries, limit, "seq")
