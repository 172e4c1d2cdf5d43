"""``PUT /sendToDevice/{eventType}/{txnId}``: send-to-device messaging.

The body is ``{"messages": {user_id: {device_id or "*": content}}}``.  Delivery, federation and
/sync are in :mod:`broker.e2ee.to_device`; this module checks the request.
"""

from __future__ import annotations

from typing import Any

from broker.client_api import CLIENT_PREFIX
from broker.e2ee.to_device import ToDevice
from broker.errors import InvalidInput, MalformedContent, TooLarge
from broker.http.endpoint import Access, Call, Endpoints, endpoint
from broker.http.validation import require
from protocol.identifiers import is_user_id

MAX_RECIPIENT_DEVICES = 1000


def parse_messages(body: dict[str, Any]) -> dict[str, dict[str, dict[str, Any]]]:
    """``messages`` checked: user IDs, device IDs (or "*") and object contents, at most
    :data:`MAX_RECIPIENT_DEVICES` entries."""
    messages = require(body, "messages", dict)
    entries = 0
    for user_id, by_device in messages.items():
        if not is_user_id(user_id):
            raise InvalidInput(f"'{user_id}' is not a user ID")
        if not isinstance(by_device, dict):
            raise MalformedContent(f"messages for {user_id} must be an object of device IDs")
        for device_id, content in by_device.items():
            if not device_id:
                raise InvalidInput(f"empty device ID for {user_id}")
            if not isinstance(content, dict):
                raise MalformedContent(f"the message for {user_id} {device_id} must be an object")
        entries += len(by_device)
        if entries > MAX_RECIPIENT_DEVICES:
            raise TooLarge(f"At most {MAX_RECIPIENT_DEVICES} recipient devices per request")
    return messages


class ToDeviceEndpoints(Endpoints):
    def __init__(self, to_device: ToDevice) -> None:
        self.to_device = to_device

    @endpoint("PUT", f"{CLIENT_PREFIX}/sendToDevice/(?P<event_type>[^/]+)/(?P<txn_id>[^/]+)",
              access=Access.USER)
    async def send_to_device(self, call: Call, event_type: str, txn_id: str
                             ) -> tuple[int, dict[str, Any]]:
        messages = parse_messages(call.json())
        await self.to_device.send(call.user, event_type, txn_id, messages)
        return 200, {}
