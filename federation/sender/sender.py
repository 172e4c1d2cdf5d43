"""The federation sender: durable group-committed enqueueing and one queue per destination.

``enqueue_pdu`` and persistent ``enqueue_edu`` calls made in the same reactor turn (and any made
while the previous write is running) are written in one database transaction; each caller's
Deferred fires once its items are durable, and only then are the destinations' loops told.
Writes are serialised, so queue positions follow the order of the calls.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from twisted.internet import defer

from federation.sender import policy
from federation.sender.destination import Clock, DestinationQueue, QueueContext, SendTransaction
from federation.sender.expiry import QueueExpiry
from storage.federation_queue import FederationQueueStore, NewEdu, NewPdu

logger = logging.getLogger(__name__)

JsonDict = dict[str, Any]


class FederationSender:
    """Sends this node's PDUs and EDUs to other servers, surviving failures and restarts.

    ``send_transaction(destination, txn_id, body)`` performs
    ``PUT /_matrix/federation/v1/send/{txn_id}`` and fires with the parsed 200 answer, or fails
    (see :mod:`federation.sender.policy` for how failures are read).  ``clock.time_ms()`` gives
    the wall clock; ``reactor`` schedules timers; ``is_allowed(server_name)`` is the federation
    policy, asked on enqueue and again before each transaction.  ``max_queue_age_ms``: an
    entry queued longer ago is never sent (:class:`federation.sender.expiry.QueueExpiry`
    deletes it).
    """

    def __init__(
        self,
        store: FederationQueueStore,
        send_transaction: SendTransaction,
        server_name: str,
        clock: Clock,
        reactor: Any,
        is_allowed: Callable[[str], bool],
        *,
        rng: random.Random | None = None,
        request_timeout_s: float = policy.DEFAULT_REQUEST_TIMEOUT_S,
        max_queue_age_ms: int | None = None,
    ) -> None:
        self.store = store
        self.server_name = server_name
        self.clock = clock
        self.reactor = reactor
        self.is_allowed = is_allowed
        self._last_txn_id = 0
        self._ctx = QueueContext(
            store=store,
            send_transaction=send_transaction,
            server_name=server_name,
            clock=clock,
            reactor=reactor,
            is_allowed=is_allowed,
            next_txn_id=self._next_txn_id,
            rng=rng or random.Random(),
            request_timeout_s=request_timeout_s,
            max_age_ms=max_queue_age_ms,
        )
        self._queues: dict[str, DestinationQueue] = {}
        self.expiry = (QueueExpiry(store, clock, max_queue_age_ms)
                       if max_queue_age_ms is not None else None)
        # Group commit of enqueued items.
        self._pending_pdus: list[NewPdu] = []
        self._pending_edus: list[NewEdu] = []
        self._waiters: list[defer.Deferred[None]] = []
        self._flush_call: Any = None
        self._writing = False
        self._stopped = False

    # -- public API -------------------------------------------------------------------------------
    async def start(self) -> None:
        """Resume every destination that has queued items (honouring persisted back-off), and
        expire what is queued for too long (now, then hourly)."""
        if self.expiry is not None:
            await self.expiry.expire()  # before any destination resumes
            self.expiry.start(self.reactor)
        states = await self.store.destinations_with_pending()
        if states:
            logger.info("federation: resuming delivery to %d destinations with queued items",
                        len(states))
        for state in states:
            self._queue(state.destination).resume(state)

    async def enqueue_pdu(
        self, pdu_json: Mapping[str, Any], event_id: str, destinations: Iterable[str]
    ) -> None:
        """Queue a PDU for ``destinations``; returns once it is durable.

        Our own server name and destinations the federation policy refuses are skipped.
        """
        targets = self._filter(destinations, f"PDU {event_id}")
        if not targets:
            return
        pdu = dict(pdu_json)
        await self._write([NewPdu(d, event_id, pdu) for d in targets], [])

    def enqueue_edu(
        self,
        destination: str,
        edu_type: str,
        content: Mapping[str, Any],
        *,
        persistent: bool = False,
        key: str | None = None,
    ) -> defer.Deferred[None]:
        """Queue an EDU; a ``key`` makes it replace a pending EDU of the same type and key.

        Persistent EDUs (device list updates, to-device messages) are written to the database and
        the Deferred fires once they are durable.  Ephemeral ones (typing, receipts) are held in
        memory only and dropped while the destination is backing off.
        """
        if not self._filter([destination], f"EDU {edu_type}"):
            return defer.succeed(None)
        if persistent:
            return self._write([], [NewEdu(destination, edu_type, dict(content), key)])
        if not self._queue(destination).add_ephemeral(edu_type, dict(content), key):
            logger.debug("federation: %s is backing off; dropped ephemeral %s EDU",
                         destination, edu_type)
        return defer.succeed(None)

    def set_outgoing_pdus(self, hook: Callable[[list[JsonDict]], list[JsonDict]]) -> None:
        """``hook`` rewrites the PDUs of each transaction as it leaves (retention prunes the
        expired ones: :meth:`broker.retention.Retention.prune_expired`)."""
        self._ctx.outgoing_pdus = hook

    def set_delivered(self, hook: Callable[[str, int, int], None]) -> None:
        """``hook`` is told each transaction a destination took (the destination, how many
        PDUs and EDUs it carried)."""
        self._ctx.delivered = hook

    def wake_destination(self, destination: str) -> None:
        """``destination`` is reachable again (it sent us something): retry it now."""
        queue = self._queues.get(destination)
        if queue is not None and (queue.backing_off or queue.failure_count):
            queue.wake()

    def stop(self) -> None:
        """Cancel timers (shutdown); queued items stay in the database for the next start."""
        self._stopped = True
        if self.expiry is not None:
            self.expiry.stop()
        if self._flush_call is not None:
            self._flush_call.cancel()
            self._flush_call = None
        for queue in self._queues.values():
            queue.stop()

    def destination_health(self) -> list[tuple[str, bool, int]]:
        """(destination, backing off now, failed attempts in a row) of every destination this
        node has sent to or resumed since it started (memory only: for metrics)."""
        return [(name, queue.backing_off, queue.failure_count)
                for name, queue in list(self._queues.items())]

    def is_backing_off(self, destination: str) -> bool:
        queue = self._queues.get(destination)
        return queue is not None and queue.backing_off

    # -- internals --------------------------------------------------------------------------------
    def _next_txn_id(self) -> str:
        # Time-based counter: unique per origin across restarts as long as the clock is sane.
        self._last_txn_id = max(self._last_txn_id + 1, self.clock.time_ms())
        return str(self._last_txn_id)

    def _filter(self, destinations: Iterable[str], what: str) -> list[str]:
        targets = []
        seen = set()
        for destination in destinations:
            if destination in seen or destination == self.server_name:
                continue
            seen.add(destination)
            if not self.is_allowed(destination):
                logger.debug("federation: not sending %s to %s: not allowed", what, destination)
                continue
            targets.append(destination)
        return targets

    def _queue(self, destination: str) -> DestinationQueue:
        queue = self._queues.get(destination)
        if queue is None:
            queue = self._queues[destination] = DestinationQueue(self._ctx, destination)
            if self._stopped:
                queue.stop()
        return queue

    def _write(self, pdus: list[NewPdu], edus: list[NewEdu]) -> defer.Deferred[None]:
        self._pending_pdus.extend(pdus)
        self._pending_edus.extend(edus)
        waiter: defer.Deferred[None] = defer.Deferred()
        self._waiters.append(waiter)
        self._schedule_flush()
        return waiter

    def _schedule_flush(self) -> None:
        if self._flush_call is None and not self._writing:
            self._flush_call = self.reactor.callLater(0, self._flush)

    def _flush(self) -> None:
        self._flush_call = None
        pdus, self._pending_pdus = self._pending_pdus, []
        edus, self._pending_edus = self._pending_edus, []
        waiters, self._waiters = self._waiters, []
        if not waiters:
            return
        destinations = sorted({p.destination for p in pdus} | {e.destination for e in edus})
        self._writing = True

        def written(_: object) -> None:
            self._writing = False
            for destination in destinations:
                self._queue(destination).notify_new_data()
            for waiter in waiters:
                waiter.callback(None)
            if self._waiters:
                self._schedule_flush()

        def failed(failure: Any) -> None:
            self._writing = False
            logger.error("federation: could not queue %d PDUs and %d EDUs: %s", len(pdus),
                         len(edus), failure.getErrorMessage())
            for waiter in waiters:
                waiter.errback(failure)
            if self._waiters:
                self._schedule_flush()

        self.store.enqueue(pdus, edus, self.clock.time_ms()).addCallbacks(written, failed)
