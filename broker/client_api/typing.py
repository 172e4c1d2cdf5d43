"""Typing notifications: ``PUT /rooms/{roomId}/typing/{userId}``.

Only for yourself, only in rooms you are joined to.  The state is held in memory (expiring after
``timeout`` ms, at most two minutes) and reaches the room's members through /sync as the
``m.typing`` ephemeral event (see :mod:`broker.services.typing`).
"""

from __future__ import annotations

from typing import Any

from broker.client_api import CLIENT_PREFIX
from broker.http.bodies import Body
from broker.http.endpoint import Access, Call, Endpoints, endpoint
from broker.services.typing import Typing

DEFAULT_TIMEOUT_MS = 30_000


class TypingBody(Body):
    typing: bool
    timeout: int = DEFAULT_TIMEOUT_MS


class TypingEndpoints(Endpoints):
    def __init__(self, typing: Typing) -> None:
        self.typing = typing

    @endpoint("PUT", f"{CLIENT_PREFIX}/rooms/(?P<room_id>[^/]+)/typing/(?P<user_id>[^/]+)",
              access=Access.USER, body=TypingBody)
    async def put_typing(self, call: Call, room_id: str, user_id: str, body: TypingBody
                         ) -> tuple[int, dict[str, Any]]:
        await self.typing.set_typing(call.user.user_id, room_id, user_id, body.typing,
                                     body.timeout)
        return 200, {}
