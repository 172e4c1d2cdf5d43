"""Other servers learn of every change of what this node attests of its users: the user's join
is restated, as the node builds it now (with its attestation, or none), in every room they
share with other servers (:meth:`broker.rooms.service.Rooms.restate_memberships`), in the
background.

- A user who becomes verified (or is verified anew, for another organisation) is restated
  here when the class cache says so (also for a change another process made).
- A verification that ends while the node runs is restated by :mod:`broker.official_members`,
  before the user leaves official groups; it tells :meth:`AttestedUsers.restated` after.
- What changed while the node was stopped (a ``broker users revoke`` or ``verify`` command, a
  verification that expired meanwhile), for any user, in an official group or not, is found
  at start by :meth:`AttestedUsers.check_at_start`: the node keeps what it last attested of
  each user (``attested_users``, written after each restatement) and restates the users whose
  attestation differs now, in batches of :data:`BATCH` that yield to the reactor between them.

Nothing of it is on the send or sync path.  See docs/admin/groups.md.
"""

from __future__ import annotations

import logging
from typing import Any

from twisted.internet import defer, task

from broker.admin.classes import UserClasses
from broker.rooms.service import Rooms
from storage.attested_users import Attested, AttestedUserStore

logger = logging.getLogger(__name__)

BATCH = 100  # users restated at start between two turns of the reactor


class AttestedUsers:
    def __init__(self, rooms: Rooms, classes: UserClasses, store: AttestedUserStore,
                 clock: Any) -> None:
        self.rooms = rooms
        self.classes = classes
        self.store = store
        self.clock = clock
        classes.on_gained(self.gained)

    def attested_now(self, user_id: str) -> Attested | None:
        """What the node's joins of ``user_id`` say now: (organisation, since); None: public."""
        row = self.classes.verification(user_id)
        return None if row is None else (row.org_id, row.verified_ts)

    def gained(self, user_id: str) -> None:
        if self.rooms.is_mine(user_id):
            d = defer.ensureDeferred(self.restate(user_id))
            d.addErrback(lambda f: logger.error("restating %s's memberships failed: %s",
                                                user_id, f.getErrorMessage()))

    async def restate(self, user_id: str) -> list[str]:
        """Restate the user's joins as the node builds them now, then record it; the rooms."""
        restated = await self.rooms.restate_memberships(user_id)
        await self.restated(user_id)
        return restated

    async def restated(self, user_id: str) -> None:
        """The user's joins were restated: record what they attest now."""
        await self.store.record({user_id: self.attested_now(user_id)})

    async def check_at_start(self) -> list[str]:
        """Restate every user whose attestation changed since the node last recorded it
        (while it was stopped), :data:`BATCH` at a time; who they were.  A user whose
        restating fails is logged and tried again at the next start."""
        kept = await self.store.all()
        now = {user_id: (row.org_id, row.verified_ts)
               for user_id, row in self.classes.verified_now().items()
               if self.rooms.is_mine(user_id)}
        changed = sorted(u for u in kept.keys() | now.keys() if kept.get(u) != now.get(u))
        done: list[str] = []
        for start in range(0, len(changed), BATCH):
            if start:
                await task.deferLater(self.clock.reactor, 0, lambda: None)
            done.extend(await self._restate_batch(changed[start:start + BATCH]))
        if done:
            logger.info("restated %d users whose attestation changed while the node was"
                        " stopped", len(done))
        return done

    async def _restate_batch(self, users: list[str]) -> list[str]:
        restated = []
        for user_id in users:
            try:
                await self.rooms.restate_memberships(user_id)
            except Exception:
                logger.exception("restating %s's memberships at start failed", user_id)
                continue
            restated.append(user_id)
        await self.store.record({user_id: self.attested_now(user_id) for user_id in restated})
        return restated
