"""Building the application services' pusher from the node's parts, and hooking it to what
it is told of: durable events, typing, receipts and to-device deliveries."""

from __future__ import annotations

from typing import TYPE_CHECKING

from broker.appservice.interest import Interest
from broker.appservice.pusher import AppServicePusher
from broker.appservice.queue import ServiceQueue
from broker.metrics import AppServiceGauges
from storage.appservice import AppServiceStore

if TYPE_CHECKING:
    from broker.node import Node


def build_pusher(node: Node) -> AppServicePusher:
    """A queue per configured service, and the queries asked of them (none configured:
    nothing is hooked, nothing costs)."""
    assert node.stream is not None
    store = AppServiceStore(node.db)
    interest = Interest(node.rooms.registry.get)
    queues = [ServiceQueue(service, node.app_service_client, store, interest,
                           node.client_events.serialize, node.clock, node.stream.current_token)
              for service in node.app_services.registrations]
    pusher = AppServicePusher(queues, interest)
    if queues:  # before "unknown", the services are asked about their users and aliases
        node.aliases.ask_unknown = node.app_services.ask_for_alias
        node.aliases.check_claim = node.app_services.refuse_exclusive_alias
        node.membership.ask_unknown_user = node.app_services.ask_for_user
        node.profiles.ask_unknown_user = node.app_services.ask_for_user
        node.room_creation.before_invites = node.app_services.ask_for_invitees
        node.rooms.persisted_listeners.append(pusher.events_persisted)
        node.typing.listeners.append(pusher.typing_changed)
        node.receipts.listeners.append(pusher.receipt_set)
        node.to_device.delivered_listeners.append(pusher.to_device_delivered)
        if node.config.metrics is not None:
            node.metrics.watch(AppServiceGauges(pusher))
    return pusher
