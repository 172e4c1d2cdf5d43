"""Account data: ``GET/PUT /user/{userId}/account_data/{type}`` and the per-room variant
``/user/{userId}/rooms/{roomId}/account_data/{type}``.

Only the owner may read or write; each write takes a stream id so /sync delivers it.  Types the
server controls (``m.fully_read``, set with read markers; ``m.push_rules``, set through
/pushrules) are refused with 405 ``M_BAD_JSON``, as the spec says.  Reading ``m.push_rules``
answers the user's current ruleset, also before any rule was changed.
"""

from __future__ import annotations

from typing import Any

from broker.client_api import CLIENT_PREFIX
from broker.errors import Forbidden
from broker.http.bodies import JsonObject
from broker.http.endpoint import Access, Call, Endpoints, endpoint
from broker.http.errors import MatrixError
from broker.services.account_data import AccountData
from storage.account_data import GLOBAL

SERVER_CONTROLLED_TYPES = frozenset({"m.fully_read", "m.push_rules"})

GLOBAL_PATH = f"{CLIENT_PREFIX}/user/(?P<user_id>[^/]+)/account_data/(?P<data_type>[^/]+)"
ROOM_PATH = (f"{CLIENT_PREFIX}/user/(?P<user_id>[^/]+)/rooms/(?P<room_id>[^/]+)"
             "/account_data/(?P<data_type>[^/]+)")


def require_self(call: Call, user_id: str) -> None:
    """Only the owner may reach ``user_id``'s data (403 ``M_FORBIDDEN`` otherwise)."""
    if call.user.user_id != user_id:
        raise Forbidden("You may only access your own account data.")


class AccountDataEndpoints(Endpoints):
    def __init__(self, account_data: AccountData) -> None:
        self.account_data = account_data

    @endpoint("GET", GLOBAL_PATH, access=Access.USER)
    @endpoint("GET", ROOM_PATH, access=Access.USER)
    async def read(self, call: Call, user_id: str, data_type: str,
                   room_id: str = GLOBAL) -> tuple[int, dict[str, Any]]:
        require_self(call, user_id)
        return 200, await self.account_data.get(user_id, room_id, data_type)

    @endpoint("PUT", GLOBAL_PATH, access=Access.USER, body=JsonObject)
    @endpoint("PUT", ROOM_PATH, access=Access.USER, body=JsonObject)
    async def write(self, call: Call, user_id: str, data_type: str, body: dict[str, Any],
                    room_id: str = GLOBAL) -> tuple[int, dict[str, Any]]:
        require_self(call, user_id)
        if data_type in SERVER_CONTROLLED_TYPES:
            raise MatrixError(405, "M_BAD_JSON", f"Cannot set {data_type} through this API.")
        await self.account_data.set(user_id, room_id, data_type, body)
        return 200, {}
