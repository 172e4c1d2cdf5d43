"""``/_broker/admin/v1/organisations/{org_id}/image_packs``: an organisation's image packs
(MSC2545), published to its members."""

from __future__ import annotations

from typing import Any

from broker.admin import permissions
from broker.admin.audit import AuditLog
from broker.admin_api.calls import AdminEndpoints
from broker.admin_api.organisations import ONE as ORGANISATION
from broker.http.bodies import JsonObject
from broker.http.endpoint import Access, Call, endpoint
from broker.image_packs import ImagePacks

PACKS = f"{ORGANISATION}/image_packs"
PACK = f"{PACKS}/(?P<pack_id>[^/]+)"


class ImagePackEndpoints(AdminEndpoints):
    BODY_ACTIONS = {"put": (permissions.IMAGE_PACKS_CHANGE, "org_id")}

    def __init__(self, packs: ImagePacks, audit: AuditLog) -> None:
        super().__init__(audit)
        self.packs = packs

    @endpoint("GET", PACKS, access=Access.USER)
    async def list(self, call: Call, org_id: str) -> tuple[int, dict[str, Any]]:
        return 200, await self.packs.list(self.actor(call), org_id)

    @endpoint("GET", PACK, access=Access.USER)
    async def get(self, call: Call, org_id: str, pack_id: str) -> tuple[int, dict[str, Any]]:
        return 200, await self.packs.get(self.actor(call), org_id, pack_id)

    @endpoint("PUT", PACK, access=Access.USER, body=JsonObject)
    async def put(self, call: Call, org_id: str, pack_id: str, body: dict[str, Any]
                  ) -> tuple[int, dict[str, Any]]:
        new, pack = await self.packs.put(self.actor(call), org_id, pack_id, body)
        return (201 if new else 200), pack

    @endpoint("DELETE", PACK, access=Access.USER)
    async def delete(self, call: Call, org_id: str, pack_id: str
                     ) -> tuple[int, dict[str, Any]]:
        await self.packs.delete(self.actor(call), org_id, pack_id)
        return 200, {}
