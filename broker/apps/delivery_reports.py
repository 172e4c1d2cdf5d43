"""Delivery reports across nodes: the EDU ``in.gov.broker.delivery``.

Recipient's side.  Every event carrying the ``in.gov.broker.notice`` marker (an application's
message or a broadcast) that another server's user sent into a room with users of this node is
remembered per local member, with its stream position here.  When a device of that member
confirms receiving up to that position (:class:`broker.sync_progress.SyncProgress`, on the sync
path: a dict lookup), a delivery ``{"room_id","event_id","user_id","ts"}`` is queued for the
event's origin server; every ``FLUSH_SECONDS`` the queued deliveries leave as one persistent
EDU per origin ``{"deliveries": [...]}`` (at most ``MAX_PER_EDU`` each) through the federation
sender, which retries it with its back-off.

Origin's side.  A report is taken only for a user of the reporting server (the transaction's
origin is the user's server) and only for an event this node sent into that room with the
marker; the others are ignored and counted (``counts``).  An accepted report moves the tracked
message to ``delivered`` (:meth:`broker.apps.tracking.MessageTracker.delivered_remotely`),
raises the room's remote user's position (:class:`broker.apps.remote_progress.RemoteProgress`,
``delivered_upto``: what broadcasts read for remote recipients) and is told to each listener added with :meth:`DeliveryReports.add_remote_delivery_listener`
(broadcasts count their remote recipients' deliveries from it).

What a recipient's node remembers of notices not yet received is memory on the paths that
change it, written to ``delivery_pending`` with the flush (added and removed in one
transaction) and read back at start, so a restart still reports them.  A report queued in the
federation queue before a crash lost the row's removal is sent again: the origin takes a
second report of a delivered message as a no-op.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

from twisted.internet import defer

from broker.apps.remote_progress import RemoteProgress
from broker.apps.tracking import MessageTracker
from protocol.events import Event
from protocol.signing import server_name_of
from storage.delivery_pending import DeliveryPendingStore, PendingRow
from storage.events import PersistItem

logger = logging.getLogger(__name__)

EDU_TYPE = "in.gov.broker.delivery"
NOTICE_KEY = "in.gov.broker.notice"
FLUSH_SECONDS = 1.0
MAX_PER_EDU = 500
MAX_PER_REPORT = 5000  # deliveries read from one EDU; the rest is ignored and counted
MAX_WAITING_PER_USER = 1000  # notices kept for a user who does not sync; the oldest go first

RemoteDeliveryListener = Callable[[str, str, str, int], None]  # (user_id, room_id, event_id, ts)
SendEdu = Callable[[str, str, dict[str, Any]], "defer.Deferred[None]"]  # (destination, type, content)


@dataclass(frozen=True)
class _Notice:
    position: int
    room_id: str
    event_id: str
    origin: str


@dataclass(frozen=True)
class ReportDeps:
    server_name: str
    clock: Any  # broker.clock.Clock
    synced_upto: Callable[[str], int]
    local_members: Callable[[str], list[str]]  # room -> this node's joined users (memory)
    events_of: Callable[[list[str]], Awaitable[dict[str, Event]]]
    send_edu: SendEdu | None  # None without federation


def carries_notice(event: Event) -> bool:
    return isinstance(event.content.get(NOTICE_KEY), dict)


class DeliveryReports:
    def __init__(self, deps: ReportDeps, tracker: MessageTracker,
                 store: DeliveryPendingStore, remote: RemoteProgress) -> None:
        self.deps = deps
        self.tracker = tracker
        self.store = store
        self.remote = remote  # per room and remote user, what was reported delivered
        self._waiting: dict[str, list[_Notice]] = {}  # local user -> notices not yet received
        self._added: dict[tuple[str, str], PendingRow] = {}  # to write
        self._removed: set[tuple[str, str]] = set()  # to delete
        self._outbox: dict[str, list[dict[str, Any]]] = {}  # origin -> deliveries to report
        self._listeners: list[RemoteDeliveryListener] = []
        self.counts: Counter[str] = Counter()  # accepted, ignored_<why>, reported

    # -- recipient's side ----------------------------------------------------------------------
    async def load(self) -> None:
        """The notices kept (at start, before serving)."""
        for user_id, event_id, room_id, origin, position in await self.store.load():
            notice = _Notice(position, room_id, event_id, origin)
            if self.deps.synced_upto(user_id) >= position:  # synced before the row went
                self._report(user_id, notice)
                self._removed.add((user_id, event_id))
            else:
                self._waiting.setdefault(user_id, []).append(notice)

    def persisted(self, items: Iterable[PersistItem]) -> None:
        """Events just stored: remember the marked ones of other servers for local members."""
        name = self.deps.server_name
        for item in items:
            event = item.event
            if item.outlier or not carries_notice(event):
                continue
            origin = server_name_of(event.sender)
            if origin == name:
                continue
            for user_id in self.deps.local_members(event.room_id):
                notice = _Notice(item.stream_ordering, event.room_id, event.event_id, origin)
                if self.deps.synced_upto(user_id) >= notice.position:
                    self._report(user_id, notice)
                else:
                    self._wait(user_id, notice)

    def _wait(self, user_id: str, notice: _Notice) -> None:
        waiting = self._waiting.setdefault(user_id, [])
        waiting.append(notice)
        self._added[(user_id, notice.event_id)] = (
            user_id, notice.event_id, notice.room_id, notice.origin, notice.position)
        if len(waiting) > MAX_WAITING_PER_USER:  # a user who does not sync: forget the oldest
            oldest = waiting.pop(0)
            self.counts["forgotten"] += 1
            if self._added.pop((user_id, oldest.event_id), None) is None:
                self._removed.add((user_id, oldest.event_id))

    def synced(self, user_id: str, position: int) -> None:
        """A device of ``user_id`` confirmed receiving up to ``position`` (the sync path)."""
        waiting = self._waiting.get(user_id)
        if not waiting:
            return
        left = [n for n in waiting if n.position > position]
        for notice in waiting:
            if notice.position <= position:
                self._report(user_id, notice)
                if self._added.pop((user_id, notice.event_id), None) is None:
                    self._removed.add((user_id, notice.event_id))
        if left:
            self._waiting[user_id] = left
        else:
            del self._waiting[user_id]

    def _report(self, user_id: str, notice: _Notice) -> None:
        self._outbox.setdefault(notice.origin, []).append({
            "room_id": notice.room_id, "event_id": notice.event_id, "user_id": user_id,
            "ts": self.deps.clock.time_ms()})

    async def flush(self) -> None:
        """Send what is queued, one EDU per origin and ``MAX_PER_EDU`` deliveries; then write
        the notices added and received since the last flush."""
        outbox, self._outbox = self._outbox, {}
        send = self.deps.send_edu
        for origin, deliveries in sorted(outbox.items()):
            for start in range(0, len(deliveries), MAX_PER_EDU):
                batch = deliveries[start:start + MAX_PER_EDU]
                if send is not None:
                    await send(origin, EDU_TYPE, {"deliveries": batch})
                    self.counts["reported"] += len(batch)
        if self._added or self._removed:
            added, removed = self._added, self._removed
            self._added, self._removed = {}, set()
            try:
                await self.store.change(list(added.values()), sorted(removed))
            except Exception:
                for key, row in added.items():  # again with the next flush
                    self._added.setdefault(key, row)
                self._removed |= removed
                raise

    # -- origin's side -------------------------------------------------------------------------
    def add_remote_delivery_listener(self, listener: RemoteDeliveryListener) -> None:
        """``listener(user_id, room_id, event_id, ts)`` for each report accepted."""
        self._listeners.append(listener)

    async def received(self, origin: str, content: dict[str, Any]) -> None:
        """The EDU handler: take what ``origin`` may report, ignore and count the rest."""
        deliveries = content.get("deliveries")
        if not isinstance(deliveries, list):
            self.counts["ignored_malformed"] += 1
            return
        if len(deliveries) > MAX_PER_REPORT:
            self.counts["ignored_too_many"] += len(deliveries) - MAX_PER_REPORT
            deliveries = deliveries[:MAX_PER_REPORT]
        wanted: list[tuple[str, str, str, int]] = []
        for delivery in deliveries:
            parsed = _parse(delivery)
            if parsed is None:
                self.counts["ignored_malformed"] += 1
            elif server_name_of(parsed[0]) != origin:
                self.counts["ignored_foreign_user"] += 1
            else:
                wanted.append(parsed)
        if not wanted:
            return
        events = await self.deps.events_of([event_id for _, _, event_id, _ in wanted])
        for user_id, room_id, event_id, ts in wanted:
            event = events.get(event_id)
            if event is None or event.room_id != room_id or not carries_notice(event) or \
                    server_name_of(event.sender) != self.deps.server_name:
                self.counts["ignored_not_ours"] += 1
                continue
            self.counts["accepted"] += 1
            self.tracker.delivered_remotely(user_id, room_id, event_id, ts)
            position = event.unsigned.get("stream_ordering")
            if isinstance(position, int):
                self.remote.delivered(room_id, user_id, position)
            for listener in self._listeners:
                try:
                    listener(user_id, room_id, event_id, ts)
                except Exception:
                    logger.exception("a remote delivery listener failed")


def _parse(delivery: Any) -> tuple[str, str, str, int] | None:
    if not isinstance(delivery, dict):
        return None
    user_id, room_id, event_id, ts = (delivery.get(k) for k in
                                      ("user_id", "room_id", "event_id", "ts"))
    if not (isinstance(user_id, str) and isinstance(room_id, str) and
            isinstance(event_id, str) and isinstance(ts, int) and not isinstance(ts, bool)):
        return None
    if len(user_id) > 255 or len(room_id) > 255 or len(event_id) > 255:
        return None
    try:
        server_name_of(user_id)
    except ValueError:
        return None
    return user_id, room_id, event_id, ts
