"""Official groups hold verified users only, also after a user stops being one: a user whose
verification is revoked, ends in a refresh (a ``broker`` command in another process) or
expires is removed from every official group they are joined to or invited to, on this node
and on others (a group another node created, which that node cannot take them out of).  Before
that, the user's join is restated without attestation in every room shared with other servers
(:meth:`broker.rooms.service.Rooms.restate_memberships`), so the other nodes learn at once that
the user is public.

A revocation is acted on at once (the class cache tells :meth:`OfficialMembers.lost`); an
expiry, which nothing writes, is found by a check every ``CHECK_SECONDS`` on the node's clock;
at start, every user whose attestation changed while the node was stopped is restated
(:meth:`broker.restatements.AttestedUsers.check_at_start`, in a group or not), then every
official group's local members are checked once (a revocation made while the node was
stopped).  Each restatement is recorded (:meth:`~broker.restatements.AttestedUsers.restated`),
so that the next start restates only what changed after it.
Either way the user is out within a minute.  The removal is a leave in the user's name with a
reason: the node speaks for its own users, and the Matrix auth rules always allow it (a kick
needs a sender joined with more power than the user, which no account of the node holds in
every group: a room creator of room version 12 outranks everyone).  A deactivated account
leaves every room (``Node._account_ended``).
"""

from __future__ import annotations

import logging
from typing import Any

from twisted.internet import defer, task

from broker.admin.classes import VERIFIED, UserClasses
from broker.errors import Forbidden
from broker.restatements import AttestedUsers
from broker.rooms.room_kind import GROUP_EVENT, declares_official
from broker.rooms.service import Rooms
from storage.state import StateStore

logger = logging.getLogger(__name__)

CHECK_SECONDS = 30.0
MEMBERSHIPS = ("join", "invite")
REASON = "Official groups admit verified users only, and this user's verification has ended"


class OfficialMembers:
    def __init__(self, rooms: Rooms, state: StateStore, classes: UserClasses, clock: Any,
                 attested: AttestedUsers) -> None:
        self.rooms = rooms
        self.attested = attested  # what the node last attested of each user, kept
        self.state = state
        self.classes = classes
        self.clock = clock
        self._checked_ms = clock.time_ms()
        self._loop: task.LoopingCall | None = None
        classes.on_lost(self.lost)

    def start(self, reactor: Any) -> None:
        """Check expiries every CHECK_SECONDS; the first check also takes the verifications
        that expired while the node was not running.  In the background: restate the users
        whose attestation changed while the node was stopped, then check the official
        groups' members."""
        self._checked_ms = 0
        self._loop = task.LoopingCall(lambda: defer.ensureDeferred(self.check_expired()))
        self._loop.clock = reactor
        self._loop.start(CHECK_SECONDS, now=False)
        d = defer.ensureDeferred(self.check_at_start())  # in the background
        d.addErrback(lambda f: logger.error("the checks at start of attestations and official"
                                            " groups' members failed: %s",
                                            f.getErrorMessage()))

    async def check_at_start(self) -> None:
        await self.attested.check_at_start()
        await self.check_members()

    def stop(self) -> None:
        if self._loop is not None and self._loop.running:
            self._loop.stop()

    async def check_members(self) -> list[str]:
        """Take every local member of an official group who is not verified now out of it
        (at start: a revocation made while the node was stopped); who they were."""
        found = await self.state.members_of_rooms_with(GROUP_EVENT, MEMBERSHIPS)
        users = sorted({user_id for _room_id, user_id in found
                        if self.rooms.is_mine(user_id)
                        and self.classes.class_of(user_id) != VERIFIED})
        for user_id in users:
            await self._remove_quietly(user_id)
        return users

    def lost(self, user_id: str) -> None:
        """The user's verification ended: remove them (in the background)."""
        if self.rooms.is_mine(user_id):
            defer.ensureDeferred(self._remove_quietly(user_id))

    async def check_expired(self) -> list[str]:
        """Remove the users whose verification expired since the last check; who they are."""
        now = self.clock.time_ms()
        users = self.classes.expired_between(self._checked_ms, now)
        self._checked_ms = now
        for user_id in users:
            await self._remove_quietly(user_id)
        return users

    async def _remove_quietly(self, user_id: str) -> None:
        try:
            await self.remove(user_id)
        except Exception:  # the next change or check tries again; the node keeps running
            logger.exception("removing %s from official groups failed", user_id)

    async def remove(self, user_id: str) -> list[str]:
        """Take a user who is not verified now out of the official groups they are joined or
        invited to; the rooms they left."""
        if self.classes.class_of(user_id) == VERIFIED:
            return []  # verified again meanwhile
        # First the other servers learn that the user is public (a join without attestation
        # in every room shared with them), so that none admits them on what it held before.
        restated = await self.rooms.restate_memberships(user_id)
        await self.attested.restated(user_id)
        if restated:
            logger.info("%s's membership restated without attestation in %d rooms", user_id,
                        len(restated))
        left = []
        rooms = await self.rooms.user_rooms.rooms_for_user(user_id)
        for room_id, membership in list(rooms.items()):
            if membership not in MEMBERSHIPS:
                continue
            room = await self.rooms.registry.get(room_id)
            if room is None or not declares_official(room):
                continue
            try:
                await self.rooms.send(room_id, user_id, "m.room.member",
                                      {"membership": "leave", "reason": REASON},
                                      state_key=user_id)
            except Forbidden:
                continue  # left meanwhile (a deactivation leaves every room too)
            logger.info("%s removed from official group %s: verification ended", user_id,
                        room_id)
            left.append(room_id)
        return left
