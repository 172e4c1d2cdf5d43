"""User directory: ``POST /user_directory/search``.

A user finds the users they share a joined room with and the members of rooms published in the
room directory, matched case-insensitively by word prefix on the user ID's localpart and the
display name (see :mod:`storage.user_directory`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from twisted.web.http import Request

from broker.client_api import CLIENT_PREFIX
from broker.http.errors import bad_param
from broker.http.parsing import parse_json_body
from broker.http.validation import optional, require

if TYPE_CHECKING:
    from broker.http.server import Router
    from broker.node import Node

DEFAULT_LIMIT = 10
MAX_LIMIT = 1000


def register_servlets(node: Node, router: Router) -> None:
    async def search(request: Request) -> tuple[int, dict[str, Any]]:
        requester = await node.auth.get_requester(request)
        body = parse_json_body(request)
        term = require(body, "search_term", str)
        limit = optional(body, "limit", int, DEFAULT_LIMIT)
        if limit < 1:
            raise bad_param("'limit' must be positive")
        users, limited = await node.stores.user_directory.search_users(
            requester.user_id, term, min(limit, MAX_LIMIT))
        return 200, {"results": [user.to_json() for user in users], "limited": limited}

    router.register("POST", f"{CLIENT_PREFIX}/user_directory/search", search)
