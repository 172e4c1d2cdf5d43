"""Room tags: ``GET /user/{userId}/rooms/{roomId}/tags`` and ``PUT/DELETE .../tags/{tag}``.

Tags are stored as the room's ``m.tag`` account data (``{"tags": {tag: {"order": 0..1}}}``), so
/sync delivers them in the room's ``account_data``; every change takes a stream id.
"""

from __future__ import annotations

from typing import Any

from broker.client_api import CLIENT_PREFIX
from broker.client_api.account_data import require_self
from broker.http.bodies import JsonObject
from broker.http.endpoint import Access, Call, Endpoints, endpoint
from broker.services.account_data import AccountData

TAGS = f"{CLIENT_PREFIX}/user/(?P<user_id>[^/]+)/rooms/(?P<room_id>[^/]+)/tags"
TAG = TAGS + "/(?P<tag>[^/]+)"


class TagEndpoints(Endpoints):
    def __init__(self, account_data: AccountData) -> None:
        self.account_data = account_data

    @endpoint("GET", TAGS, access=Access.USER)
    async def get_tags(self, call: Call, user_id: str, room_id: str
                       ) -> tuple[int, dict[str, Any]]:
        require_self(call, user_id)
        return 200, {"tags": await self.account_data.tags(user_id, room_id)}

    @endpoint("PUT", TAG, access=Access.USER, body=JsonObject)
    async def put_tag(self, call: Call, user_id: str, room_id: str, tag: str,
                      body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        require_self(call, user_id)
        await self.account_data.set_tag(user_id, room_id, tag, body)
        return 200, {}

    @endpoint("DELETE", TAG, access=Access.USER)
    async def delete_tag(self, call: Call, user_id: str, room_id: str, tag: str
                         ) -> tuple[int, dict[str, Any]]:
        require_self(call, user_id)
        await self.account_data.remove_tag(user_id, room_id, tag)
        return 200, {}
