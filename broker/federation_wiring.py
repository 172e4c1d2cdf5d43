"""Builds the node's federation parts from config: policy (allow-list and signed federation
list), the signed HTTP client, the keyring, the outbound queue, the inbound event handler and
backfill, as one :class:`Federation` the node keeps and starts and stops.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import treq.client
from twisted.internet import defer
from twisted.web.client import Agent

from broker.attestations import USER_STATUS_QUERY
from broker.federation_api.authentication import ServerAuthentication
from broker.invite_permissions import InvitePermissions
from broker.key_admin import own_verify_keys, published_old_keys
from broker.rooms.remote_events import RemoteEvents
from broker.services.federation_history import RoomHistory, VisiblePdus
from broker.services.federation_invites import InboundInvites
from broker.services.federation_knocks import KnockAnswers
from broker.services.federation_queries import (
    REQUESTER,
    ClaimLocalKeys,
    FederationQueries,
    FederationUserKeys,
    ProfileForServer,
    QueryLocalKeys,
    ServerKeys,
)
from broker.services.federation_rooms import FederationMembership
from broker.services.federation_transactions import (
    EduHandler,
    EphemeralUpdates,
    TransactionReceiver,
)
from federation.event_fetcher import RemoteFetcher
from federation.keyring import Keyring
from federation.policy import FederationPolicy, treq_fetcher
from federation.sender.sender import FederationSender
from federation.transport_client import FederationClient

if TYPE_CHECKING:
    from broker.access_policy import AccessPolicy
    from broker.admin.classes import UserClasses
    from broker.clock import Clock
    from broker.config import NodeConfig
    from broker.federation_api.public_rooms import ListPublicRooms
    from broker.node import Node
    from broker.remote_classes import RemoteClasses
    from broker.rooms.backfill import Backfiller
    from broker.rooms.service import Rooms
    from broker.rooms.state_loader import StateLoader
    from broker.streams import StreamWriter
    from broker.typing_tracker import TypingTracker
    from storage.stores import Stores

logger = logging.getLogger(__name__)

FED_SEND = "/_matrix/federation/v1/send/"


@dataclass
class Federation:
    """The node's federation parts; :meth:`start` and :meth:`stop` run their background jobs
    (the federation list refresh, the outbound queue)."""

    policy: FederationPolicy
    client: FederationClient
    keyring: Keyring
    authentication: ServerAuthentication  # who signed an inbound request
    sender: FederationSender
    state: StateLoader
    remote_events: RemoteEvents
    backfiller: Backfiller

    async def start(self) -> None:
        await self.policy.start()
        await self.sender.start()

    def stop(self) -> defer.Deferred[None]:
        self.policy.stop()
        self.sender.stop()
        return defer.ensureDeferred(self.client.close())


def build_policy(config: NodeConfig, reactor: Any, clock: Clock) -> FederationPolicy:
    """The allow-list and signed federation list (empty when federation is disabled)."""
    fed = config.federation
    list_source = fed.list_path or (fed.list_url or None)
    agent: Any = Agent(reactor)
    fetch_url = treq_fetcher(treq.client.HTTPClient(agent)) if fed.list_url else None
    return FederationPolicy(
        config.server_name, allow_list=fed.allow_list if fed.enabled else (),
        list_source=list_source if fed.enabled else None,
        authority_key=fed.list_authority_key, refresh_seconds=fed.list_refresh_seconds,
        clock=clock.time_ms, reactor=reactor, fetch_url=fetch_url,
        persist_path=config.data_dir / "federation_list.json")


@dataclass(frozen=True)
class FederationTransport:
    """The parts that carry requests between servers, built before the rooms (which queue
    their events on the sender) and needing nothing of them."""

    policy: FederationPolicy
    client: FederationClient
    keyring: Keyring
    authentication: ServerAuthentication
    sender: FederationSender


def build_transport(config: NodeConfig, reactor: Any, clock: Clock, signing_key: Any,
                    stores: Stores) -> FederationTransport:
    fed = config.federation
    policy = build_policy(config, reactor, clock)
    client = FederationClient(
        config.server_name, signing_key, reactor, clock,
        is_allowed=lambda server: policy.permits("outbound", server),
        allow_private_addresses=fed.allow_private_addresses, verify_tls=fed.verify_tls)
    keyring = Keyring(
        stores.server_keys, client, config.server_name,
        own_verify_keys(config.signing_key_path, [signing_key]), clock,
        pinned_keys=fed.pinned_keys)

    def send_transaction(destination: str, txn_id: str, body: dict[str, Any]
                         ) -> defer.Deferred[Any]:
        return defer.ensureDeferred(
            client.put_json(destination, FED_SEND + quote(txn_id, safe=""), body))

    sender = FederationSender(
        stores.federation_queue, send_transaction, config.server_name, clock, reactor,
        policy.is_allowed,
        max_queue_age_ms=config.retention.federation_queue_max_age_ms)
    return FederationTransport(policy, client, keyring, ServerAuthentication(policy, keyring),
                               sender)


def build_federation(transport: FederationTransport, stores: Stores, rooms: Rooms,
                     state: StateLoader, backfiller: Backfiller) -> Federation:
    """The transport with what accepts events from other servers into the rooms."""
    t = transport
    remote_events = RemoteEvents(rooms.writer, rooms.registry, stores.events, stores.state,
                                 state, RemoteFetcher(t.client, t.keyring))
    return Federation(t.policy, t.client, t.keyring, t.authentication, t.sender, state,
                      remote_events, backfiller)


@dataclass(frozen=True)
class LocalParts:
    """What the inbound services use of parts of the node still written against the node
    (visibility, end-to-end encryption, the client directory), bound by the composition root."""

    visible_pdus: VisiblePdus
    query_keys: QueryLocalKeys
    claim_keys: ClaimLocalKeys
    list_public_rooms: ListPublicRooms
    edu_handlers: Mapping[str, EduHandler]
    profile_for_server: ProfileForServer


@dataclass(frozen=True)
class FederationServices:
    """The services behind the Server-Server API endpoints."""

    history: RoomHistory
    membership: FederationMembership
    invites: InboundInvites
    receiver: TransactionReceiver
    queries: FederationQueries
    user_keys: FederationUserKeys
    server_keys: ServerKeys
    list_public_rooms: ListPublicRooms


def build_federation_services(config: NodeConfig, signing_key: Any, clock: Clock,
                              stores: Stores, rooms: Rooms, streams: StreamWriter,
                              typing: TypingTracker, federation: Federation,
                              access: AccessPolicy, local: LocalParts, classes: UserClasses,
                              remote_classes: RemoteClasses,
                              invite_permissions: InvitePermissions) -> FederationServices:
    name, registry, fed = config.server_name, rooms.registry, federation
    old_keys = [(k.key, k.key_id, k.expired_ts)
                for k in published_old_keys(config.signing_key_path, [signing_key])]
    edus = EphemeralUpdates(registry, typing, stores.receipts, streams, clock,
                            local.edu_handlers)
    membership = FederationMembership(name, registry, fed.keyring, fed.remote_events,
                                      fed.state, fed.sender, clock, access, remote_classes)
    # The policy's say on memberships holds for events pushed in transactions too.
    fed.remote_events.admits = membership.admits
    return FederationServices(
        history=RoomHistory(registry, stores.events, stores.state, fed.state,
                            local.visible_pdus),
        membership=membership,
        invites=InboundInvites(name, signing_key, fed.keyring, stores.users, registry,
                               stores.remote_invites, stores.remote_knocks, streams, access,
                               remote_classes, invite_permissions.ignores),
        receiver=TransactionReceiver(name, registry, stores.state, fed.keyring, fed.policy,
                                     fed.remote_events, fed.sender, edus,
                                     KnockAnswers(name, fed.keyring, stores.remote_knocks,
                                                  streams)),
        queries=FederationQueries(name, stores.aliases, local.profile_for_server, registry,
                                  access, classes, remote_classes),
        user_keys=FederationUserKeys(name, stores.device_keys, local.query_keys,
                                     local.claim_keys),
        server_keys=ServerKeys(name, signing_key, old_keys, clock, fed.keyring),
        list_public_rooms=local.list_public_rooms,
    )


# How long a client's profile read waits for another server's answer.
PROFILE_QUERY_SECONDS = 10.0


def ask_user_status(client: FederationClient, server: str, user_id: str) -> Any:
    """Ask ``server`` what it attests of its user (the ``in.gov.broker.user_status`` query);
    a coroutine of the answer's body."""
    return client.get_json(server, f"/_matrix/federation/v1/query/{USER_STATUS_QUERY}",
                           args={"user_id": user_id})


