"""Filters: ``POST /user/{userId}/filter`` (upload, returns ``filter_id``) and
``GET /user/{userId}/filter/{filterId}``.

Uploads are validated against the spec's Filter schema by :mod:`broker.filtering` before they
are stored; ids are per-user integers (never starting with '{', so /sync can tell an id from
inline JSON).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from twisted.web.http import Request

from broker.client_api import CLIENT_PREFIX
from broker.filtering import FILTER_ID, Filter
from broker.http.errors import forbidden, not_found
from broker.http.parsing import parse_json_body

if TYPE_CHECKING:
    from broker.http.server import Router
    from broker.node import Node


def register_servlets(node: Node, router: Router) -> None:
    store = node.stores.filters

    async def _own(request: Request, user_id: str) -> None:
        requester = await node.auth.get_requester(request)
        if requester.user_id != user_id:
            raise forbidden("You may only use your own filters.")

    async def upload(request: Request, user_id: str) -> tuple[int, dict[str, Any]]:
        await _own(request, user_id)
        body = parse_json_body(request)
        Filter.from_json(body)
        filter_id = await store.add_filter(user_id, body)
        return 200, {"filter_id": str(filter_id)}

    async def download(request: Request, user_id: str, filter_id: str
                       ) -> tuple[int, dict[str, Any]]:
        await _own(request, user_id)
        stored = (await store.get_filter(user_id, int(filter_id))
                  if FILTER_ID.fullmatch(filter_id) else None)
        if stored is None:
            raise not_found("No such filter.")
        return 200, stored

    base = f"{CLIENT_PREFIX}/user/(?P<user_id>[^/]+)/filter"
    router.register("POST", base, upload)
    router.register("GET", base + "/(?P<filter_id>[^/]+)", download)
