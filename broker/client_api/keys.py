"""End-to-end encryption keys: ``POST /keys/upload``, ``/keys/query``, ``/keys/claim`` and
``GET /keys/changes``.  The logic lives in :mod:`broker.e2ee.keys` and
:mod:`broker.e2ee.device_lists`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from twisted.web.http import Request

from broker.client_api import CLIENT_PREFIX
from broker.e2ee import keys
from broker.e2ee.device_lists import device_list_changes
from broker.http.errors import MatrixError
from broker.http.parsing import parse_json_body, query_arg
from broker.http.validation import token_arg

if TYPE_CHECKING:
    from broker.http.server import Router
    from broker.node import Node


def register_servlets(node: Node, router: Router) -> None:
    async def upload(request: Request) -> tuple[int, dict[str, Any]]:
        requester = await node.auth.get_requester(request)
        body = parse_json_body(request, allow_empty=True)
        return 200, await keys.upload_keys(node, requester, body)

    async def query(request: Request) -> tuple[int, dict[str, Any]]:
        requester = await node.auth.get_requester(request)
        # keys.query_keys completes the answer with cross-signing for every queried user, local
        # or remote: keys the node holds (including those learned from m.signing_key_update)
        # and the signatures the requester may see, e.g. their own over other users' master keys.
        return 200, await keys.query_keys(node, requester, parse_json_body(request))

    async def claim(request: Request) -> tuple[int, dict[str, Any]]:
        requester = await node.auth.get_requester(request)
        return 200, await keys.claim_keys(node, requester, parse_json_body(request))

    async def changes(request: Request) -> tuple[int, dict[str, Any]]:
        requester = await node.auth.get_requester(request)
        raw_from, raw_to = query_arg(request, "from"), query_arg(request, "to")
        if not raw_from or not raw_to:
            raise MatrixError(400, "M_MISSING_PARAM", "'from' and 'to' are required")
        start = token_arg(raw_from, "from").stream
        end = token_arg(raw_to, "to").stream
        assert node.stream is not None
        end = min(end, node.stream.current_token())
        if end <= start:
            return 200, {"changed": [], "left": []}
        changed, left = await device_list_changes(node, requester.user_id, start, end)
        return 200, {"changed": sorted(changed), "left": sorted(left)}

    router.register("POST", f"{CLIENT_PREFIX}/keys/upload", upload)
    router.register("POST", f"{CLIENT_PREFIX}/keys/query", query)
    router.register("POST", f"{CLIENT_PREFIX}/keys/claim", claim)
    router.register("GET", f"{CLIENT_PREFIX}/keys/changes", changes)