def ask_profile(client: FederationClient, server: str, user_id: str, reader: str) -> Any:
    """Ask ``server`` for its user's profile (the profile query) as ``reader`` sees it (a
    local user, named in the node's own parameter, which other servers ignore; "" names
    nobody); a coroutine of the answer's body."""
    args = {"user_id": user_id, **({REQUESTER: reader} if reader else {})}
    return client.get_json(server, "/_matrix/federation/v1/query/profile", args=args,
                           timeout=PROFILE_QUERY_SECONDS)


def local_parts(node: Node) -> LocalParts:
    """The functions :class:`LocalParts` holds: end-to-end encryption's bound to its context,
    visibility's and the client directory's still to the node (each goes when its area offers
    a service of its own)."""
    from broker.apps import delivery_reports
    from broker.client_api.directory import with_anchor
    from broker.e2ee import cross_signing, device_lists, keys, to_device

    e2ee = node.e2ee

    async def query_keys(query: Mapping[str, list[str]]) -> dict[str, Any]:
        return await keys.query_local_keys(e2ee, query, viewer=None, over_federation=True)

    return LocalParts(
        visible_pdus=node.visibility.pdus_for_server,
        query_keys=query_keys,
        claim_keys=partial(keys.claim_local_keys, e2ee),
        list_public_rooms=lambda query: node.directory.public_rooms(with_anchor(query)),
        edu_handlers={
            device_lists.EDU_TYPE: partial(device_lists.on_device_list_update_edu, e2ee),
            to_device.EDU_TYPE: partial(to_device.on_direct_to_device_edu, e2ee),
            "m.signing_key_update": partial(cross_signing.on_signing_key_update, e2ee),
            delivery_reports.EDU_TYPE: node.delivery.reports.received,  # app messages
        },
        profile_for_server=node.profiles.shown,
    )
