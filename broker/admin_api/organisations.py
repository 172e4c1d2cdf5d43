"""``/_broker/admin/v1/organisations``: the tree, and one organisation at a time."""

from __future__ import annotations

from typing import Any

from broker.admin import permissions
from broker.admin.audit import AuditLog
from broker.admin.model import organisation_json
from broker.admin.organisations import Organisations
from broker.admin_api import ADMIN_PREFIX
from broker.admin_api.calls import AdminEndpoints
from broker.http.bodies import JsonObject
from broker.http.endpoint import Access, Call, endpoint

ORGANISATIONS = f"{ADMIN_PREFIX}/organisations"
ONE = f"{ORGANISATIONS}/(?P<org_id>[^/]+)"


class OrganisationEndpoints(AdminEndpoints):
    BODY_ACTIONS = {"create": (permissions.ORG_CREATE, ""),
                    "update": (permissions.ORG_UPDATE, "org_id")}

    def __init__(self, organisations: Organisations, audit: AuditLog) -> None:
        super().__init__(audit)
        self.organisations = organisations

    @endpoint("POST", ORGANISATIONS, access=Access.USER, body=JsonObject)
    async def create(self, call: Call, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        org = await self.organisations.create(self.actor(call), body)
        return 201, organisation_json(org)

    @endpoint("GET", ORGANISATIONS, access=Access.USER)
    async def tree(self, call: Call) -> tuple[int, dict[str, Any]]:
        return 200, {"organisations": await self.organisations.tree(self.actor(call))}

    @endpoint("GET", ONE, access=Access.USER)
    async def get(self, call: Call, org_id: str) -> tuple[int, dict[str, Any]]:
        org, children = await self.organisations.get(self.actor(call), org_id)
        return 200, {**organisation_json(org), "children": children}

    @endpoint("PATCH", ONE, access=Access.USER, body=JsonObject)
    async def update(self, call: Call, org_id: str, body: dict[str, Any]
                     ) -> tuple[int, dict[str, Any]]:
        return 200, organisation_json(
            await self.organisations.update(self.actor(call), org_id, body))

    @endpoint("DELETE", ONE, access=Access.USER)
    async def delete(self, call: Call, org_id: str) -> tuple[int, dict[str, Any]]:
        await self.organisations.delete(self.actor(call), org_id)
        return 200, {}
