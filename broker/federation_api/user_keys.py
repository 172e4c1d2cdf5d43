"""Device keys of local users for other servers: ``GET /user/devices/{userId}``,
``POST /user/keys/query`` and ``POST /user/keys/claim`` (Server-Server "End-to-End Encryption"
and "Device Management").  Device display names are not shown to other servers."""

from __future__ import annotations

from typing import Any

from broker.e2ee.keys import check_claim, check_query
from broker.federation_api import FED_V1
from broker.http.bodies import JsonObject
from broker.http.endpoint import Access, Call, Endpoints, endpoint
from broker.services.federation_queries import FederationUserKeys


class UserKeyEndpoints(Endpoints):
    def __init__(self, keys: FederationUserKeys) -> None:
        self.keys = keys

    @endpoint("GET", f"{FED_V1}/user/devices/(?P<user_id>[^/]+)", access=Access.SERVER)
    async def user_devices(self, call: Call, user_id: str) -> tuple[int, dict[str, Any]]:
        return 200, await self.keys.devices(user_id)

    @endpoint("POST", f"{FED_V1}/user/keys/query", access=Access.SERVER, body=JsonObject)
    async def query(self, call: Call, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        # Users of other servers are left out of the answer.
        return 200, await self.keys.query(check_query(body))

    @endpoint("POST", f"{FED_V1}/user/keys/claim", access=Access.SERVER, body=JsonObject)
    async def claim(self, call: Call, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        return 200, {"one_time_keys": await self.keys.claim(check_claim(body))}
