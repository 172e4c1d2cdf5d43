"""``PUT /_matrix/federation/v2/invite/{roomId}/{eventId}``: another server invites one of our
users (the rules are those of :mod:`broker.services.federation_invites`)."""

from __future__ import annotations

from typing import Any

from broker.federation_api import FED_V2
from broker.http.bodies import JsonObject
from broker.http.endpoint import Access, Call, Endpoints, endpoint
from broker.services.federation_invites import InboundInvites


class InviteEndpoints(Endpoints):
    def __init__(self, invites: InboundInvites) -> None:
        self.invites = invites

    @endpoint("PUT", f"{FED_V2}/invite/(?P<room_id>[^/]+)/(?P<event_id>[^/]+)",
              access=Access.SERVER, body=JsonObject)
    async def invite(self, call: Call, room_id: str, event_id: str, body: dict[str, Any]
                     ) -> tuple[int, Any]:
        pdu = await self.invites.receive(call.server, room_id, event_id, body)
        return 200, {"event": pdu}
