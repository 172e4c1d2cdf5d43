"""Receipts and read markers: ``POST /rooms/{roomId}/receipt/{receiptType}/{eventId}`` and
``POST /rooms/{roomId}/read_markers``.

The rules (joined users only, the event must be in the room, threads) live in
:mod:`broker.receipts`; /sync delivers receipts as the room's ``m.receipt`` ephemeral event and
the fully-read marker as the room's ``m.fully_read`` account data.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from twisted.web.http import Request

from broker.client_api import CLIENT_PREFIX
from broker.http.errors import bad_param
from broker.http.parsing import parse_json_body
from broker.http.validation import optional
from broker.receipts import MARKER_TYPES, Receipts, check_thread_id

if TYPE_CHECKING:
    from broker.http.server import Router
    from broker.node import Node

ROOM = "(?P<room_id>[^/]+)"


def register_servlets(node: Node, router: Router) -> None:
    receipts = Receipts(node)

    async def post_receipt(request: Request, room_id: str, receipt_type: str, event_id: str
                           ) -> tuple[int, dict[str, Any]]:
        requester = await node.auth.get_requester(request)
        if receipt_type not in MARKER_TYPES:
            raise bad_param(f"Receipt type must be one of {', '.join(MARKER_TYPES)}")
        body = parse_json_body(request, allow_empty=True)
        thread_id = check_thread_id(receipt_type, body.get("thread_id"))
        await receipts.set_marker(room_id, requester.user_id, receipt_type, event_id, thread_id)
        return 200, {}

    async def read_markers(request: Request, room_id: str) -> tuple[int, dict[str, Any]]:
        requester = await node.auth.get_requester(request)
        body = parse_json_body(request, allow_empty=True)
        await node.rooms.require_joined(room_id, requester.user_id)
        wanted = {kind: optional(body, kind, str) for kind in MARKER_TYPES}
        wanted = {kind: event_id for kind, event_id in wanted.items() if event_id is not None}
        # Check every marker before moving any, so a bad one leaves nothing half-written.
        for event_id in set(wanted.values()):
            await receipts.room_event(room_id, requester.user_id, event_id)
        for kind, event_id in wanted.items():
            await receipts.set_marker(room_id, requester.user_id, kind, event_id)
        return 200, {}

    router.register(
        "POST", f"{CLIENT_PREFIX}/rooms/{ROOM}/receipt/(?P<receipt_type>[^/]+)/"
        "(?P<event_id>[^/]+)", post_receipt)
    router.register("POST", f"{CLIENT_PREFIX}/rooms/{ROOM}/read_markers", read_markers)
