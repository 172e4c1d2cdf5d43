"""History: ``GET /rooms/{roomId}/messages`` (pagination both ways) and
``GET /rooms/{roomId}/context/{eventId}``.

Tokens are stream positions (see broker/sync/tokens.py): paginating backwards from P returns
events at or before P, newest first; forwards from P returns events after P, oldest first.
A user who has left sees history only up to their leave (see :mod:`broker.services.history`).
"""

from __future__ import annotations

from typing import Any

from broker.client_api import CLIENT_PREFIX
from broker.errors import InvalidInput
from broker.filtering import parse_room_event_filter
from broker.http.endpoint import Access, Call, Endpoints, endpoint
from broker.http.validation import parse_int_arg, token_arg
from broker.services.history import History, PageQuery

ROOM = "(?P<room_id>[^/]+)"
MAX_LIMIT = 1000


def _page_query(call: Call) -> PageQuery:
    direction = call.arg("dir", "b")
    if direction not in ("b", "f"):
        raise InvalidInput("'dir' must be 'b' or 'f'")
    limit = parse_int_arg(call.arg("limit"), "limit", 10, maximum=MAX_LIMIT)
    from_raw = call.arg("from")
    to_raw = call.arg("to")
    flt = parse_room_event_filter(call.arg("filter"))
    limit = flt.limit_or(limit, MAX_LIMIT)
    start = token_arg(from_raw, "from").stream if from_raw else None
    to = token_arg(to_raw, "to").stream if to_raw else None
    return PageQuery(direction == "b", limit, flt, start, to)


class HistoryEndpoints(Endpoints):
    def __init__(self, history: History) -> None:
        self.history = history

    @endpoint("GET", f"{CLIENT_PREFIX}/rooms/{ROOM}/messages", access=Access.USER)
    async def messages(self, call: Call, room_id: str) -> tuple[int, dict[str, Any]]:
        reader = await self.history.reader(call.user.user_id, call.user.device_id, room_id)
        return 200, await self.history.messages(reader, _page_query(call))

    @endpoint("GET", f"{CLIENT_PREFIX}/rooms/{ROOM}/context/(?P<event_id>[^/]+)",
              access=Access.USER)
    async def context(self, call: Call, room_id: str, event_id: str
                      ) -> tuple[int, dict[str, Any]]:
        reader = await self.history.reader(call.user.user_id, call.user.device_id, room_id)
        limit = parse_int_arg(call.arg("limit"), "limit", 10, maximum=100)
        flt = parse_room_event_filter(call.arg("filter"))
        return 200, await self.history.context(reader, event_id, limit, flt)
