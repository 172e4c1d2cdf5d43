"""One application service's transactions: what it has not been sent yet, pushed in batches,
retried with exponential back-off, never given up.

The room events a service is owed are the node's events after its position (they are
persisted already: the event log is its queue, and its position is written after each
transaction it accepts, so a restart or an outage of any length loses none of them).  They
are handed to the queue in memory as they are written, so one that keeps up reads nothing back;
past ``memory_limit`` of them the memory is dropped and the log read instead.  Its
ephemeral data (receipts, typing) and to-device messages are held in memory, at most
``memory_limit`` of each: beyond that the oldest are dropped and counted (receipts and typing
are superseded by later ones; a dropped to-device message is what MSC4203 says a down service
may lose).

A transaction that fails (an error status, no connection, no answer within the client's
deadline) is sent again, the same transaction id and body, after 1, 2, 4... seconds, at most
``max_backoff_s`` apart, until the service accepts it; meanwhile new events wait in the log.
Each service has its own loop: one that is down or hangs holds back no other, and no request
of the node waits on any of them.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from twisted.internet import defer

from broker.appservice.interest import Interest
from broker.appservice.registration import Registration
from protocol.events import Event
from storage.appservice import AppServiceStore
from storage.events import PersistItem

logger = logging.getLogger(__name__)

# Events read from the log at once; the most a transaction carries.
PAGE = 100
# Ephemeral events or to-device messages in one transaction.
EPHEMERAL_PER_TXN = 100
# Of each kind held in memory for a service that does not take them.
MEMORY_LIMIT = 10_000
# Under load the position is written at most this often (and whenever the queue empties): a
# crash then sends the service at most this much again, which the events' IDs let it see.
POSITION_WRITE_S = 1.0
BASE_BACKOFF_S = 1.0
MAX_BACKOFF_S = 60.0
# Field names in the transaction body: the stable MSC2409 one and the unstable names bridges
# written for Synapse read (MSC4203's to-device messages have no stable name yet).
EPHEMERAL_FIELDS = ("ephemeral", "de.sorunome.msc2409.ephemeral")
TO_DEVICE_FIELD = "de.sorunome.msc2409.to_device"

Serialize = Callable[[list[Event]], Awaitable[list[dict[str, Any]]]]


class Pusher(Protocol):
    async def push(self, service: Registration, txn_id: str, body: dict[str, Any]) -> None: ...


@dataclass
class Transaction:
    txn_id: int
    up_to: int  # the stream position the service has had everything up to once accepted
    body: dict[str, Any]
    size: int


@dataclass
class Health:
    """What admins and metrics see of a service's delivery."""

    state: str = "up"  # "up", "backing_off", or "no_url" (nothing is pushed)
    failures_in_a_row: int = 0
    failed_attempts: int = 0
    transactions: int = 0
    events_sent: int = 0
    last_success_ts: int | None = None
    last_error: str | None = None
    last_error_ts: int | None = None
    next_attempt_ts: int | None = None
    dropped: dict[str, int] = field(default_factory=lambda: {"ephemeral": 0, "to_device": 0})


