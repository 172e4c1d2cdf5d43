"""The logged-in account: ``/account/whoami``, ``/logout``, ``/logout/all``,
``/account/password`` and ``/account/deactivate``.

Changing the password and deactivating need user-interactive auth with ``m.login.password``
(the current password of the logged-in user).  Every revoked token is also dropped from the
node's token cache, so it stops working at once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from twisted.web.http import Request

from broker.client_api import CLIENT_PREFIX
from broker.client_api.register import check_new_password
from broker.client_api.uia import PASSWORD, uia_for
from broker.e2ee.device_lists import on_devices_deleted
from broker.http.parsing import parse_json_body
from broker.http.validation import optional, require

if TYPE_CHECKING:
    from broker.http.server import Router
    from broker.node import Node

PASSWORD_FLOWS = [[PASSWORD]]


def register_servlets(node: Node, router: Router) -> None:
    users = node.stores.users

    async def whoami(request: Request) -> tuple[int, dict[str, Any]]:
        requester = await node.auth.get_requester(request)
        return 200, {"user_id": requester.user_id, "device_id": requester.device_id,
                     "is_guest": False}

    async def logout(request: Request) -> tuple[int, dict[str, Any]]:
        requester = await node.auth.get_requester(request)
        revoked = await users.delete_devices(requester.user_id, [requester.device_id])
        node.auth.forget_tokens([requester.token_hash, *revoked])
        await on_devices_deleted(node, requester.user_id, [requester.device_id])
        return 200, {}

    async def logout_all(request: Request) -> tuple[int, dict[str, Any]]:
        requester = await node.auth.get_requester(request)
        devices = await users.get_devices(requester.user_id)
        revoked = await users.delete_all_devices(requester.user_id)
        node.auth.forget_tokens([requester.token_hash, *revoked])
        await on_devices_deleted(node, requester.user_id, [d.device_id for d in devices])
        return 200, {}

    async def change_password(request: Request) -> tuple[int, dict[str, Any]]:
        requester = await node.auth.get_requester(request)
        body = parse_json_body(request)
        new_password = require(body, "new_password", str)
        logout_devices = optional(body, "logout_devices", bool, True)
        check_new_password(new_password)
        await uia_for(node).check(request, body, PASSWORD_FLOWS, requester=requester)
        password_hash = await node.auth.passwords.hash(new_password)
        devices = await users.get_devices(requester.user_id) if logout_devices else []
        revoked = await users.change_password(
            requester.user_id, password_hash, keep_device_id=requester.device_id,
            logout_other_devices=logout_devices)
        node.auth.forget_tokens(revoked)
        await on_devices_deleted(node, requester.user_id, [
            d.device_id for d in devices if d.device_id != requester.device_id])
        return 200, {}

    async def deactivate(request: Request) -> tuple[int, dict[str, Any]]:
        requester = await node.auth.get_requester(request)
        body = parse_json_body(request, allow_empty=True)
        erase = optional(body, "erase", bool, False)
        optional(body, "id_server", str)
        await uia_for(node).check(request, body, PASSWORD_FLOWS, requester=requester)
        devices = await users.get_devices(requester.user_id)
        revoked = await users.deactivate(requester.user_id, erase=erase)
        node.auth.forget_tokens([requester.token_hash, *revoked])
        await on_devices_deleted(node, requester.user_id, [d.device_id for d in devices])
        await node.rooms.leave_all_rooms(requester.user_id)
        # No identity server is ever bound to accounts on this node.
        return 200, {"id_server_unbind_result": "no-support"}

    router.register("GET", f"{CLIENT_PREFIX}/account/whoami", whoami)
    router.register("POST", f"{CLIENT_PREFIX}/logout", logout)
    router.register("POST", f"{CLIENT_PREFIX}/logout/all", logout_all)
    router.register("POST", f"{CLIENT_PREFIX}/account/password", change_password)
    router.register("POST", f"{CLIENT_PREFIX}/account/deactivate", deactivate)
