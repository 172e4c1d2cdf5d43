"""Building the eGov applications' services once, for the composition root
(:mod:`broker.node`), from what the node has built before them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from broker.apps.callback_urls import check_callback_url
from broker.apps.registry import Apps
from storage.apps import AppStore

if TYPE_CHECKING:
    from broker.node import Node


@dataclass
class AppServices:
    registry: Apps

    async def start(self) -> None:
        """Load what the application API answers from memory (call in ``Node.start``)."""
        await self.registry.load()


def build_apps(node: Node) -> AppServices:
    """The apps' services over the node's stores and services (after the admin services)."""
    admin, config = node.admin, node.config
    allow_private = config.apps.allow_private_callbacks

    async def check_url(url: str) -> None:
        await check_callback_url(url, allow_private)

    registry = Apps(AppStore(node.db), node.stores.accounts, admin.authority, admin.audit,
                    admin.classes, node.clock, node.server_name, check_url)
    admin.changes.listen(registry.changes_seen)  # apps changed by a command
    return AppServices(registry)
