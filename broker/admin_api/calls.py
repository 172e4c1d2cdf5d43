"""What every admin endpoint does the same way: who acts, and reading a body (a body that is
not a JSON object is refused with the spec's 400 and recorded in the audit log; its fields are
checked by the service, which refuses unknown ones with 400 M_BAD_JSON naming the field)."""

from __future__ import annotations

from typing import Any

from broker.admin.audit import AuditLog
from broker.admin.model import Actor
from broker.http.endpoint import Call, Endpoints
from broker.http.errors import MatrixError


class AdminEndpoints(Endpoints):
    def __init__(self, audit: AuditLog) -> None:
        self.audit = audit

    @staticmethod
    def actor(call: Call) -> Actor:
        return Actor(call.user.user_id, call.client_ip)

    async def body(self, call: Call, action: str, target: str = "") -> dict[str, Any]:
        try:
            return call.json()
        except MatrixError as e:
            await self.audit.refuse(self.actor(call), action, target, e.errcode, e.message)
            raise

    async def query_int(self, call: Call, action: str, name: str, default: int, *,
                        maximum: int | None = None) -> int:
        """An integer query argument; a bad one is refused (400) and recorded."""
        from broker.http.validation import parse_int_arg

        try:
            return parse_int_arg(call.arg(name), name, default, maximum=maximum)
        except MatrixError as e:
            await self.audit.refuse(self.actor(call), action, "", e.errcode, e.message)
            raise
