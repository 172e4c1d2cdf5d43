"""Delivery status of application messages, put together: how far users have synced
(:mod:`broker.sync_progress`), the status of each message (:mod:`broker.apps.tracking`) and
the jobs that keep them (batched writes, expiry).  The node calls :func:`build_delivery` once
and :meth:`Delivery.start` in ``Node.start``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from twisted.internet import defer

from broker.apps.tracking import EXPIRY_CHECK_SECONDS, CallbackTarget, MessageTracker, TrackerDeps
from broker.clock import Clock
from broker.periodic import Periodic
from broker.rooms.live_room import LiveRoom
from broker.sync.handler import SyncHandler
from broker.sync_progress import SyncProgress
from storage.app_messages import AppMessageStore
from storage.database import Database
from storage.events import EventStore
from storage.sync_progress import SyncProgressStore


def no_callbacks(app_id: str) -> CallbackTarget | None:
    """Callback targets before the applications' registry is wired: none."""
    return None


@dataclass
class Delivery:
    progress: SyncProgress
    tracker: MessageTracker
    expiry: Periodic

    async def start(self, reactor: Any) -> None:
        """Read what was kept, then write in batches and expire on the clock."""
        await self.progress.load()
        await self.tracker.load()
        self.progress.start(reactor)
        self.expiry.start(reactor, EXPIRY_CHECK_SECONDS)

    def stop(self) -> defer.Deferred[None]:
        self.expiry.stop()
        return self.progress.stop()


def build_delivery(db: Database, sync: SyncHandler, room_of: Callable[[str], LiveRoom | None],
                   events: EventStore, clock: Clock, is_local: Callable[[str], bool],
                   callback_of: Callable[[str], CallbackTarget | None] = no_callbacks,
                   ) -> Delivery:
    progress = SyncProgress(SyncProgressStore(db), room_of)
    sync.on_since = progress.synced

    async def event_position(room_id: str, event_id: str) -> int | None:
        """From the room's recent events in memory, else the event store."""
        found = progress.position_of(room_id, event_id)
        return found if found is not None else await events.get_stream_ordering(event_id)

    tracker = MessageTracker(AppMessageStore(db), TrackerDeps(
        clock, is_local, progress.synced_upto, event_position, callback_of))
    progress.add_listener(tracker.synced)
    return Delivery(progress, tracker, Periodic(tracker.expire_check,
                                                "expiring application messages"))
