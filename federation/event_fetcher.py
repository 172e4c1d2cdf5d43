"""Fetching events a room is missing from another server, and verifying them.

The room logic asks for the gap between its forward extremities and a new event
(``get_missing_events``) and for an event's auth chain (``event_auth``); everything returned is
checked with :func:`protocol.pdu_checks.check_pdu` before it is handed back.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol
from urllib.parse import quote

from protocol.events import Event
from protocol.pdu_checks import PduRejected, SignatureChecker, check_pdu
from protocol.room_versions import RoomVersion

logger = logging.getLogger(__name__)

FED_V1 = "/_matrix/federation/v1"


class JsonClient(Protocol):
    async def get_json(self, destination: str, path: str,
                       args: dict[str, Any] | None = None) -> Any: ...

    async def post_json(self, destination: str, path: str, body: Any) -> Any: ...


class RoomLike(Protocol):
    room_id: str
    room_version: RoomVersion
    extremities: list[str]


async def verified_events(keyring: SignatureChecker, pdus: Any, room_version: RoomVersion,
                          room_id: str) -> list[Event]:
    """The PDUs of a peer's answer that pass their checks and belong to ``room_id``; the
    others are logged and left out."""
    events: list[Event] = []
    for pdu in pdus if isinstance(pdus, list) else []:
        try:
            event = await check_pdu(keyring, pdu, room_version)
        except PduRejected as e:
            logger.info("ignoring fetched event: %s", e)
            continue
        if event.room_id == room_id:
            events.append(event)
    return events


class RemoteFetcher:
    def __init__(self, client: JsonClient, keyring: SignatureChecker) -> None:
        self.client = client
        self.keyring = keyring

    async def _checked(self, pdus: Any, room_version: RoomVersion, room_id: str) -> list[Event]:
        return await verified_events(self.keyring, pdus, room_version, room_id)

    async def get_missing_events(self, origin: str, room: RoomLike, event: Event, *,
                                 limit: int) -> list[Event]:
        body = await self.client.post_json(
            origin, f"{FED_V1}/get_missing_events/{quote(room.room_id)}",
            {"earliest_events": room.extremities, "latest_events": [event.event_id],
             "limit": limit, "min_depth": 0})
        return await self._checked(body.get("events"), room.room_version, room.room_id)

    async def fetch_auth_chain(self, origin: str, event: Event) -> list[Event]:
        body = await self.client.get_json(
            origin, f"{FED_V1}/event_auth/{quote(event.room_id)}/{quote(event.event_id)}")
        return await self._checked(body.get("auth_chain"), event.room_version, event.room_id)

    async def fetch_state(self, origin: str, room: RoomLike, event_id: str
                          ) -> tuple[list[Event], list[Event]]:
        """The state before ``event_id`` and its auth chain, as ``origin`` holds them."""
        body = await self.client.get_json(
            origin, f"{FED_V1}/state/{quote(room.room_id)}", {"event_id": event_id})
        state = await self._checked(body.get("pdus"), room.room_version, room.room_id)
        chain = await self._checked(body.get("auth_chain"), room.room_version, room.room_id)
        return state, chain

    async def fetch_event(self, origin: str, event_id: str, room_version: RoomVersion,
                          room_id: str) -> Event | None:
        body = await self.client.get_json(origin, f"{FED_V1}/event/{quote(event_id)}")
        events = await self._checked(body.get("pdus"), room_version, room_id)
        return next((e for e in events if e.event_id == event_id), None)
