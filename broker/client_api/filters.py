"""Filters: ``POST /user/{userId}/filter`` (upload, returns ``filter_id``) and
``GET /user/{userId}/filter/{filterId}``.

Uploads are validated against the spec's Filter schema by :mod:`broker.filtering` before they
are stored; ids are per-user integers (never starting with '{', so /sync can tell an id from
inline JSON).
"""

from __future__ import annotations

from typing import Any

from broker.client_api import CLIENT_PREFIX
from broker.errors import Forbidden
from broker.http.bodies import JsonObject
from broker.http.endpoint import Access, Call, Endpoints, endpoint
from broker.services.filters import Filters

FILTERS = f"{CLIENT_PREFIX}/user/(?P<user_id>[^/]+)/filter"


def _own(call: Call, user_id: str) -> None:
    if call.user.user_id != user_id:
        raise Forbidden("You may only use your own filters.")


class FilterEndpoints(Endpoints):
    def __init__(self, filters: Filters) -> None:
        self.filters = filters

    @endpoint("POST", FILTERS, access=Access.USER, body=JsonObject)
    async def upload(self, call: Call, user_id: str, body: dict[str, Any]
                     ) -> tuple[int, dict[str, Any]]:
        _own(call, user_id)
        return 200, {"filter_id": await self.filters.upload(user_id, body)}

    @endpoint("GET", FILTERS + "/(?P<filter_id>[^/]+)", access=Access.USER)
    async def download(self, call: Call, user_id: str, filter_id: str
                       ) -> tuple[int, dict[str, Any]]:
        _own(call, user_id)
        return 200, await self.filters.get(user_id, filter_id)
