"""Delivery status of application messages, put together: how far users have synced
(:mod:`broker.sync_progress`), the status of each message (:mod:`broker.apps.tracking`), the
delivery reports between nodes (:mod:`broker.apps.delivery_reports`), the callbacks to
applications (:mod:`broker.apps.callbacks`) and the jobs that keep them.  The node calls
:func:`build_delivery` once, :meth:`Delivery.watch_federation` with its inbound federation
services, and :meth:`Delivery.start` in ``Node.start``.

Broadcasts hear of remote recipients' deliveries through
``node.delivery.reports.add_remote_delivery_listener(cb(user_id, room_id, event_id, ts))``, or
ask ``node.delivery.reports.remote.delivered_upto(room_id, user_id)`` (a position, as
``node.delivery.progress.synced_upto(user_id)`` for local users).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

from twisted.internet import defer

from broker.apps.callbacks import CallbackDeps, Callbacks, HttpPoster
from broker.apps.delivery_metrics import DeliveryCollector
from broker.apps.delivery_reports import FLUSH_SECONDS, DeliveryReports, ReportDeps
from broker.apps.remote_progress import RemoteProgress
from broker.apps.tracking import EXPIRY_CHECK_SECONDS, MessageTracker, TrackerDeps
from broker.periodic import Periodic
from broker.sync_progress import SyncProgress
from storage.app_messages import AppMessageStore
from storage.delivery_pending import DeliveryPendingStore
from storage.remote_progress import RemoteProgressStore
from storage.sync_progress import SyncProgressStore

TIDY_SECONDS = 3600.0

if TYPE_CHECKING:
    from broker.node import Node
    from broker.services.federation_transactions import EphemeralUpdates


@dataclass
class Delivery:
    progress: SyncProgress
    tracker: MessageTracker
    reports: DeliveryReports
    callbacks: Callbacks
    expiry: Periodic
    report_job: Periodic
    tidy: Periodic

    async def start(self, reactor: Any) -> None:
        """Read what was kept, then write in batches, expire, report and call back on the
        clock."""
        await self.progress.load()
        await self.tracker.load()
        await self.reports.load()
        await self.reports.remote.load()
        self.progress.start(reactor)
        self.reports.remote.start(reactor)
        self.expiry.start(reactor, EXPIRY_CHECK_SECONDS)
        self.report_job.start(reactor, FLUSH_SECONDS)
        self.tidy.start(reactor, TIDY_SECONDS)
        self.callbacks.start(reactor)

    def stop(self) -> defer.Deferred[None]:
        for job in (self.expiry, self.report_job, self.tidy):
            job.stop()
        self.callbacks.stop()
        return defer.ensureDeferred(self._last_writes())

    async def _last_writes(self) -> None:
        await self.progress.stop()
        await self.reports.remote.stop()
        await self.report_job.run_now()

    def collector(self) -> DeliveryCollector:
        """What a metrics scrape reads of it (``NodeMetrics.watch``)."""
        return DeliveryCollector(self.tracker, self.callbacks, self.reports)

    def watch_federation(self, edus: EphemeralUpdates) -> None:
        """Receipts of other servers' users (read, across nodes)."""
        edus.receipt_listeners.append(self.tracker.read_receipt)


def build_delivery(node: Node) -> Delivery:
    db, clock, rooms = node.db, node.clock, node.rooms
    progress = SyncProgress(SyncProgressStore(db), rooms.registry.cached)
    node.sync.on_since = progress.synced
    events = node.stores.events

    async def event_position(room_id: str, event_id: str) -> int | None:
        """From the room's recent events in memory, else the event store."""
        found = progress.position_of(room_id, event_id)
        return found if found is not None else await events.get_stream_ordering(event_id)

    store = AppMessageStore(db)
    tracker = MessageTracker(store, TrackerDeps(
        clock, node.is_mine, progress.synced_upto, event_position,
        lambda app_id: node.apps.registry.callback_of(app_id)))  # the registry comes later
    progress.add_listener(tracker.synced)
    node.receipts.on_receipt = tracker.read_receipt
    expiry = node.federation.sender.expiry  # events other servers never took, dropped
    if expiry is not None:
        expiry.on_dropped = tracker.dropped

    def local_members(room_id: str) -> list[str]:
        room = rooms.registry.cached(room_id)
        return [u for u in room.members_with("join") if node.is_mine(u)] if room else []

    sender = node.federation.sender
    reports = DeliveryReports(ReportDeps(
        node.server_name, clock, progress.synced_upto, local_members, events.get_events,
        partial(_send_persistent, sender) if node.config.federation.enabled else None),
        tracker, DeliveryPendingStore(db), RemoteProgress(RemoteProgressStore(db)))
    progress.add_listener(reports.synced)
    rooms.persisted_listeners.append(reports.persisted)
    callbacks = Callbacks(CallbackDeps(
        store, tracker.callback_of, clock, HttpPoster(node.reactor, node.reactor),
        random.random, node.config.apps.allow_private_callbacks))
    tracker.on_owed = callbacks.poke
    return Delivery(progress, tracker, reports, callbacks,
                    Periodic(tracker.expire_check, "expiring application messages"),
                    Periodic(reports.flush, "reporting deliveries to other nodes"),
                    Periodic(tracker.tidy, "tidying application message status"))


def _send_persistent(sender: Any, destination: str, edu_type: str,
                     content: dict[str, Any]) -> defer.Deferred[None]:
    result: defer.Deferred[None] = sender.enqueue_edu(destination, edu_type, content,
                                                      persistent=True)
    return result
