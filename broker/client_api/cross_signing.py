"""Cross-signing uploads: ``POST /keys/device_signing/upload`` and ``POST /keys/signatures/upload``.

Uploading cross-signing keys needs user-interactive auth with ``m.login.password``, except when
the user has no master key yet or the request holds no new key (the spec's exceptions, as in
Synapse).  Validation happens before the UIA challenge, so a malformed upload is refused at once.
The checks and storage live in :mod:`broker.e2ee.cross_signing`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from twisted.web.http import Request

from broker.client_api import CLIENT_PREFIX
from broker.client_api.uia import PASSWORD, uia_for
from broker.e2ee import cross_signing
from broker.http.parsing import parse_json_body

if TYPE_CHECKING:
    from broker.http.server import Router
    from broker.node import Node

UPLOAD_FLOWS = [[PASSWORD]]


def register_servlets(node: Node, router: Router) -> None:
    async def upload_keys(request: Request) -> tuple[int, dict[str, Any]]:
        requester = await node.auth.get_requester(request)
        body = parse_json_body(request)
        upload = await cross_signing.check_key_upload(node, requester.user_id, body)
        if upload.needs_auth:
            await uia_for(node).check(request, body, UPLOAD_FLOWS, requester=requester)
        if await cross_signing.store_uploaded_keys(node, upload,
                                                   authenticated=upload.needs_auth):
            return 200, {}
        # A concurrent upload stored a master key between the check and the write of this
        # one, which skipped UIA: now it needs it.
        await uia_for(node).check(request, body, UPLOAD_FLOWS, requester=requester)
        upload = await cross_signing.check_key_upload(node, requester.user_id, body)
        await cross_signing.store_uploaded_keys(node, upload, authenticated=True)
        return 200, {}

    async def upload_signatures(request: Request) -> tuple[int, dict[str, Any]]:
        requester = await node.auth.get_requester(request)
        body = parse_json_body(request)
        return 200, await cross_signing.upload_signatures(node, requester.user_id, body)

    router.register("POST", f"{CLIENT_PREFIX}/keys/device_signing/upload", upload_keys)
    router.register("POST", f"{CLIENT_PREFIX}/keys/signatures/upload", upload_signatures)
