"""User directory: ``POST /user_directory/search``.

A user finds the users they share a joined room with and the members of rooms published in the
room directory, matched case-insensitively by word prefix on the user ID's localpart and the
display name (see :mod:`storage.user_directory`).
"""

from __future__ import annotations

from typing import Annotated, Any

from annotated_types import Ge

from broker.client_api import CLIENT_PREFIX
from broker.http.bodies import Body
from broker.http.endpoint import Access, Call, Endpoints, endpoint
from broker.services.user_directory import UserDirectory

DEFAULT_LIMIT = 10


class Search(Body):
    search_term: str
    limit: Annotated[int, Ge(1)] = DEFAULT_LIMIT


class UserDirectoryEndpoints(Endpoints):
    def __init__(self, directory: UserDirectory) -> None:
        self.directory = directory

    @endpoint("POST", f"{CLIENT_PREFIX}/user_directory/search", access=Access.USER,
              body=Search)
    async def search(self, call: Call, body: Search) -> tuple[int, dict[str, Any]]:
        return 200, await self.directory.search(call.user.user_id, body.search_term, body.limit)
