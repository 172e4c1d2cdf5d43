"""Queries other servers make about local things: room aliases, profiles, what this node
attests of its users, and our version."""

from __future__ import annotations

import re
from typing import Any

from broker.attestations import USER_STATUS_QUERY
from broker.federation_api import FED_V1
from broker.http.endpoint import Access, Call, Endpoints, endpoint
from broker.services.federation_queries import REQUESTER, FederationQueries

VERSION = "0.1.0"


class QueryEndpoints(Endpoints):
    def __init__(self, queries: FederationQueries) -> None:
        self.queries = queries

    @endpoint("GET", f"{FED_V1}/query/directory", access=Access.SERVER)
    async def directory(self, call: Call) -> tuple[int, Any]:
        return 200, await self.queries.directory(call.arg("room_alias"))

    @endpoint("GET", f"{FED_V1}/query/profile", access=Access.SERVER)
    async def profile(self, call: Call) -> tuple[int, Any]:
        return 200, await self.queries.profile(call.server, call.arg("user_id"),
                                                call.arg("field"), call.arg(REQUESTER))

    @endpoint("GET", f"{FED_V1}/query/{re.escape(USER_STATUS_QUERY)}", access=Access.SERVER)
    async def user_status(self, call: Call) -> tuple[int, Any]:
        return 200, await self.queries.user_status(call.arg("user_id"))


class VersionEndpoints(Endpoints):
    @endpoint("GET", f"{FED_V1}/version", access=Access.PUBLIC)
    async def version(self, call: Call) -> tuple[int, dict[str, Any]]:
        return 200, {"server": {"name": "gov-broker", "version": VERSION}}
