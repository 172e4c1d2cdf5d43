"""Sending and reading room events: send (idempotent per transaction ID), state get/put,
event by ID, redact, members and joined_members."""

from __future__ import annotations

from typing import Any

from broker.client_api import CLIENT_PREFIX
from broker.http.bodies import Body, JsonObject
from broker.http.endpoint import Access, Call, Endpoints, endpoint
from broker.services.room_events import RoomEvents

ROOM = f"{CLIENT_PREFIX}/rooms/(?P<room_id>[^/]+)"
STATE = ROOM + "/state/(?P<event_type>[^/]+)"
STATE_KEY = STATE + "/(?P<state_key>.*)"
Reply = tuple[int, Any]


class Redaction(Body):
    reason: str | None = None


class RoomEventEndpoints(Endpoints):
    def __init__(self, room_events: RoomEvents) -> None:
        self.room_events = room_events

    @endpoint("PUT", ROOM + "/send/(?P<event_type>[^/]+)/(?P<txn_id>[^/]+)",
              access=Access.USER, rate_limit="messages", body=JsonObject)
    async def send(self, call: Call, room_id: str, event_type: str, txn_id: str,
                   body: dict[str, Any]) -> Reply:
        event_id = await self.room_events.send(call.user.user_id, call.user.device_id, room_id,
                                               event_type, body, txn_id)
        return 200, {"event_id": event_id}

    @endpoint("PUT", ROOM + "/redact/(?P<event_id>[^/]+)/(?P<txn_id>[^/]+)",
              access=Access.USER, rate_limit="messages", body=Redaction, body_optional=True)
    async def redact(self, call: Call, room_id: str, event_id: str, txn_id: str,
                     body: Redaction) -> Reply:
        redaction_id = await self.room_events.redact(call.user.user_id, call.user.device_id,
                                                     room_id, event_id, body.reason, txn_id)
        return 200, {"event_id": redaction_id}

    @endpoint("PUT", STATE, access=Access.USER, rate_limit="messages", body=JsonObject)
    @endpoint("PUT", STATE_KEY, access=Access.USER, rate_limit="messages", body=JsonObject)
    async def put_state(self, call: Call, room_id: str, event_type: str, body: dict[str, Any],
                        state_key: str = "") -> Reply:
        event_id = await self.room_events.put_state(call.user.user_id, room_id, event_type,
                                                    state_key, body)
        return 200, {"event_id": event_id}

    @endpoint("GET", ROOM + "/state", access=Access.USER)
    async def get_state(self, call: Call, room_id: str) -> Reply:
        return 200, await self.room_events.room_state(call.user.user_id, room_id)

    @endpoint("GET", STATE, access=Access.USER)
    @endpoint("GET", STATE_KEY, access=Access.USER)
    async def get_state_event(self, call: Call, room_id: str, event_type: str,
                              state_key: str = "") -> Reply:
        return 200, await self.room_events.state_event(
            call.user.user_id, room_id, event_type, state_key,
            as_event=call.arg("format") == "event")

    @endpoint("GET", ROOM + "/event/(?P<event_id>[^/]+)", access=Access.USER)
    async def get_event(self, call: Call, room_id: str, event_id: str) -> Reply:
        return 200, await self.room_events.event(call.user.user_id, call.user.device_id,
                                                 room_id, event_id)

    @endpoint("GET", ROOM + "/members", access=Access.USER)
    async def members(self, call: Call, room_id: str) -> Reply:
        chunk = await self.room_events.members(call.user.user_id, room_id,
                                               call.arg("membership"), call.arg("not_membership"))
        return 200, {"chunk": chunk}

    @endpoint("GET", ROOM + "/joined_members", access=Access.USER)
    async def joined_members(self, call: Call, room_id: str) -> Reply:
        return 200, {"joined": await self.room_events.joined_members(call.user.user_id, room_id)}
