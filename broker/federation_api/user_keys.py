"""Device keys of local users for other servers: ``GET /user/devices/{userId}``,
``POST /user/keys/query`` and ``POST /user/keys/claim`` (Server-Server "End-to-End Encryption"
and "Device Management").  Device display names are not shown to other servers."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from twisted.web.http import Request

from broker.e2ee.keys import (
    check_claim,
    check_query,
    claim_local_keys,
    query_local_keys,
)
from broker.federation_api import FED_V1
from broker.federation_api.authentication import authenticate
from broker.http.errors import MatrixError
from broker.http.parsing import parse_json_body

if TYPE_CHECKING:
    from broker.http.server import Router
    from broker.node import Node


def register_servlets(node: Node, router: Router) -> None:
    async def user_devices(request: Request, user_id: str) -> tuple[int, dict[str, Any]]:
        await authenticate(node, request)
        if not node.is_mine(user_id):
            raise MatrixError(400, "M_INVALID_PARAM", f"{user_id} is not a user of this server")
        stream_id = await node.stores.device_keys.get_last_change(user_id)
        keys = await query_local_keys(node, {user_id: []}, viewer=None, over_federation=True)
        devices = keys["device_keys"].get(user_id, {})
        answer: dict[str, Any] = {
            "user_id": user_id,
            "stream_id": stream_id,
            "devices": [{"device_id": device_id, "keys": devices[device_id]}
                        for device_id in sorted(devices)],
        }
        if user_id in keys.get("master_keys", {}):
            answer["master_key"] = keys["master_keys"][user_id]
        if user_id in keys.get("self_signing_keys", {}):
            answer["self_signing_key"] = keys["self_signing_keys"][user_id]
        return 200, answer

    async def query(request: Request) -> tuple[int, dict[str, Any]]:
        await authenticate(node, request)
        # Users of other servers are left out of the answer.
        wanted = check_query(parse_json_body(request))
        return 200, await query_local_keys(node, wanted, viewer=None, over_federation=True)

    async def claim(request: Request) -> tuple[int, dict[str, Any]]:
        await authenticate(node, request)
        wanted = check_claim(parse_json_body(request))
        return 200, {"one_time_keys": await claim_local_keys(node, wanted)}

    router.register("GET", f"{FED_V1}/user/devices/(?P<user_id>[^/]+)", user_devices)
    router.register("POST", f"{FED_V1}/user/keys/query", query)
    router.register("POST", f"{FED_V1}/user/keys/claim", claim)
