"""Receipts and read markers: ``POST /rooms/{roomId}/receipt/{receiptType}/{eventId}`` and
``POST /rooms/{roomId}/read_markers``.

The rules (joined users only, the event must be in the room, threads) live in
:mod:`broker.receipts`; /sync delivers receipts as the room's ``m.receipt`` ephemeral event and
the fully-read marker as the room's ``m.fully_read`` account data.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from broker.client_api import CLIENT_PREFIX
from broker.http.bodies import Body
from broker.http.endpoint import Access, Call, Endpoints, endpoint
from broker.http.errors import bad_param
from broker.receipts import FULLY_READ, MARKER_TYPES, READ, READ_PRIVATE, Receipts, check_thread_id

ROOM = f"{CLIENT_PREFIX}/rooms/(?P<room_id>[^/]+)"
Reply = tuple[int, dict[str, Any]]


class ReceiptBody(Body):
    thread_id: Any = None  # checked with the receipt type (any wrong value: M_INVALID_PARAM)


class ReadMarkers(Body):
    fully_read: str | None = Field(None, alias="m.fully_read")
    read: str | None = Field(None, alias="m.read")
    read_private: str | None = Field(None, alias="m.read.private")

    def markers(self) -> dict[str, str]:
        """The markers to move: receipt type -> event ID."""
        wanted = {FULLY_READ: self.fully_read, READ: self.read, READ_PRIVATE: self.read_private}
        return {kind: event_id for kind, event_id in wanted.items() if event_id is not None}


class ReceiptEndpoints(Endpoints):
    def __init__(self, receipts: Receipts) -> None:
        self.receipts = receipts

    @endpoint("POST", ROOM + "/receipt/(?P<receipt_type>[^/]+)/(?P<event_id>[^/]+)",
              access=Access.USER, body=ReceiptBody, body_optional=True)
    async def post_receipt(self, call: Call, room_id: str, receipt_type: str,
                           event_id: str, body: ReceiptBody) -> Reply:
        if receipt_type not in MARKER_TYPES:
            raise bad_param(f"Receipt type must be one of {', '.join(MARKER_TYPES)}")
        thread_id = check_thread_id(receipt_type, body.thread_id)
        await self.receipts.set_marker(room_id, call.user.user_id, receipt_type, event_id,
                                       thread_id)
        return 200, {}

    @endpoint("POST", ROOM + "/read_markers", access=Access.USER, body=ReadMarkers,
              body_optional=True)
    async def read_markers(self, call: Call, room_id: str, body: ReadMarkers) -> Reply:
        await self.receipts.set_read_markers(room_id, call.user.user_id, body.markers())
        return 200, {}
