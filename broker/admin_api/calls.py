"""What every admin endpoint does the same way: who acts, and recording refused input.

Admin bodies are declared ``JsonObject``: a body that is not a JSON object is refused by the
router with the spec's 400 and recorded in the audit log (:meth:`AdminEndpoints.body_refused`,
under the action and target each group's ``BODY_ACTIONS`` names); its fields are checked by
the service (which the admin commands share), which refuses unknown ones with 400 M_BAD_JSON
naming the field."""

from __future__ import annotations

from typing import ClassVar

from broker.admin.audit import AuditLog
from broker.admin.model import Actor
from broker.http.endpoint import Call, Endpoints
from broker.http.errors import MatrixError


class AdminEndpoints(Endpoints):
    #: Handler name -> (the action it records, the path argument naming its target, if any).
    BODY_ACTIONS: ClassVar[dict[str, tuple[str, str]]] = {}

    def __init__(self, audit: AuditLog) -> None:
        self.audit = audit

    @staticmethod
    def actor(call: Call) -> Actor:
        return Actor(call.user.user_id, call.client_ip)

    async def body_refused(self, handler: str, call: Call, args: dict[str, str],
                           error: MatrixError) -> None:
        action, target = self.BODY_ACTIONS[handler]
        await self.audit.refuse(self.actor(call), action, args.get(target, ""), error.errcode,
                                error.message)

    async def query_int(self, call: Call, action: str, name: str, default: int, *,
                        maximum: int | None = None) -> int:
        """An integer query argument; a bad one is refused (400) and recorded."""
        from broker.http.validation import parse_int_arg

        try:
            return parse_int_arg(call.arg(name), name, default, maximum=maximum)
        except MatrixError as e:
            await self.audit.refuse(self.actor(call), action, "", e.errcode, e.message)
            raise

    async def query_choice(self, call: Call, action: str, name: str,
                           choices: tuple[str, ...]) -> str | None:
        value = call.arg(name)
        if value is not None and value not in choices:
            await self.refused(call, action, f"'{name}' must be one of: {', '.join(choices)}")
        return value

    async def refused(self, call: Call, action: str, message: str) -> None:
        """Refuse a bad query argument (400 M_INVALID_PARAM), recorded."""
        await self.audit.refuse(self.actor(call), action, "", "M_INVALID_PARAM", message)
        raise MatrixError(400, "M_INVALID_PARAM", message)
