"""Other servers learn at once that one of this node's users became verified: the user's join
is restated, now with the node's attestation, in every room they share with other servers
(:meth:`broker.rooms.service.Rooms.restate_memberships`), in the background.

A verification that ends is restated the same way by :mod:`broker.official_members`, before the
user leaves official groups.  See docs/admin/groups.md.
"""

from __future__ import annotations

import logging

from twisted.internet import defer

from broker.admin.classes import UserClasses
from broker.rooms.service import Rooms

logger = logging.getLogger(__name__)


class GainedVerifications:
    def __init__(self, rooms: Rooms, classes: UserClasses) -> None:
        self.rooms = rooms
        classes.on_gained(self.gained)

    def gained(self, user_id: str) -> None:
        if self.rooms.is_mine(user_id):
            d = defer.ensureDeferred(self.rooms.restate_memberships(user_id))
            d.addErrback(lambda f: logger.error("restating %s's memberships failed: %s",
                                                user_id, f.getErrorMessage()))
