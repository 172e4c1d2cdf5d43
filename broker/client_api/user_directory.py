"""User directory: ``POST /user_directory/search``.

A user finds the users they share a joined room with and the members of rooms published in the
room directory, matched case-insensitively by word prefix on the user ID's localpart and the
display name (see :mod:`storage.user_directory`).
"""

from __future__ import annotations

from typing import Any

from broker.client_api import CLIENT_PREFIX
from broker.errors import InvalidInput
from broker.http.endpoint import Access, Call, Endpoints, endpoint
from broker.http.validation import optional, require
from broker.services.user_directory import UserDirectory

DEFAULT_LIMIT = 10


class UserDirectoryEndpoints(Endpoints):
    def __init__(self, directory: UserDirectory) -> None:
        self.directory = directory

    @endpoint("POST", f"{CLIENT_PREFIX}/user_directory/search", access=Access.USER)
    async def search(self, call: Call) -> tuple[int, dict[str, Any]]:
        body = call.json()
        term = require(body, "search_term", str)
        limit = optional(body, "limit", int, DEFAULT_LIMIT)
        if limit < 1:
            raise InvalidInput("'limit' must be positive")
        return 200, await self.directory.search(call.user.user_id, term, limit)
