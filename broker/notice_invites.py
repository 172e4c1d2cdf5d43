"""A notice room's invite from another node, taken for the invitee: when the invite's content
carries ``in.gov.broker.notice_room`` ``{"kind": "app"|"broadcast"}`` and the inviter is a
verified user by its home node's attestation (:mod:`broker.remote_classes`, which the invite's
reception asked), the node joins its user itself, so the user sees the room's messages
without accepting anything (:mod:`broker.notice_rooms` is the sending side).  An invite with
the marker from anyone else stays an invite the user may take or decline.

The join goes through the inviting server once it holds the invite: it applies the invite after
our countersignature reaches it, so a join that fails is tried again after
:data:`RETRY_SECONDS` (each), then given up (logged; the invite stays).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from typing import Any

from twisted.internet import defer

from broker.admin.classes import VERIFIED
from broker.notice_rooms import KINDS, NOTICE_ROOM
from protocol.events import Event
from protocol.signing import server_name_of

logger = logging.getLogger(__name__)

RETRY_SECONDS = (0.0, 0.5, 2.0, 5.0, 15.0, 60.0)

Join = Callable[[str, str, list[str]], Coroutine[Any, Any, Any]]  # (room ID, user ID, servers)


def notice_kind(event: Event) -> str | None:
    """The notice room kind an invite's content states, if it is one."""
    marker = event.content.get(NOTICE_ROOM)
    kind = marker.get("kind") if isinstance(marker, dict) else None
    return kind if kind in KINDS else None


class NoticeInvites:
    def __init__(self, join: Join, class_of: Callable[[str], str], clock: Any) -> None:
        self.join = join
        self.class_of = class_of  # what the inviter's node attests of them
        self.clock = clock
        self.joined = 0  # notice rooms joined for our users
        self.passed_over = 0  # invites with the marker from inviters not verified

    def invite_kept(self, event: Event, invitee: str) -> None:
        """An invite of ``invitee`` was kept (told by the inbound invites)."""
        if notice_kind(event) is None:
            return
        if self.class_of(event.sender) != VERIFIED:
            self.passed_over += 1
            logger.info("%s invited %s to %s as a notice room but is not verified: left as an"
                        " invite", event.sender, invitee, event.room_id)
            return
        self.clock.call_later(RETRY_SECONDS[0], self._try, event.room_id, invitee,
                              server_name_of(event.sender), 0)

    def _try(self, room_id: str, user_id: str, server: str, attempt: int) -> None:
        d: defer.Deferred[Any] = defer.ensureDeferred(self.join(room_id, user_id, [server]))

        def joined(_: Any) -> None:
            self.joined += 1
            logger.info("joined %s to the notice room %s", user_id, room_id)

        def failed(failure: Any) -> None:
            if attempt + 1 >= len(RETRY_SECONDS):
                logger.warning("joining %s to the notice room %s failed, giving up: %s",
                               user_id, room_id, failure.getErrorMessage())
                return
            self.clock.call_later(RETRY_SECONDS[attempt + 1], self._try, room_id, user_id,
                                  server, attempt + 1)

        d.addCallbacks(joined, failed)
