"""Device management: ``GET /devices``, ``GET/PUT/DELETE /devices/{deviceId}`` and
``POST /delete_devices``.

Deleting devices needs user-interactive auth with ``m.login.password``; a deleted device's access
token stops working at once.  Deleting a device that does not exist succeeds (nothing to do).
"""

from __future__ import annotations

from typing import Any

from broker.client_api import CLIENT_PREFIX
from broker.client_api.login import MAX_DEVICE_NAME_LENGTH
from broker.client_api.uia import PASSWORD, UserInteractiveAuth
from broker.http.endpoint import Access, Call, Endpoints, endpoint
from broker.http.errors import MatrixError
from broker.http.validation import optional, require
from broker.services.accounts import Devices

DELETE_FLOWS = [[PASSWORD]]
MAX_DEVICES_PER_REQUEST = 1000
DEVICES = f"{CLIENT_PREFIX}/devices"
DEVICE = f"{CLIENT_PREFIX}/devices/(?P<device_id>[^/]+)"


class DeviceEndpoints(Endpoints):
    def __init__(self, devices: Devices, uia: UserInteractiveAuth) -> None:
        self.devices = devices
        self.uia = uia

    async def _delete(self, call: Call, body: dict[str, Any], device_ids: list[str]
                      ) -> tuple[int, dict[str, Any]]:
        await self.uia.check(call.request, body, DELETE_FLOWS, requester=call.user)
        await self.devices.delete(call.user.user_id, device_ids)
        return 200, {}

    @endpoint("GET", DEVICES, access=Access.USER)
    async def list_devices(self, call: Call) -> tuple[int, dict[str, Any]]:
        devices = await self.devices.all(call.user.user_id)
        return 200, {"devices": [device.to_json() for device in devices]}

    @endpoint("GET", DEVICE, access=Access.USER)
    async def get_device(self, call: Call, device_id: str) -> tuple[int, dict[str, Any]]:
        return 200, (await self.devices.get(call.user.user_id, device_id)).to_json()

    @endpoint("PUT", DEVICE, access=Access.USER)
    async def update_device(self, call: Call, device_id: str) -> tuple[int, dict[str, Any]]:
        name = optional(call.json(), "display_name", str)
        if name is not None and len(name) > MAX_DEVICE_NAME_LENGTH:
            raise MatrixError(400, "M_INVALID_PARAM", "'display_name' is too long")
        await self.devices.rename(call.user.user_id, device_id, name)
        return 200, {}

    @endpoint("DELETE", DEVICE, access=Access.USER)
    async def delete_device(self, call: Call, device_id: str) -> tuple[int, dict[str, Any]]:
        return await self._delete(call, call.json(allow_empty=True), [device_id])

    @endpoint("POST", f"{CLIENT_PREFIX}/delete_devices", access=Access.USER)
    async def delete_devices(self, call: Call) -> tuple[int, dict[str, Any]]:
        body = call.json()
        device_ids = require(body, "devices", list)
        if not all(isinstance(d, str) for d in device_ids):
            raise MatrixError(400, "M_BAD_JSON", "'devices' must be an array of strings")
        if len(device_ids) > MAX_DEVICES_PER_REQUEST:
            raise MatrixError(400, "M_INVALID_PARAM",
                              f"At most {MAX_DEVICES_PER_REQUEST} devices per request")
        return await self._delete(call, body, device_ids)