class ServiceQueue:
    def __init__(self, service: Registration, client: Pusher, store: AppServiceStore,
                 interest: Interest, serialize: Serialize, clock: Any,
                 stream_token: Callable[[], int], *, memory_limit: int = MEMORY_LIMIT,
                 max_backoff_s: float = MAX_BACKOFF_S) -> None:
        self.service = service
        self.client = client
        self.store = store
        self.interest = interest
        self.serialize = serialize
        self.clock = clock
        self.stream_token = stream_token
        self.max_backoff_s = max_backoff_s
        self.position = 0
        self._written_position = 0
        self._written_at = 0.0
        # Events written since the start, by stream position: every event after
        # ``_complete_after`` is among them (before it, the log is read).
        self._recent: list[tuple[int, Event]] = []
        self._complete_after = 0
        self.last_txn_id = 0
        self.ephemeral: deque[dict[str, Any]] = deque()
        self.to_device: deque[dict[str, Any]] = deque()
        self.memory_limit = memory_limit
        self.health = Health(state="up" if service.url else "no_url")
        self._in_flight: Transaction | None = None
        self._draining = False
        self._timer: Any = None
        self._stopped = False

    async def start(self) -> None:
        """Resume after the position the service last accepted (a new service starts at
        the stream's current position: it is owed what happens from now on)."""
        stored = await self.store.get_position(self.service.id)
        if stored is None:
            self.position = self.stream_token()
            await self.store.set_position(self.service.id, self.position, 0, None)
        else:
            self.position, self.last_txn_id = stored.stream_position, stored.last_txn_id
            self.health.last_success_ts = stored.last_success_ts
        self._written_position = self.position
        self._complete_after = self.stream_token()  # later events are all told to the queue
        self.wake()

    def stop(self) -> None:
        self._stopped = True
        if self._timer is not None and self._timer.active():
            self._timer.cancel()

    # -- what arrives ------------------------------------------------------------------------
    def wake(self) -> None:
        """Something may be owed: drain, unless a drain runs or waits out a back-off."""
        if not self._draining and self._timer is None and not self._stopped \
                and self.service.url is not None:
            self._draining = True
            defer.ensureDeferred(self._drain()).addErrback(self._crashed)

    def add_ephemeral(self, edu: dict[str, Any]) -> None:
        self._hold(self.ephemeral, "ephemeral", edu)

    def add_to_device(self, message: dict[str, Any]) -> None:
        self._hold(self.to_device, "to_device", message)

    def _hold(self, held: deque[dict[str, Any]], kind: str, item: dict[str, Any]) -> None:
        if self.service.url is None:
            return
        held.append(item)
        while len(held) > self.memory_limit:
            held.popleft()
            self.health.dropped[kind] += 1
        self.wake()

    # -- the loop ----------------------------------------------------------------------------
    def _owed(self) -> bool:
        return self._in_flight is not None or bool(self.ephemeral) or bool(self.to_device) \
            or self.position < self.stream_token()

    async def _drain(self) -> None:
        try:
            while self._owed() and not self._stopped:
                try:
                    txn = self._in_flight or await self._next_transaction()
                    if txn is None:
                        continue
                    self._in_flight = txn
                    await self.client.push(self.service, str(txn.txn_id), txn.body)
                except Exception as e:  # noqa: BLE001 - every failure is retried
                    self._failed(e)
                    return  # the back-off's timer wakes the queue again
                await self._accepted(txn)
            if self._written_position != self.position:  # emptied: where it stands now
                await self._write_position(self.health.last_success_ts)
        finally:
            self._draining = False
        if self._owed():  # arrived while the position was written
            self.wake()

    async def _next_transaction(self) -> Transaction | None:
        """The next batch (None: the events read concerned the service not, and its
        position moved past them)."""
        up_to = self.stream_token()
        events: list[Event] = []
        scanned = self.position
        if scanned < up_to:
            page, scanned = await self._page(scanned, up_to)
            events = [e for _s, e in page if await self.interest.wants_event(self.service, e)]
        ephemeral = _take(self.ephemeral, EPHEMERAL_PER_TXN)
        to_device = _take(self.to_device, EPHEMERAL_PER_TXN)
        if not (events or ephemeral or to_device):
            self.position = scanned
            return None
        body: dict[str, Any] = {"events": await self.serialize(events)}
        if ephemeral:
            body.update(dict.fromkeys(EPHEMERAL_FIELDS, ephemeral))
        if to_device:
            body[TO_DEVICE_FIELD] = to_device
        return Transaction(self.last_txn_id + 1, scanned, body, len(events))

    def events_written(self, items: Sequence[PersistItem]) -> None:
        """Durable events, kept in memory so that a queue keeping up reads none back (past
        ``memory_limit`` of them the memory is dropped, and the log is read instead)."""
        if self.service.url is None:
            return
        self._recent.extend((i.stream_ordering, i.event) for i in items if not i.outlier)
        if len(self._recent) > self.memory_limit:
            self._complete_after = max(self._complete_after, max(s for s, _e in self._recent))
            self._recent = []

    async def _page(self, after: int, up_to: int) -> tuple[list[tuple[int, Event]], int]:
        """The next events after ``after`` up to ``up_to``, oldest first, and the position
        they cover to: from memory when it holds every event after ``after``, else from the
        log (up to where memory takes over)."""
        if after >= self._complete_after:
            self._recent = [(s, e) for s, e in self._recent if s > after]
            page = sorted((r for r in self._recent if r[0] <= up_to), key=lambda r: r[0])[:PAGE]
        else:
            up_to = min(up_to, self._complete_after)
            page = [(int(e.unsigned["stream_ordering"]), e)
                    for e in await self.store.events_after(after, up_to, PAGE)]
        return page, page[-1][0] if len(page) == PAGE else up_to

    async def _accepted(self, txn: Transaction) -> None:
        now = self.clock.time_ms()
        health = self.health
        if health.failures_in_a_row:
            logger.info("application service %s accepts transactions again, after %d failed"
                        " attempts", self.service.id, health.failures_in_a_row)
        self._in_flight = None
        self.position, self.last_txn_id = txn.up_to, txn.txn_id
        health.state, health.failures_in_a_row, health.next_attempt_ts = "up", 0, None
        health.transactions += 1
        health.events_sent += txn.size
        health.last_success_ts = now
        if self.clock.time() - self._written_at >= POSITION_WRITE_S:
            await self._write_position(now)

    async def _write_position(self, success_ts: int | None) -> None:
        """Record the position; a failed write is written with a later one (until then a
        restart sends the service some events again, which their IDs let it recognise)."""
        position = self.position
        try:
            await self.store.set_position(self.service.id, position, self.last_txn_id,
                                          success_ts)
        except Exception as e:  # noqa: BLE001
            logger.warning("application service %s: writing its position failed: %s",
                           self.service.id, e)
            return
        self._written_position = position
        self._written_at = self.clock.time()

    def _failed(self, error: Exception) -> None:
        health = self.health
        health.failures_in_a_row += 1
        health.failed_attempts += 1
        delay = min(BASE_BACKOFF_S * 2 ** (health.failures_in_a_row - 1), self.max_backoff_s)
        now = self.clock.time_ms()
        health.state, health.last_error, health.last_error_ts = "backing_off", str(error), now
        health.next_attempt_ts = now + int(delay * 1000)
        failures = health.failures_in_a_row
        if failures & (failures - 1) == 0:  # the 1st, 2nd, 4th, 8th... failure in a row
            logger.warning("application service %s: transaction %s failed (%s), %d in a row;"
                           " retrying in %gs", self.service.id,
                           self._in_flight.txn_id if self._in_flight else "-", error, failures,
                           delay)
        self._timer = self.clock.call_later(delay, self._retry)

    def _retry(self) -> None:
        self._timer = None
        self.wake()

    def _crashed(self, failure: Any) -> None:
        logger.error("application service %s: the push loop failed: %s", self.service.id,
                     failure.getTraceback())


def _take(held: deque[dict[str, Any]], count: int) -> list[dict[str, Any]]:
    return [held.popleft() for _ in range(min(count, len(held)))]
