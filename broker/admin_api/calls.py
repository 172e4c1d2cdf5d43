"""What every admin endpoint does the same way: who acts, and recording refused input.

Admin bodies are declared ``JsonObject``: a body that is not a JSON object is refused by the
router with the spec's 400 and recorded in the audit log (:meth:`AdminEndpoints.body_refused`,
under the action and target each group's ``BODY_ACTIONS`` names); its fields are checked by
the service (which the admin commands share), which refuses unknown ones with 400 M_BAD_JSON
naming the field."""

from __future__ import annotations

from typing import Any, ClassVar

from broker.admin.audit import AuditLog
from broker.admin.model import Actor
from broker.http.endpoint import Call, Endpoints
from broker.http.errors import MatrixError

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000


def page(name: str, items: list[dict[str, Any]], limit: int, key: str) -> dict[str, Any]:
    """A page of a listing: ``items`` under ``name``, and ``next_from`` (the last item's
    ``key``) when the page is full, so more may follow."""
    answer: dict[str, Any] = {name: items}
    if len(items) == limit:
        answer["next_from"] = items[-1][key]
    return answer


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

    async def query_limit(self, call: Call, action: str) -> int:
        """The ``limit`` of a listing: 1 to 1000, 100 when absent."""
        return max(await self.query_int(call, action, "limit", DEFAULT_LIMIT,
                                        maximum=MAX_LIMIT), 1)

    async def query_choice(self, call: Call, action: str, name: str,
                           choices: tuple[str, ...]) -> str | None:
        value = call.arg(name)
        if value is not None and value not in choices:
            await self.refused(call, action, f"'{name}' must be one of: {', '.join(choices)}")
        return value

    async def query_text(self, call: Call, action: str, name: str, maximum: int) -> str:
        """A text query argument ('' when absent) of at most ``maximum`` characters."""
        value = call.arg(name) or ""
        if len(value) > maximum:
            await self.refused(call, action, f"'{name}' may be at most {maximum} characters")
        return value

    async def refused(self, call: Call, action: str, message: str) -> None:
        """Refuse a bad query argument (400 M_INVALID_PARAM), recorded."""
        await self.audit.refuse(self.actor(call), action, "", "M_INVALID_PARAM", message)
        raise MatrixError(400, "M_INVALID_PARAM", message)
