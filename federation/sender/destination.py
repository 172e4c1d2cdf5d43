"""One destination's transmission loop: one transaction in flight, back-off, catch-up.

A :class:`DestinationQueue` is idle, running (reading a batch, sending it, acknowledging it) or
backing off (a timer is set).  While running it repeatedly takes the oldest pending PDUs (<= 50)
and persistent EDUs (<= 100) from the store, fills the EDU slots left with ephemeral EDUs held in
memory, and sends them as one transaction.  It stops when nothing is pending.  At most one batch
per destination is ever loaded, so a destination that was down for a day is caught up in
batches, never all at once.

Ephemeral EDUs (typing, receipts...) live only here.  One with a key replaces a pending one with
the same type and key.  They are not kept while the destination is backing off, and are dropped
when a transaction carrying them fails: by the time the destination is back they are stale.
"""

from __future__ import annotations

import logging
import random
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol

from twisted.internet import defer

from federation.sender import policy
from storage.federation_queue import Batch, DestinationState, FederationQueueStore

logger = logging.getLogger(__name__)

JsonDict = dict[str, Any]
# Returns a Deferred (or is a coroutine function) firing with the parsed 200 answer.
SendTransaction = Callable[[str, str, JsonDict], "defer.Deferred[Any] | Awaitable[Any]"]


class Clock(Protocol):
    def time_ms(self) -> int: ...


@dataclass
class QueueContext:
    """What every destination queue shares with the sender."""

    store: FederationQueueStore
    send_transaction: SendTransaction
    server_name: str
    clock: Clock
    reactor: Any
    is_allowed: Callable[[str], bool]
    next_txn_id: Callable[[], str]
    rng: random.Random
    request_timeout_s: float
    max_ephemeral: int = policy.MAX_PENDING_EPHEMERAL_EDUS
    # Entries queued longer ago than this (ms) are never sent (None: no maximum age).
    max_age_ms: int | None = None
    # The PDUs of a transaction as they leave (the node prunes those expired by retention).
    outgoing_pdus: Callable[[list[JsonDict]], list[JsonDict]] | None = None
    # Told each transaction the destination took: it, how many PDUs and EDUs it carried.
    delivered: Callable[[str, int, int], None] | None = None

    def queued_since(self) -> int | None:
        """The oldest queue time an entry may have and still be sent now."""
        return None if self.max_age_ms is None else self.clock.time_ms() - self.max_age_ms


