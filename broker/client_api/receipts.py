"""Receipts and read markers: ``POST /rooms/{roomId}/receipt/{receiptType}/{eventId}`` and
``POST /rooms/{roomId}/read_markers``.

The rules (joined users only, the event must be in the room, threads) live in
:mod:`broker.receipts`; /sync delivers receipts as the room's ``m.receipt`` ephemeral event and
the fully-read marker as the room's ``m.fully_read`` account data.
"""

from __future__ import annotations

from typing import Any

from broker.client_api import CLIENT_PREFIX
from broker.http.endpoint import Access, Call, Endpoints, endpoint
from broker.http.errors import bad_param
from broker.http.validation import optional
from broker.receipts import MARKER_TYPES, Receipts, check_thread_id

ROOM = f"{CLIENT_PREFIX}/rooms/(?P<room_id>[^/]+)"
Reply = tuple[int, dict[str, Any]]


class ReceiptEndpoints(Endpoints):
    def __init__(self, receipts: Receipts) -> None:
        self.receipts = receipts

    @endpoint("POST", ROOM + "/receipt/(?P<receipt_type>[^/]+)/(?P<event_id>[^/]+)",
              access=Access.USER)
    async def post_receipt(self, call: Call, room_id: str, receipt_type: str,
                           event_id: str) -> Reply:
        if receipt_type not in MARKER_TYPES:
            raise bad_param(f"Receipt type must be one of {', '.join(MARKER_TYPES)}")
        body = call.json(allow_empty=True)
        thread_id = check_thread_id(receipt_type, body.get("thread_id"))
        await self.receipts.set_marker(room_id, call.user.user_id, receipt_type, event_id,
                                       thread_id)
        return 200, {}

    @endpoint("POST", ROOM + "/read_markers", access=Access.USER)
    async def read_markers(self, call: Call, room_id: str) -> Reply:
        body = call.json(allow_empty=True)
        wanted = {kind: optional(body, kind, str) for kind in MARKER_TYPES}
        await self.receipts.set_read_markers(
            room_id, call.user.user_id,
            {kind: event_id for kind, event_id in wanted.items() if event_id is not None})
        return 200, {}
