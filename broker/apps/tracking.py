"""The delivery status of each message an eGov application sends.

A message is ``queued`` when the application's request is accepted; then, moving only forward:
``delivered`` (a device of the recipient received it: a /sync with a token at or past the
event, from :class:`broker.sync_progress.SyncProgress` for a user of this node, or a delivery
report of the recipient's node, :mod:`broker.apps.delivery_reports`), ``read`` (an ``m.read``
or ``m.read.private`` receipt at or after it; read implies delivered), and two final states:
``expired`` (an OTP's ``expires_ts`` passed, whatever came before) and ``failed`` (with a
reason, only from ``queued``).  ``delivered_ts <= read_ts`` always.

Memory first: every message whose status can still change (queued, delivered, or read with an
expiry to come) is held in memory (read back at start), with indexes by recipient (the sync path asks one dict lookup per sync that moved a
user's position), by room (receipts) and by event (expiry, delivery reports); finished messages
stay in a bounded map, so :meth:`MessageTracker.status` of a recent message reads no database.
Changes are group-committed: all the changes made while a write runs go into the next one
transaction, with the callbacks they owe (:mod:`broker.apps.callbacks`), so nothing on the sync
path waits for the database and a callback is owed exactly when its change is kept.
"""

from __future__ import annotations

import heapq
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, NotRequired, TypedDict

from cachetools import LRUCache
from twisted.internet import defer

from broker.errors import NotFound
from storage.app_messages import AppMessageStore, CallbackRow, MessageRow
from storage.receipts import READ as READ_RECEIPT
from storage.receipts import READ_PRIVATE, Receipt

if TYPE_CHECKING:
    from broker.clock import Clock

logger = logging.getLogger(__name__)

QUEUED, DELIVERED, READ, EXPIRED, FAILED = "queued", "delivered", "read", "expired", "failed"
STATUSES = (QUEUED, DELIVERED, READ, EXPIRED, FAILED)
FINAL = frozenset({EXPIRED, FAILED})  # nothing follows (and only expiry follows read)
FINISHED_KEPT = 100_000  # finished messages whose status is answered from memory
EXPIRY_CHECK_SECONDS = 1.0
# A message not read (nor expired) this long after it was sent is no longer followed: it keeps
# its status, and leaves memory.  Its record goes once it is older than STATUS_KEPT_MS.
FOLLOWED_MS = 30 * 24 * 3600 * 1000
STATUS_KEPT_MS = 90 * 24 * 3600 * 1000


@dataclass(frozen=True)
class CallbackTarget:
    """Where an application's status callbacks go, and the secret they are signed with."""

    url: str
    secret: str


class MessageStatus(TypedDict):
    message_id: str
    status: str
    recipient: str
    delivered_ts: int | None
    read_ts: int | None
    reason: NotRequired[str]
    expires_ts: NotRequired[int]


def move(row: MessageRow, status: str, ts: int) -> bool:
    """Move ``row`` to ``status`` at ``ts`` if that is forward; whether it moved.

    queued -> delivered -> read; expired from any state but failed; failed from queued only.
    Read implies delivered (``delivered_ts`` set if missing); ``delivered_ts <= read_ts``."""
    current = row.status
    if current in (EXPIRED, FAILED) or current == status:
        return False
    if status == EXPIRED:
        row.status = EXPIRED
        return True
    if current == READ:
        return False
    if status == FAILED:
        if current != QUEUED:
            return False
        row.status = FAILED
        return True
    if status == DELIVERED:
        if current != QUEUED:
            return False
        row.status, row.delivered_ts = DELIVERED, ts
        return True
    if status == READ:
        if row.delivered_ts is None:
            row.delivered_ts = ts
        row.status, row.read_ts = READ, max(ts, row.delivered_ts)
        return True
    raise ValueError(f"unknown status {status!r}")


def _finished(row: MessageRow) -> bool:
    """Whether nothing can change ``row`` any more (read without an expiry, expired, failed)."""
    return row.status in FINAL or (row.status == READ and row.expires_ts is None)


def status_of(row: MessageRow) -> MessageStatus:
    answer = MessageStatus(message_id=row.message_id, status=row.status,
                           recipient=row.recipient, delivered_ts=row.delivered_ts,
                           read_ts=row.read_ts)
    if row.reason is not None:
        answer["reason"] = row.reason
    if row.expires_ts is not None:
        answer["expires_ts"] = row.expires_ts
    return answer


