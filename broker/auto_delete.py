"""Auto-delete messages are redacted for everyone once their lifetime has passed.

A message tagged ``auto_delete`` is stored with the time it is due (``event_expiry``, written in
the event's transaction).  Every ``check_seconds`` on the node's clock the job takes the due
messages, ``batch`` at a time, and redacts each in its sender's name: the sender's own node
signs the redaction, which the auth rules accept from a joined member for their own event
whatever the room's redact level, and other servers apply since sender and redaction come from
the same server.  Applying a redaction prunes the stored event (its content is gone from the
database) and deletes its row, in one transaction; so after a restart the job resumes with what
is still due.  A message whose sender has left the room (or whose room is gone) cannot be
redacted so; its row is dropped and counted (:attr:`AutoDelete.not_redacted`).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from twisted.internet import defer, task

from broker.errors import DomainError
from storage.event_expiry import DueMessage, EventExpiryStore

if TYPE_CHECKING:
    from broker.rooms.service import Rooms

logger = logging.getLogger(__name__)

REASON = "Auto-delete: the message's lifetime has passed"
# Batches taken in one check at most (the rest waits for the next check).
MAX_BATCHES = 10

Redact = Callable[[DueMessage, str], Awaitable[Any]]


class AutoDelete:
    def __init__(self, store: EventExpiryStore, redact: Redact, clock: Any,
                 check_seconds: int, batch: int) -> None:
        """``redact(message, reason)``: redact a message in its sender's name (raises a
        domain error when that cannot be done)."""
        self.store = store
        self.redact = redact
        self.clock = clock
        self.check_seconds = check_seconds
        self.batch = batch
        self.redacted = 0
        self.not_redacted = 0
        self._loop: task.LoopingCall | None = None

    def start(self, reactor: Any) -> None:
        """Check now (messages that fell due while the node was stopped) and then every
        ``check_seconds``."""
        self._loop = task.LoopingCall(lambda: defer.ensureDeferred(self._check()))
        self._loop.clock = reactor
        self._loop.start(self.check_seconds, now=True)

    def stop(self) -> None:
        if self._loop is not None and self._loop.running:
            self._loop.stop()

    async def _check(self) -> None:
        try:
            await self.delete_due()
        except Exception:  # the loop must keep running; the rows wait for the next check
            logger.exception("deleting due auto-delete messages failed")

    async def delete_due(self) -> int:
        """Redact the messages due now, up to MAX_BATCHES batches; how many were redacted."""
        done = 0
        for _ in range(MAX_BATCHES):
            due = await self.store.due(self.clock.time_ms(), self.batch)
            undeletable = []
            for message in due:
                try:
                    await self.redact(message, REASON)
                except DomainError as e:
                    logger.warning("auto-delete of %s in %s by %s not possible: %s",
                                   message.event_id, message.room_id, message.sender,
                                   e.message)
                    undeletable.append(message.event_id)
                else:
                    done += 1
            if undeletable:
                self.not_redacted += len(undeletable)
                await self.store.drop(undeletable)
            if len(due) < self.batch:
                break
        self.redacted += done
        return done


def redact_in_sender_name(rooms: Rooms) -> Redact:
    """The job's ``redact``: a redaction of the message sent by its sender through the room
    writer (so it is federated like any of the sender's events)."""
    async def redact(message: DueMessage, reason: str) -> None:
        await rooms.send(message.room_id, message.sender, "m.room.redaction",
                         {"reason": reason}, redacts=message.event_id)

    return redact
