"""End-to-end encryption keys: ``POST /keys/upload``, ``/keys/query``, ``/keys/claim`` and
``GET /keys/changes``.  The logic lives in :mod:`broker.e2ee.keys` and
:mod:`broker.e2ee.device_lists`."""

from __future__ import annotations

from typing import Any

from broker.client_api import CLIENT_PREFIX
from broker.http.bodies import JsonObject
from broker.http.endpoint import Access, Call, Endpoints, endpoint
from broker.http.errors import MatrixError
from broker.http.validation import token_arg
from broker.services.e2ee import EndToEndKeys

KEYS = f"{CLIENT_PREFIX}/keys"


class KeyEndpoints(Endpoints):
    def __init__(self, keys: EndToEndKeys) -> None:
        self.keys = keys

    @endpoint("POST", f"{KEYS}/upload", access=Access.USER, body=JsonObject,
              body_optional=True)
    async def upload(self, call: Call, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        return 200, await self.keys.upload(call.user, body)

    @endpoint("POST", f"{KEYS}/query", access=Access.USER, body=JsonObject)
    async def query(self, call: Call, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        # The answer has cross-signing for every queried user, local or remote: keys the node
        # holds (including those learned from m.signing_key_update) and the signatures the
        # requester may see, e.g. their own over other users' master keys.
        return 200, await self.keys.query(call.user, body)

    @endpoint("POST", f"{KEYS}/claim", access=Access.USER, body=JsonObject)
    async def claim(self, call: Call, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        return 200, await self.keys.claim(call.user, body)

    @endpoint("GET", f"{KEYS}/changes", access=Access.USER)
    async def changes(self, call: Call) -> tuple[int, dict[str, Any]]:
        raw_from, raw_to = call.arg("from"), call.arg("to")
        if not raw_from or not raw_to:
            raise MatrixError(400, "M_MISSING_PARAM", "'from' and 'to' are required")
        start = token_arg(raw_from, "from").stream
        end = min(token_arg(raw_to, "to").stream, self.keys.current_position())
        if end <= start:
            return 200, {"changed": [], "left": []}
        changed, left = await self.keys.changes(call.user.user_id, start, end)
        return 200, {"changed": sorted(changed), "left": sorted(left)}
