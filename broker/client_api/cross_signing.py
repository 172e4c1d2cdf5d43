"""Cross-signing uploads: ``POST /keys/device_signing/upload`` and ``POST /keys/signatures/upload``.

Uploading cross-signing keys needs user-interactive auth with ``m.login.password``, except when
the user has no master key yet or the request holds no new key (the spec's exceptions, as in
Synapse).  Validation happens before the UIA challenge, so a malformed upload is refused at once.
The checks and storage live in :mod:`broker.e2ee.cross_signing`.
"""

from __future__ import annotations

from typing import Any

from broker.client_api import CLIENT_PREFIX
from broker.client_api.uia import PASSWORD, AuthenticatedBody, UserInteractiveAuth
from broker.http.bodies import JsonObject
from broker.http.endpoint import Access, Call, Endpoints, endpoint
from broker.services.e2ee import EndToEndKeys

UPLOAD_FLOWS = [[PASSWORD]]


class CrossSigningEndpoints(Endpoints):
    def __init__(self, keys: EndToEndKeys, uia: UserInteractiveAuth) -> None:
        self.keys = keys
        self.uia = uia

    @endpoint("POST", f"{CLIENT_PREFIX}/keys/device_signing/upload", access=Access.USER,
              body=AuthenticatedBody)
    async def upload_keys(self, call: Call, body: AuthenticatedBody
                          ) -> tuple[int, dict[str, Any]]:
        user_id = call.user.user_id
        upload = await self.keys.check_signing_keys(user_id, body.source)
        if upload.needs_auth:
            await self.uia.check(call.request, body.auth, UPLOAD_FLOWS, requester=call.user)
        if await self.keys.store_signing_keys(upload, authenticated=upload.needs_auth):
            return 200, {}
        # A concurrent upload stored a master key between the check and the write of this
        # one, which skipped UIA: now it needs it.
        await self.uia.check(call.request, body.auth, UPLOAD_FLOWS, requester=call.user)
        upload = await self.keys.check_signing_keys(user_id, body.source)
        await self.keys.store_signing_keys(upload, authenticated=True)
        return 200, {}

    @endpoint("POST", f"{CLIENT_PREFIX}/keys/signatures/upload", access=Access.USER,
              body=JsonObject)
    async def upload_signatures(self, call: Call, body: dict[str, Any]
                                ) -> tuple[int, dict[str, Any]]:
        return 200, await self.keys.upload_signatures(call.user.user_id, body)
