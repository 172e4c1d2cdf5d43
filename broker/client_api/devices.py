"""Device management: ``GET /devices``, ``GET/PUT/DELETE /devices/{deviceId}`` and
``POST /delete_devices``.

Deleting devices needs user-interactive auth with ``m.login.password``; a deleted device's access
token stops working at once.  Deleting a device that does not exist succeeds (nothing to do).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from twisted.web.http import Request

from broker.auth import Requester
from broker.client_api import CLIENT_PREFIX
from broker.client_api.login import MAX_DEVICE_NAME_LENGTH
from broker.client_api.uia import PASSWORD, uia_for
from broker.e2ee.device_lists import on_devices_deleted
from broker.http.errors import MatrixError, not_found
from broker.http.parsing import parse_json_body
from broker.http.validation import optional, require

if TYPE_CHECKING:
    from broker.http.server import Router
    from broker.node import Node

DELETE_FLOWS = [[PASSWORD]]
MAX_DEVICES_PER_REQUEST = 1000


def register_servlets(node: Node, router: Router) -> None:
    users = node.stores.users

    async def delete(request: Request, requester: Requester, body: dict[str, Any],
                     device_ids: list[str]) -> tuple[int, dict[str, Any]]:
        await uia_for(node).check(request, body, DELETE_FLOWS, requester=requester)
        revoked = await users.delete_devices(requester.user_id, device_ids)
        node.auth.forget_tokens(revoked)
        await on_devices_deleted(node, requester.user_id, device_ids)
        return 200, {}

    async def list_devices(request: Request) -> tuple[int, dict[str, Any]]:
        requester = await node.auth.get_requester(request)
        await node.auth.flush_last_seen()
        devices = await users.get_devices(requester.user_id)
        return 200, {"devices": [device.to_json() for device in devices]}

    async def get_device(request: Request, device_id: str) -> tuple[int, dict[str, Any]]:
        requester = await node.auth.get_requester(request)
        await node.auth.flush_last_seen()
        device = await users.get_device(requester.user_id, device_id)
        if device is None:
            raise not_found("No such device")
        return 200, device.to_json()

    async def update_device(request: Request, device_id: str) -> tuple[int, dict[str, Any]]:
        requester = await node.auth.get_requester(request)
        body = parse_json_body(request)
        name = optional(body, "display_name", str)
        if name is not None and len(name) > MAX_DEVICE_NAME_LENGTH:
            raise MatrixError(400, "M_INVALID_PARAM", "'display_name' is too long")
        if name is None:
            if await users.get_device(requester.user_id, device_id) is None:
                raise not_found("No such device")
        elif not await users.rename_device(requester.user_id, device_id, name):
            raise not_found("No such device")
        return 200, {}

    async def delete_device(request: Request, device_id: str) -> tuple[int, dict[str, Any]]:
        requester = await node.auth.get_requester(request)
        body = parse_json_body(request, allow_empty=True)
        return await delete(request, requester, body, [device_id])

    async def delete_devices(request: Request) -> tuple[int, dict[str, Any]]:
        requester = await node.auth.get_requester(request)
        body = parse_json_body(request)
        device_ids = require(body, "devices", list)
        if not all(isinstance(d, str) for d in device_ids):
            raise MatrixError(400, "M_BAD_JSON", "'devices' must be an array of strings")
        if len(device_ids) > MAX_DEVICES_PER_REQUEST:
            raise MatrixError(400, "M_INVALID_PARAM",
                              f"At most {MAX_DEVICES_PER_REQUEST} devices per request")
        return await delete(request, requester, body, device_ids)

    device_path = f"{CLIENT_PREFIX}/devices/(?P<device_id>[^/]+)"
    router.register("GET", f"{CLIENT_PREFIX}/devices", list_devices)
    router.register("GET", device_path, get_device)
    router.register("PUT", device_path, update_device)
    router.register("DELETE", device_path, delete_device)
    router.register("POST", f"{CLIENT_PREFIX}/delete_devices", delete_devices)
