"""Building the eGov applications' services once, for the composition root
(:mod:`broker.node`), from what the node has built before them (the notice rooms and the
delivery status)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from broker.apps.callback_urls import check_callback_url
from broker.apps.groups import AppGroups, GroupDeps
from broker.apps.recipients import Recipients
from broker.apps.registry import Apps
from broker.apps.sending import AppMessages, SendingDeps
from storage.apps import AppStore

if TYPE_CHECKING:
    from broker.node import Node


@dataclass
class AppServices:
    registry: Apps
    messages: AppMessages
    groups: AppGroups

    async def start(self) -> None:
        """Load what the application API answers from memory (call in ``Node.start``)."""
        await self.registry.load()

    async def resume(self) -> None:
        """Send what was accepted before the last stop and never sent (call in
        ``Node.start`` once the delivery status is loaded)."""
        await self.messages.resume(self.registry.app)


def build_apps(node: Node) -> AppServices:
    """The apps' services over the node's stores and services."""
    admin, config = node.admin, node.config
    allow_private = config.apps.allow_private_callbacks

    async def check_url(url: str) -> None:
        await check_callback_url(url, allow_private)

    store = AppStore(node.db)
    registry = Apps(store, node.stores.accounts, admin.authority, admin.audit, admin.classes,
                    admin.reachability, node.clock, node.server_name, check_url)
    admin.changes.listen(registry.changes_seen)  # apps changed by a command
    federation = node.federation.policy.is_allowed if config.federation.enabled else None
    recipients = Recipients(store, node.server_name,
                            federation or (lambda server: False), node.clock.time)
    node.admin.accounts.on_moved(recipients.forget)
    messages = AppMessages(SendingDeps(
        node.server_name, store, recipients, node.notice_rooms, node.rooms,
        node.delivery.tracker, node.policy, node.message_tags, node.ratelimiter,
        node.stores.media, node.clock))
    groups = AppGroups(GroupDeps(node.server_name, store, recipients, node.room_creation,
                                 node.membership, node.rooms, node.message_tags, node.clock))
    return AppServices(registry, messages, groups)
