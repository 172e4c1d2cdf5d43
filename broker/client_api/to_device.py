"""``PUT /sendToDevice/{eventType}/{txnId}``: send-to-device messaging.

The body is ``{"messages": {user_id: {device_id or "*": content}}}``.  Delivery, federation and
/sync are in :mod:`broker.e2ee.to_device`; this module checks the request and starts the purge of
undelivered messages.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from twisted.web.http import Request

from broker.client_api import CLIENT_PREFIX
from broker.e2ee import to_device
from broker.http.errors import MatrixError, bad_param, bad_type
from broker.http.parsing import parse_json_body
from broker.http.validation import require
from protocol.identifiers import is_user_id

if TYPE_CHECKING:
    from broker.http.server import Router
    from broker.node import Node

MAX_RECIPIENT_DEVICES = 1000


def parse_messages(body: dict[str, Any]) -> dict[str, dict[str, dict[str, Any]]]:
    """``messages`` checked: user IDs, device IDs (or "*") and object contents, at most
    :data:`MAX_RECIPIENT_DEVICES` entries."""
    messages = require(body, "messages", dict)
    entries = 0
    for user_id, by_device in messages.items():
        if not is_user_id(user_id):
            raise bad_param(f"'{user_id}' is not a user ID")
        if not isinstance(by_device, dict):
            raise bad_type(f"messages for {user_id} must be an object of device IDs")
        for device_id, content in by_device.items():
            if not device_id:
                raise bad_param(f"empty device ID for {user_id}")
            if not isinstance(content, dict):
                raise bad_type(f"the message for {user_id} {device_id} must be an object")
        entries += len(by_device)
        if entries > MAX_RECIPIENT_DEVICES:
            raise MatrixError(413, "M_TOO_LARGE",
                              f"At most {MAX_RECIPIENT_DEVICES} recipient devices per request")
    return messages


def register_servlets(node: Node, router: Router) -> None:
    service = to_device.service(node)
    service.start_purge()

    async def send_to_device(request: Request, event_type: str, txn_id: str
                             ) -> tuple[int, dict[str, Any]]:
        requester = await node.auth.get_requester(request)
        messages = parse_messages(parse_json_body(request))
        await service.send(requester, event_type, txn_id, messages)
        return 200, {}

    router.register(
        "PUT", f"{CLIENT_PREFIX}/sendToDevice/(?P<event_type>[^/]+)/(?P<txn_id>[^/]+)",
        send_to_device)