def callback_body(row: MessageRow, ts: int, status: str | None = None) -> str:
    """The body of the callback for ``status`` (``row``'s current one by default), signed as
    these bytes."""
    return json.dumps({"message_id": row.message_id, "status": status or row.status,
                       "recipient": row.recipient, "ts": ts}, separators=(",", ":"))


#: (room_id, event_id) -> the event's stream position on this node, None if not stored
EventPosition = Callable[[str, str], Awaitable["int | None"]]


@dataclass(frozen=True)
class TrackerDeps:
    """What the tracker reads: the clock, which users are this node's, how far each local
    user has synced (memory), an event's stream position, and each app's callback target
    (memory, the apps registry's)."""

    clock: Clock
    is_local: Callable[[str], bool]
    synced_upto: Callable[[str], int]
    event_position: EventPosition
    callback_of: Callable[[str], CallbackTarget | None]


class MessageTracker:
    def __init__(self, store: AppMessageStore, deps: TrackerDeps) -> None:
        self.store = store
        self.deps = deps
        self.clock = deps.clock
        self.callback_of = deps.callback_of
        self._open: dict[str, MessageRow] = {}  # queued or delivered
        self._finished: LRUCache[str, MessageRow] = LRUCache(FINISHED_KEPT)
        self._awaiting: dict[str, dict[str, MessageRow]] = {}  # local recipient -> queued, sent
        self._rooms: dict[str, dict[str, MessageRow]] = {}  # room -> open, sent
        self._events: dict[str, MessageRow] = {}  # event -> open message
        self._expiries: list[tuple[int, str]] = []  # (expires_ts, message_id), a heap
        self._dirty: dict[str, MessageRow] = {}
        self._owed: list[CallbackRow] = []
        self._waiters: list[defer.Deferred[None]] = []
        self._writing = False
        self.on_owed: Callable[[], None] | None = None  # told when callbacks were written
        self.write_failures = 0

    def open_count(self) -> int:
        """Messages whose status can still change (in memory)."""
        return len(self._open)

    async def load(self) -> None:
        """Hold every open message in memory (at start, before serving)."""
        for row in await self.store.open_messages(self.clock.time_ms() - FOLLOWED_MS):
            self._hold(row)

    # -- the interface the apps use ------------------------------------------------------------
    async def queue(self, message_id: str, app_id: str, recipient: str,
                    expires_ts: int | None, outbox: str | None = None) -> None:
        """A message accepted: status "queued", kept once this returns (a message ID known
        already keeps its status).  ``outbox``: what it will put in its room, kept with
        the status until it is sent or fails, so a node stopped before sending it sends it
        at its next start (:meth:`unsent`)."""
        if message_id in self._open or message_id in self._finished:
            await self._flush()
            return
        row = MessageRow(message_id, app_id, recipient, QUEUED, self.clock.time_ms(),
                         expires_ts=expires_ts, outbox=outbox)
        self._hold(row)
        await self._write(row)

    async def sent(self, message_id: str, room_id: str, event_id: str) -> None:
        """The message is the event ``event_id`` in ``room_id`` (stored)."""
        row = await self._row(message_id)
        if row is None:
            raise NotFound(f"No message {message_id}")
        position = await self.deps.event_position(room_id, event_id)
        row.room_id, row.event_id, row.position = room_id, event_id, position
        row.outbox, row.outbox_done = None, True
        if row.status in (QUEUED, DELIVERED):
            self._index(row)
            if (row.status == QUEUED and position is not None and self.deps.is_local(
                    row.recipient) and self.deps.synced_upto(row.recipient) >= position):
                self._set(row, DELIVERED, self.clock.time_ms())
        await self._write(row)

    async def fail(self, message_id: str, reason: str) -> None:
        """The message cannot be delivered (status "failed", final; only from "queued")."""
        row = await self._row(message_id)
        if row is None:
            raise NotFound(f"No message {message_id}")
        if row.status == QUEUED:
            row.reason = reason
            self._set(row, FAILED, self.clock.time_ms())
            await self._flush()

    async def status(self, message_id: str) -> MessageStatus | None:
        row = await self._row(message_id)
        return status_of(row) if row is not None else None

    async def unsent(self) -> list[MessageRow]:
        """The queued messages accepted before the node stopped and never written into
        their room, with their outbox (at start, after :meth:`load`)."""
        found = []
        for stored in await self.store.unsent():
            live = self._open.get(stored.message_id)
            if live is not None:  # (one older than FOLLOWED_MS is no longer followed)
                live.outbox = stored.outbox
                found.append(live)
        return found

    # -- what moves a status -------------------------------------------------------------------
    def synced(self, user_id: str, position: int) -> None:
        """A device of local ``user_id`` confirmed receiving up to ``position`` (the sync path:
        memory only; the writes follow in the background)."""
        waiting = self._awaiting.get(user_id)
        if not waiting:
            return
        due = [r for r in waiting.values() if r.position is not None and r.position <= position]
        now = self.clock.time_ms()
        for row in due:
            self._set(row, DELIVERED, now)

    def delivered_remotely(self, user_id: str, room_id: str, event_id: str, ts: int) -> bool:
        """The recipient's node reports ``user_id`` received ``event_id``; whether it names
        an open message of that recipient in that room."""
        row = self._events.get(event_id)
        if row is None or row.recipient != user_id or row.room_id != room_id:
            return False
        self._set(row, DELIVERED, max(row.created_ts, min(ts, self.clock.time_ms())))
        return True

    def dropped(self, dropped: list[tuple[str, str]]) -> None:
        """The federation queue gave up on these (destination, event ID) unsent: a message
        still queued for a user of that destination failed."""
        now = self.clock.time_ms()
        for destination, event_id in dropped:
            row = self._events.get(event_id)
            if row is not None and row.status == QUEUED and \
                    row.recipient.endswith(":" + destination):
                row.reason = f"undelivered: {destination} did not take it in time"
                self._set(row, FAILED, now)

    def has_open_messages(self, room_id: str) -> bool:
        return bool(self._rooms.get(room_id))

    def read_receipt(self, receipt: Receipt) -> None:
        """A receipt was stored (a local user's, or another server's user's): a set lookup
        unless the room holds open messages, whose status then follows."""
        if receipt.receipt_type not in (READ_RECEIPT, READ_PRIVATE) or \
                not self.has_open_messages(receipt.room_id):
            return
        d = defer.ensureDeferred(self.receipt(receipt.room_id, receipt.user_id,
                                              receipt.event_id))
        d.addErrback(lambda f: logger.error("a receipt's status change failed: %s",
                                            f.getTraceback()))

    async def receipt(self, room_id: str, user_id: str, event_id: str) -> None:
        """``user_id`` sent a read receipt at ``event_id`` in ``room_id``: every open message
        of theirs there up to that event is read."""
        mine = [r for r in self._rooms.get(room_id, {}).values() if r.recipient == user_id]
        if not mine:
            return
        marked = self._events.get(event_id)
        position = marked.position if marked is not None else \
            await self.deps.event_position(room_id, event_id)
        if position is None:
            return
        now = self.clock.time_ms()
        for row in mine:
            if row.position is not None and row.position <= position:
                self._set(row, READ, now)

    def expire_due(self) -> int:
        """Every open message whose ``expires_ts`` has passed is expired; how many."""
        now = self.clock.time_ms()
        count = 0
        while self._expiries and self._expiries[0][0] <= now:
            expires_ts, message_id = heapq.heappop(self._expiries)
            row = self._open.get(message_id)
            if row is not None and row.expires_ts == expires_ts:
                self._set(row, EXPIRED, expires_ts)
                count += 1
        return count

    def stop_following(self) -> int:
        """Open messages sent longer than FOLLOWED_MS ago leave memory (keeping the status
        they have, which status() reads from the database); how many."""
        before = self.clock.time_ms() - FOLLOWED_MS
        old = [row for row in self._open.values() if row.created_ts < before]
        for row in old:
            self._unindex(row)
            del self._open[row.message_id]
        return len(old)

    async def tidy(self) -> None:
        """The hourly job: stop following old messages, delete the records of older ones."""
        self.stop_following()
        before = self.clock.time_ms() - STATUS_KEPT_MS
        for message_id in [m for m, r in self._finished.items() if r.created_ts < before]:
            del self._finished[message_id]
        await self.store.delete_before(before)

    async def expire_check(self) -> None:
        """The periodic job: expire what is due, retry a write that failed."""
        self.expire_due()
        await self._flush()

    # -- memory --------------------------------------------------------------------------------
    def _hold(self, row: MessageRow) -> None:
        if _finished(row):
            self._finished[row.message_id] = row
            return
        self._open[row.message_id] = row
        if row.expires_ts is not None:
            heapq.heappush(self._expiries, (row.expires_ts, row.message_id))
        if row.room_id is not None and row.status in (QUEUED, DELIVERED):
            self._index(row)

    def _index(self, row: MessageRow) -> None:
        assert row.room_id is not None and row.event_id is not None
        self._rooms.setdefault(row.room_id, {})[row.message_id] = row
        self._events[row.event_id] = row
        if row.status == QUEUED and self.deps.is_local(row.recipient):
            self._awaiting.setdefault(row.recipient, {})[row.message_id] = row

    def _unindex(self, row: MessageRow) -> None:
        waiting = self._awaiting.get(row.recipient)
        if waiting is not None:
            waiting.pop(row.message_id, None)
            if not waiting:
                del self._awaiting[row.recipient]
        if row.room_id is not None:
            in_room = self._rooms.get(row.room_id)
            if in_room is not None:
                in_room.pop(row.message_id, None)
                if not in_room:
                    del self._rooms[row.room_id]
        if row.event_id is not None and self._events.get(row.event_id) is row:
            del self._events[row.event_id]

    async def _row(self, message_id: str) -> MessageRow | None:
        row = self._open.get(message_id) or self._finished.get(message_id)
        if row is None:
            row = await self.store.get(message_id)
            if row is None or message_id in self._open:
                return self._open.get(message_id) or row
            if _finished(row) or row.created_ts < self.clock.time_ms() - FOLLOWED_MS:
                self._finished[message_id] = row  # answered from memory, not followed
            else:
                self._hold(row)
        return row

    def _set(self, row: MessageRow, status: str, ts: int) -> None:
        """Move ``row`` (held in memory) to ``status``; the write and the callback follow
        (a message read before any report of its delivery owes the app both, delivered
        first: an app waiting for "delivered" is told)."""
        before = row.status
        if not move(row, status, ts):
            return
        if row.status in FINAL:  # nothing will be sent any more
            row.outbox, row.outbox_done = None, True
        if row.status != QUEUED:
            waiting = self._awaiting.get(row.recipient)
            if waiting is not None:
                waiting.pop(row.message_id, None)
                if not waiting:
                    del self._awaiting[row.recipient]
        if row.status not in (QUEUED, DELIVERED):
            self._unindex(row)
        if _finished(row):
            self._open.pop(row.message_id, None)
            self._finished[row.message_id] = row
        target = self.callback_of(row.app_id)
        if target is not None:
            if before == QUEUED and row.status == READ and row.delivered_ts is not None:
                self._owed.append(CallbackRow(
                    row.message_id, DELIVERED, row.app_id,
                    callback_body(row, row.delivered_ts, DELIVERED), 0, ts))
            self._owed.append(CallbackRow(row.message_id, row.status, row.app_id,
                                          callback_body(row, ts), 0, ts))
        self._dirty[row.message_id] = row
        self._start_writing()

    # -- group-committed writes ----------------------------------------------------------------
    def _write(self, row: MessageRow) -> defer.Deferred[None]:
        self._dirty[row.message_id] = row
        return self._flush()

    def _flush(self) -> defer.Deferred[None]:
        """Fires once everything changed so far is written."""
        if not self._dirty and not self._owed and not self._writing:
            return defer.succeed(None)
        d: defer.Deferred[None] = defer.Deferred()
        self._waiters.append(d)
        self._start_writing()
        return d

    def _start_writing(self) -> None:
        if not self._writing:
            self._writing = True
            defer.ensureDeferred(self._write_all())

    async def _write_all(self) -> None:
        try:
            while self._dirty or self._owed or self._waiters:
                rows = [replace(r) for r in self._dirty.values()]
                owed, waiters = self._owed, self._waiters
                self._dirty, self._owed, self._waiters = {}, [], []
                try:
                    await self.store.write(rows, owed)
                except Exception as e:
                    self.write_failures += 1
                    logger.exception("writing application message status failed")
                    for row in rows:  # written again by the next change or expiry check
                        self._dirty.setdefault(row.message_id, self._live(row))
                    self._owed = owed + self._owed
                    for waiter in waiters:
                        waiter.errback(e)
                    return
                for waiter in waiters:
                    waiter.callback(None)
                if owed and self.on_owed is not None:
                    self.on_owed()
        finally:
            self._writing = False

    def _live(self, row: MessageRow) -> MessageRow:
        return self._open.get(row.message_id) or self._finished.get(row.message_id) or row
