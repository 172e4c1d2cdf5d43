"""``GET /sync``: initial, incremental and long-polling sync."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from broker.client_api import CLIENT_PREFIX
from broker.filtering import Filter
from broker.http.endpoint import Access, Call, Endpoints, endpoint
from broker.http.errors import bad_param
from broker.http.validation import parse_int_arg, token_arg
from broker.sync.handler import SyncHandler, SyncRequest

MAX_TIMEOUT_MS = 5 * 60 * 1000

FilterResolver = Callable[[str, str | None], Awaitable[Filter]]


class SyncEndpoints(Endpoints):
    def __init__(self, handler: SyncHandler, resolve_filter: FilterResolver) -> None:
        self.handler = handler
        self.resolve_filter = resolve_filter

    @endpoint("GET", f"{CLIENT_PREFIX}/sync", access=Access.USER)
    async def sync(self, call: Call) -> tuple[int, dict[str, Any]]:
        since_raw = call.arg("since")
        since = token_arg(since_raw, "since") if since_raw else None
        full_state_raw = call.arg("full_state", "false")
        if full_state_raw not in ("true", "false"):
            raise bad_param("'full_state' must be true or false")
        set_presence = call.arg("set_presence", "online")
        if set_presence not in ("online", "offline", "unavailable"):
            raise bad_param("'set_presence' must be online, offline or unavailable")
        timeout = parse_int_arg(call.arg("timeout"), "timeout", 0, maximum=MAX_TIMEOUT_MS)
        sync_filter = await self.resolve_filter(call.user.user_id, call.arg("filter"))
        body = await self.handler.sync(SyncRequest(
            requester=call.user, since=since, filter=sync_filter,
            full_state=full_state_raw == "true", timeout_ms=timeout))
        return 200, body