class DestinationQueue:
    """Delivery to one destination server."""

    def __init__(self, ctx: QueueContext, destination: str) -> None:
        self.ctx = ctx
        self.destination = destination
        self._state: DestinationState | None = None  # loaded on first run
        self._running = False
        self._timer: Any = None
        self._new_data = False
        self._skip_backoff = False
        self._stopped = False
        self._ephemeral: OrderedDict[tuple[str, str | int], tuple[str, JsonDict]] = OrderedDict()
        self._unkeyed_serial = 0
        # Catch-up statistics after a recovery, for the "caught up" log line.
        self._recovering = False
        self._recovered_pdus = 0
        self._recovered_edus = 0
        self._recovered_txns = 0

    # -- what the sender calls ------------------------------------------------------------------
    @property
    def backing_off(self) -> bool:
        return self._timer is not None

    @property
    def running(self) -> bool:
        return self._running

    @property
    def failure_count(self) -> int:
        return self._state.failure_count if self._state else 0

    def pending_ephemeral(self) -> int:
        return len(self._ephemeral)

    def resume(self, state: DestinationState) -> None:
        """Start after a restart, honouring the persisted back-off."""
        if self._state is None:
            self._state = state
        self.notify_new_data()

    def notify_new_data(self) -> None:
        """Something was queued for this destination (or it may have been)."""
        self._new_data = True
        if not self._running and self._timer is None and not self._stopped:
            self._start()

    def add_ephemeral(self, edu_type: str, content: JsonDict, key: str | None) -> bool:
        """Hold an ephemeral EDU for the next transaction; False if dropped (backing off)."""
        if self._timer is not None or self._stopped:
            return False
        slot: tuple[str, str | int]
        if key is None:
            self._unkeyed_serial += 1
            slot = ("", self._unkeyed_serial)
        else:
            slot = (edu_type, key)
            self._ephemeral.pop(slot, None)
        self._ephemeral[slot] = (edu_type, content)
        while len(self._ephemeral) > self.ctx.max_ephemeral:
            self._ephemeral.popitem(last=False)
        self.notify_new_data()
        return True

    def wake(self) -> None:
        """The destination is probably up (it talked to us): retry now instead of waiting."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._skip_backoff = True
        self.notify_new_data()

    def stop(self) -> None:
        self._stopped = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    # -- the loop ---------------------------------------------------------------------------------
    def _start(self) -> None:
        self._running = True
        d = defer.ensureDeferred(self._run())
        d.addErrback(self._crashed)

    def _crashed(self, failure: Any) -> None:
        # A store error (database unavailable...): nothing was acknowledged, so try again later.
        logger.error("federation queue for %s failed: %s", self.destination,
                     failure.getTraceback())
        self._running = False
        if not self._stopped:
            self._schedule(policy.MIN_RETRY_INTERVAL_MS)

    def _schedule(self, delay_ms: int) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = self.ctx.reactor.callLater(delay_ms / 1000.0, self._retry_due)

    def _retry_due(self) -> None:
        self._timer = None
        self._skip_backoff = True
        self.notify_new_data()

    async def _run(self) -> None:
        try:
            await self._loop()
        finally:
            self._running = False

    async def _loop(self) -> None:
        ctx = self.ctx
        if self._state is None:
            self._state = (await ctx.store.get_destination(self.destination)
                           or DestinationState(self.destination))
        due = self._state.retry_due_ts()
        now = ctx.clock.time_ms()
        if due > now and not self._skip_backoff:
            self._ephemeral.clear()
            self._schedule(due - now)
            return
        self._skip_backoff = False
        while not self._stopped:
            if not ctx.is_allowed(self.destination):
                await self._purge()
                return
            self._new_data = False
            batch = await ctx.store.get_batch(
                self.destination, policy.MAX_PDUS_PER_TRANSACTION,
                policy.MAX_EDUS_PER_TRANSACTION, ctx.queued_since(),
            )
            ephemeral = self._take_ephemeral(policy.MAX_EDUS_PER_TRANSACTION - len(batch.edus))
            if not batch and not ephemeral:
                if self._new_data:
                    continue
                self._finish_recovery()
                return
            if not await self._send(batch, ephemeral):
                return

    def _take_ephemeral(self, limit: int) -> list[tuple[str, JsonDict]]:
        taken: list[tuple[str, JsonDict]] = []
        while self._ephemeral and len(taken) < limit:
            taken.append(self._ephemeral.popitem(last=False)[1])
        return taken

    async def _send(self, batch: Batch, ephemeral: Sequence[tuple[str, JsonDict]]) -> bool:
        """Send one transaction; True to carry on, False when backing off."""
        ctx = self.ctx
        txn_id = ctx.next_txn_id()
        edus = [{"edu_type": e.edu_type, "content": e.content} for e in batch.edus]
        edus += [{"edu_type": edu_type, "content": content} for edu_type, content in ephemeral]
        body: JsonDict = {
            "origin": ctx.server_name,
            "origin_server_ts": ctx.clock.time_ms(),
            "pdus": self._outgoing([p.pdu for p in batch.pdus]),
            "edus": edus,
        }
        try:
            d = defer.maybeDeferred(ctx.send_transaction, self.destination, txn_id, body)
            d.addTimeout(ctx.request_timeout_s, ctx.reactor)
            response = await d
        except Exception as exc:  # connection errors, HTTP errors, timeouts
            return await self._failed(policy.classify(exc), batch, txn_id)
        self._log_rejected_pdus(txn_id, response)
        await self._acknowledge(batch)
        if ctx.delivered is not None:
            ctx.delivered(self.destination, len(body["pdus"]), len(edus))
        if self._recovering:
            self._recovered_pdus += len(batch.pdus)
            self._recovered_edus += len(edus)
            self._recovered_txns += 1
        return True

    def _outgoing(self, pdus: list[JsonDict]) -> list[JsonDict]:
        hook = self.ctx.outgoing_pdus
        return hook(pdus) if hook is not None and pdus else pdus

    async def _acknowledge(self, batch: Batch) -> None:
        assert self._state is not None
        ctx = self.ctx
        was_failing = self._state.failure_count > 0 or self._state.retry_interval_ms > 0
        pdu_positions = [p.position for p in batch.pdus]
        edu_positions = [e.position for e in batch.edus]
        if pdu_positions or edu_positions or was_failing:
            await ctx.store.ack_transaction(self.destination, pdu_positions, edu_positions)
        highest = max([*pdu_positions, *edu_positions], default=0)
        failures = self._state.failure_count
        self._state = replace(
            self._state, failure_count=0, retry_last_ts=0, retry_interval_ms=0,
            last_acked_position=max(self._state.last_acked_position, highest),
        )
        if failures > 0:
            pdus, persistent_edus = await ctx.store.pending_counts(self.destination)
            logger.info(
                "federation: %s is back after %d failed attempts; %d PDUs and %d persistent"
                " EDUs still to send", self.destination, failures, pdus, persistent_edus,
            )
            self._recovering = True
            self._recovered_pdus = self._recovered_edus = self._recovered_txns = 0

    def _finish_recovery(self) -> None:
        if self._recovering:
            logger.info(
                "federation: caught up with %s: %d PDUs and %d EDUs in %d transactions",
                self.destination, self._recovered_pdus, self._recovered_edus,
                self._recovered_txns,
            )
            self._recovering = False

    async def _failed(self, failure: policy.Failure, batch: Batch, txn_id: str) -> bool:
        assert self._state is not None
        ctx = self.ctx
        self._ephemeral.clear()
        if failure.kind is policy.FailureKind.REJECTED:
            logger.warning(
                "federation: %s refused transaction %s (%s); dropping its %d PDUs %s and %d"
                " persistent EDUs", self.destination, txn_id, failure.description,
                len(batch.pdus), [p.event_id for p in batch.pdus], len(batch.edus),
            )
            await self._acknowledge(batch)
            return True
        now = ctx.clock.time_ms()
        failures = self._state.failure_count
        if failure.kind is policy.FailureKind.RATE_LIMITED and failure.retry_after_ms is not None:
            delay = failure.retry_after_ms
        else:
            failures += 1
            delay = policy.backoff_interval_ms(failures, ctx.rng)
        self._state = replace(self._state, retry_last_ts=now, retry_interval_ms=delay,
                              failure_count=failures)
        await ctx.store.set_retry(self.destination, now, delay, failures)
        self._recovering = False
        if failure.kind is policy.FailureKind.RATE_LIMITED:
            logger.info("federation: %s rate-limited transaction %s; retrying in %.1f s",
                        self.destination, txn_id, delay / 1000)
        elif failures == 1:
            pdus, persistent_edus = await ctx.store.pending_counts(self.destination)
            logger.info(
                "federation: %s is down (%s); %d PDUs and %d persistent EDUs pending;"
                " retrying in %.1f s", self.destination, failure.description, pdus,
                persistent_edus, delay / 1000,
            )
        else:
            logger.debug("federation: %s still down after %d attempts (%s); retrying in %.1f s",
                         self.destination, failures, failure.description, delay / 1000)
        if not self._stopped:
            self._schedule(delay)
        return False

    def _log_rejected_pdus(self, txn_id: str, response: Any) -> None:
        results = response.get("pdus") if isinstance(response, dict) else None
        if not isinstance(results, dict):
            return
        for event_id, result in results.items():
            if isinstance(result, dict) and "error" in result:
                logger.warning("federation: %s rejected PDU %s in transaction %s: %s",
                               self.destination, event_id, txn_id, result["error"])

    async def _purge(self) -> None:
        self._ephemeral.clear()
        pdus, edus = await self.ctx.store.purge_destination(self.destination)
        if pdus or edus:
            logger.warning(
                "federation: %s is no longer allowed; dropped %d queued PDUs and %d EDUs",
                self.destination, pdus, edus,
            )
