"""``GET /sync``: initial, incremental and long-polling sync."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from twisted.web.http import Request

from broker.client_api import CLIENT_PREFIX
from broker.filtering import resolve_filter
from broker.http.errors import bad_param
from broker.http.parsing import query_arg
from broker.http.validation import parse_int_arg, token_arg
from broker.sync.handler import SyncRequest

if TYPE_CHECKING:
    from broker.http.server import Router
    from broker.node import Node

MAX_TIMEOUT_MS = 5 * 60 * 1000


def register_servlets(node: Node, router: Router) -> None:
    handler = node.sync

    async def sync(request: Request) -> tuple[int, dict[str, Any]]:
        requester = await node.auth.get_requester(request)
        since_raw = query_arg(request, "since")
        since = token_arg(since_raw, "since") if since_raw else None
        full_state_raw = query_arg(request, "full_state", "false")
        if full_state_raw not in ("true", "false"):
            raise bad_param("'full_state' must be true or false")
        set_presence = query_arg(request, "set_presence", "online")
        if set_presence not in ("online", "offline", "unavailable"):
            raise bad_param("'set_presence' must be online, offline or unavailable")
        timeout = parse_int_arg(query_arg(request, "timeout"), "timeout", 0,
                                maximum=MAX_TIMEOUT_MS)
        sync_filter = await resolve_filter(node, requester.user_id, query_arg(request, "filter"))
        body = await handler.sync(SyncRequest(
            requester=requester, since=since, filter=sync_filter,
            full_state=full_state_raw == "true", timeout_ms=timeout))
        return 200, body

    router.register("GET", f"{CLIENT_PREFIX}/sync", sync)
