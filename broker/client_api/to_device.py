"""``PUT /sendToDevice/{eventType}/{txnId}``: send-to-device messaging.

The body is ``{"messages": {user_id: {device_id or "*": content}}}``.  Delivery, federation and
/sync are in :mod:`broker.e2ee.to_device`; this module checks the request.
"""

from __future__ import annotations

from typing import Any

from pydantic import model_validator

from broker.client_api import CLIENT_PREFIX
from broker.e2ee.to_device import ToDevice
from broker.errors import InvalidInput, TooLarge
from broker.http.bodies import Body
from broker.http.endpoint import Access, Call, Endpoints, endpoint
from protocol.identifiers import is_user_id

MAX_RECIPIENT_DEVICES = 1000


class ToDeviceBody(Body):
    """``messages``: user IDs, device IDs (or "*") and object contents, at most
    :data:`MAX_RECIPIENT_DEVICES` entries."""

    messages: dict[str, dict[str, dict[str, Any]]]

    @model_validator(mode="after")
    def _recipients(self) -> ToDeviceBody:
        entries = 0
        for user_id, by_device in self.messages.items():
            if not is_user_id(user_id):
                raise InvalidInput(f"'{user_id}' is not a user ID")
            if "" in by_device:
                raise InvalidInput(f"empty device ID for {user_id}")
            entries += len(by_device)
            if entries > MAX_RECIPIENT_DEVICES:
                raise TooLarge(f"At most {MAX_RECIPIENT_DEVICES} recipient devices per request")
        return self


class ToDeviceEndpoints(Endpoints):
    def __init__(self, to_device: ToDevice) -> None:
        self.to_device = to_device

    @endpoint("PUT", f"{CLIENT_PREFIX}/sendToDevice/(?P<event_type>[^/]+)/(?P<txn_id>[^/]+)",
              access=Access.USER, body=ToDeviceBody)
    async def send_to_device(self, call: Call, event_type: str, txn_id: str,
                             body: ToDeviceBody) -> tuple[int, dict[str, Any]]:
        await self.to_device.send(call.user, event_type, txn_id, body.messages)
        return 200, {}
