"""The Server-Server API: one module per area, each declaring an :class:`Endpoints` group.

:func:`federation_endpoints` is the list the node serves when federation is enabled, in order;
each group gets the services it needs (built once by
:func:`broker.federation_wiring.build_federation_services`) and nothing else.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from broker.federation_wiring import FederationServices
    from broker.http.endpoint import Endpoints

FED_V1 = "/_matrix/federation/v1"
FED_V2 = "/_matrix/federation/v2"
KEY_V2 = "/_matrix/key/v2"


def federation_endpoints(services: FederationServices, server_name: str,
                         clock: Any) -> list[Endpoints]:
    from broker.federation_api.events import RoomHistoryEndpoints
    from broker.federation_api.invites import InviteEndpoints
    from broker.federation_api.keys import KeyEndpoints
    from broker.federation_api.membership import MembershipEndpoints
    from broker.federation_api.public_rooms import PublicRoomsEndpoints
    from broker.federation_api.query import QueryEndpoints, VersionEndpoints
    from broker.federation_api.transactions import TransactionEndpoints
    from broker.federation_api.user_keys import UserKeyEndpoints

    return [
        # -- rooms: history, invites, joins and leaves, the directory --
        RoomHistoryEndpoints(services.history, server_name, clock),
        InviteEndpoints(services.invites),
        MembershipEndpoints(services.membership),
        PublicRoomsEndpoints(services.list_public_rooms),
        # -- keys: ours and the notary's, users' device keys --
        KeyEndpoints(services.server_keys),
        UserKeyEndpoints(services.user_keys),
        # -- queries, pushed transactions, version --
        QueryEndpoints(services.queries),
        TransactionEndpoints(services.receiver),
        VersionEndpoints(),
    ]
