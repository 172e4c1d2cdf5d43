"""The job that carries a broadcast to its recipients: :data:`BATCH` recipients at a time (in
the order they were fixed), each batch through :meth:`broker.notice_rooms.NoticeRooms.deliver`
(which works in slices and lets the reactor serve others between them), then the batch's
rooms, events and the count done are written in one transaction.  A node that stops halfway
goes on at start from the first recipient not written as reached (one whose message was sent
but not yet written gets it again: at least once).  A recipient whose room cannot be used is
written as reached by no room (``room_id`` ""), counted as failed."""

from __future__ import annotations

import logging
from typing import Any

from twisted.internet import defer
from twisted.python.failure import Failure

from broker.admin.permissions import BROADCASTS_SEND
from broker.notice_rooms import BROADCAST, NoticeRooms
from storage.audit import Change
from storage.broadcasts import BroadcastRow, BroadcastStore, Sent

logger = logging.getLogger(__name__)

BATCH = 500


class BroadcastJobs:
    def __init__(self, store: BroadcastStore, notice_rooms: NoticeRooms, clock: Any,
                 batch: int = BATCH) -> None:
        self.store = store
        self.notice_rooms = notice_rooms
        self.clock = clock
        self.batch = batch
        self.running: dict[str, defer.Deferred[None]] = {}

    async def resume(self) -> int:
        """Go on with every broadcast a stop interrupted (at start); how many."""
        unfinished = await self.store.unfinished()
        for row in unfinished:
            self.start(row)
        return len(unfinished)

    def changes_seen(self, changes: list[Change]) -> None:
        """A broadcast sent by another process (a command): reach its recipients here."""
        if any(c.action == BROADCASTS_SEND for c in changes):
            defer.ensureDeferred(self.resume()).addErrback(
                lambda f: logger.error("looking for broadcasts to send failed: %s", f.value))

    def start(self, row: BroadcastRow) -> None:
        if row.broadcast_id in self.running:
            return
        d = defer.ensureDeferred(self._run(row))
        self.running[row.broadcast_id] = d

        def finished(result: Any) -> None:
            self.running.pop(row.broadcast_id, None)
            if isinstance(result, Failure):
                logger.error("broadcast %s stopped (it goes on at the next start): %s",
                             row.broadcast_id, result.getErrorMessage())

        d.addBoth(finished)

    async def _run(self, row: BroadcastRow) -> None:
        done = row.done
        while True:
            pending = await self.store.pending(row.broadcast_id, self.batch)
            if not pending:
                await self.store.progress(row.broadcast_id, [], done, self.clock.time_ms())
                logger.info("broadcast %s reached its %d recipients", row.broadcast_id, done)
                return
            delivered = await self.notice_rooms.deliver(
                row.sender, [user for _, user in pending], kind=BROADCAST,
                name=row.room_name, leave_allowed=row.leave_allowed, content=row.content)
            reached = {d.recipient: d for d in delivered}
            sent = [Sent(seq, found.room_id, found.event_id, found.stream_ordering)
                    if (found := reached.get(user)) is not None else Sent(seq, "", "", None)
                    for seq, user in pending]
            done += len(sent)
            await self.store.progress(row.broadcast_id, sent, done, None)
