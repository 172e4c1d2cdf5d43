"""Device management: ``GET /devices``, ``GET/PUT/DELETE /devices/{deviceId}`` and
``POST /delete_devices``.

Deleting devices needs user-interactive auth with ``m.login.password``; a deleted device's access
token stops working at once.  Deleting a device that does not exist succeeds (nothing to do).
"""

from __future__ import annotations

from typing import Annotated, Any

from annotated_types import Len

from broker.client_api import CLIENT_PREFIX
from broker.client_api.login import DeviceName
from broker.client_api.uia import PASSWORD, AuthenticatedBody, UserInteractiveAuth
from broker.http.bodies import Body
from broker.http.endpoint import Access, Call, Endpoints, endpoint
from broker.services.accounts import Devices

DELETE_FLOWS = [[PASSWORD]]
MAX_DEVICES_PER_REQUEST = 1000
DEVICES = f"{CLIENT_PREFIX}/devices"
DEVICE = f"{CLIENT_PREFIX}/devices/(?P<device_id>[^/]+)"


class DeviceUpdate(Body):
    display_name: DeviceName | None = None


class DevicesDeletion(AuthenticatedBody):
    devices: Annotated[list[str], Len(max_length=MAX_DEVICES_PER_REQUEST)]


class DeviceEndpoints(Endpoints):
    def __init__(self, devices: Devices, uia: UserInteractiveAuth) -> None:
        self.devices = devices
        self.uia = uia

    async def _delete(self, call: Call, body: AuthenticatedBody, device_ids: list[str]
                      ) -> tuple[int, dict[str, Any]]:
        await self.uia.check(call.request, body.auth, DELETE_FLOWS, requester=call.user)
        await self.devices.delete(call.user.user_id, device_ids)
        return 200, {}

    @endpoint("GET", DEVICES, access=Access.USER)
    async def list_devices(self, call: Call) -> tuple[int, dict[str, Any]]:
        devices = await self.devices.all(call.user.user_id)
        return 200, {"devices": [device.to_json() for device in devices]}

    @endpoint("GET", DEVICE, access=Access.USER)
    async def get_device(self, call: Call, device_id: str) -> tuple[int, dict[str, Any]]:
        return 200, (await self.devices.get(call.user.user_id, device_id)).to_json()

    @endpoint("PUT", DEVICE, access=Access.USER, body=DeviceUpdate)
    async def update_device(self, call: Call, device_id: str, body: DeviceUpdate
                            ) -> tuple[int, dict[str, Any]]:
        await self.devices.rename(call.user.user_id, device_id, body.display_name)
        return 200, {}

    @endpoint("DELETE", DEVICE, access=Access.USER, body=AuthenticatedBody, body_optional=True)
    async def delete_device(self, call: Call, device_id: str, body: AuthenticatedBody
                            ) -> tuple[int, dict[str, Any]]:
        return await self._delete(call, body, [device_id])

    @endpoint("POST", f"{CLIENT_PREFIX}/delete_devices", access=Access.USER,
              body=DevicesDeletion)
    async def delete_devices(self, call: Call, body: DevicesDeletion
                             ) -> tuple[int, dict[str, Any]]:
        return await self._delete(call, body, body.devices)
