"""Builds the node's federation parts from config: policy (allow-list and signed federation
list), the signed HTTP client, the keyring, the outbound queue and the inbound event handler.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import treq.client
from twisted.internet import defer
from twisted.web.client import Agent

from broker.key_admin import own_verify_keys
from broker.rooms.backfill import Backfiller
from broker.rooms.remote_events import RemoteEvents
from broker.rooms.state_loader import StateLoader
from federation.event_fetcher import RemoteFetcher
from federation.keyring import Keyring
from federation.policy import FederationPolicy, treq_fetcher
from federation.sender.sender import FederationSender
from federation.transport_client import FederationClient

if TYPE_CHECKING:
    from broker.node import Node

logger = logging.getLogger(__name__)

FED_SEND = "/_matrix/federation/v1/send/"


def build_federation(node: Node) -> None:
    """Attach federation_policy, federation_client, keyring, federation_sender and
    remote_events to ``node``."""
    config = node.config
    fed = config.federation
    list_source = fed.list_path or (fed.list_url or None)
    agent: Any = Agent(node.reactor)
    fetch_url = treq_fetcher(treq.client.HTTPClient(agent)) if fed.list_url else None
    policy = FederationPolicy(
        config.server_name, allow_list=fed.allow_list if fed.enabled else (),
        list_source=list_source if fed.enabled else None,
        authority_key=fed.list_authority_key, refresh_seconds=fed.list_refresh_seconds,
        clock=node.clock.time_ms, reactor=node.reactor, fetch_url=fetch_url,
        persist_path=config.data_dir / "federation_list.json")
    node.federation_policy = policy
    client = FederationClient(
        config.server_name, node.signing_key, node.reactor, node.clock,
        is_allowed=lambda server: policy.permits("outbound", server),
        allow_private_addresses=fed.allow_private_addresses, verify_tls=fed.verify_tls)
    node.federation_client = client
    node.keyring = Keyring(
        node.stores.server_keys, client, config.server_name,
        own_verify_keys(config.signing_key_path, [node.signing_key]), node.clock,
        pinned_keys=fed.pinned_keys)

    def send_transaction(destination: str, txn_id: str, body: dict[str, Any]
                         ) -> defer.Deferred[Any]:
        return defer.ensureDeferred(
            client.put_json(destination, FED_SEND + quote(txn_id, safe=""), body))

    node.federation_sender = FederationSender(
        node.stores.federation_queue, send_transaction, config.server_name, node.clock,
        node.reactor, policy.is_allowed)
    node.remote_events = RemoteEvents(
        node.rooms.writer, node.rooms.registry, node.stores.events, node.stores.state,
        StateLoader(node), RemoteFetcher(client, node.keyring))
    node.backfiller = Backfiller(node)


async def start_federation(node: Node) -> None:
    await node.federation_policy.start()
    await node.federation_sender.start()


def stop_federation(node: Node) -> defer.Deferred[None]:
    node.federation_policy.stop()
    node.federation_sender.stop()
    return defer.ensureDeferred(node.federation_client.close())
