"""Whole incremental /sync answers built once for every member who would get the same bytes.

One message into a room of thousands wakes every member's long-poll.  Most of them ask the
same question (the same since-token, filter and position) and nothing of their own changed, so
their answers are the same bytes: the first is built as usual and encoded once
(``protocol.strict_json.Encoded``), and the others get it without building anything.

An answer is shared only where it is known, from memory, to depend on nothing of the
requester beyond its key (:meth:`ResponseSharing.key`):

- nothing changed for the user since the token (account data, their memberships, invites,
  knocks, private receipts, to-device messages, their own keys: the notifier's per-user
  position), and their device has no to-device message waiting;
- every joined room that changed is in memory, holds its events of the range in its recent
  window, fewer than the timeline limit (no gap, so no state section), none sent by the
  requester (their device sees its transaction IDs) and no membership event (device lists
  are worked out per user), none hidden by retention;
- the end-to-end encryption fields are known: the device's one-time key counts are in memory
  (they are part of the key).

The key holds the tokens, the filter's canonical form, each changed room with its versions
(a redaction or a state change is another key) and the heroes the requester would see, and the
key counts.  A shared answer is used for at most :data:`broker.sync.shared.LIFETIME_MS`, so
``unsigned.age`` is as old as a shared timeline's.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from protocol.strict_json import Encoded

if TYPE_CHECKING:
    from broker.auth import Requester
    from broker.filtering import Filter
    from broker.notifier import Notifier
    from broker.retention import Retention
    from broker.rooms.live_room import LiveRoom, RoomRegistry
    from broker.sync.summary import RoomSummaries
    from broker.sync.tokens import SyncToken
    from broker.typing_tracker import TypingTracker

#: Whole answers kept (the newest).
SHARED_RESPONSES = 256

#: A reported room: (room ID, recent version, state version, the requester's heroes)
RoomPart = tuple[str, int, int, "tuple[str, ...] | None"]
#: (since, now, filter key, reported rooms, end-to-end encryption fields)
ResponseKey = tuple[str, str, str, tuple[Hashable, ...], tuple[Hashable, ...]]
#: (requester, since, now, member_events) -> what the e2ee fields depend on, or None
E2eeShareKey = Callable[["Requester", int, int, bool], "tuple[Hashable, ...] | None"]


@dataclass(frozen=True)
class SharedResponse:
    body: Encoded
    built_ms: int


def room_has_news(room: LiveRoom, since: SyncToken, notifier: Notifier,
                  typing: TypingTracker) -> bool:
    """Whether a joined room is in an incremental answer from ``since``: an event after it, a
    change the notifier saw, or its typing users.  The answer's build and its key ask the
    same question here, so they cannot come to differ."""
    return (room.last_stream > since.stream
            or notifier.room_changed_since(room.room_id, since.stream)
            or typing.changed_since(room.room_id, since.typing))


class ResponseSharing:
    """Works out the key of a requester's incremental answer, from memory."""

    def __init__(self, registry: RoomRegistry, notifier: Notifier, typing: TypingTracker,
                 summaries: RoomSummaries, retention: Retention,
                 e2ee_key: E2eeShareKey, timeline_limit: Callable[[Filter], int]) -> None:
        self.registry = registry
        self.notifier = notifier
        self.typing = typing
        self.summaries = summaries
        self.retention = retention
        self.e2ee_key = e2ee_key
        self.timeline_limit = timeline_limit

    def key(self, requester: Requester, since: SyncToken, now: SyncToken, flt: Filter,
            rooms_map: dict[str, str]) -> ResponseKey | None:
        """The key of the answer for ``requester`` (an incremental sync without
        ``full_state``), or None when it may hold something of theirs alone."""
        user_id = requester.user_id
        if self.notifier.user_changed_since(user_id, since.stream):
            return None
        rooms = self._changed_rooms(user_id, since, now, flt, rooms_map)
        if rooms is None:
            return None
        changed, member_events = rooms
        e2ee = self.e2ee_key(requester, since.stream, now.stream, member_events)
        if e2ee is None:
            return None
        return (str(since), str(now), flt.key, tuple(sorted(changed)), e2ee)

    def _changed_rooms(self, user_id: str, since: SyncToken, now: SyncToken, flt: Filter,
                       rooms_map: dict[str, str]) -> tuple[list[RoomPart], bool] | None:
        """The part of the key of each joined room the answer reports, and whether a room
        the user is in holds a membership event of the range; None if a room cannot be
        told from memory or shows something of the requester's."""
        limit = self.timeline_limit(flt)
        changed: list[RoomPart] = []
        member_events = False
        for room_id, membership in rooms_map.items():
            reported = membership == "join" and flt.allows_room(room_id)
            room_changed = self.notifier.room_changed_since(room_id, since.stream)
            room = self.registry.cached(room_id)
            if room is None:
                if reported or room_changed:
                    return None
                continue
            if reported:
                reported = room_has_news(room, since, self.notifier, self.typing)
            if not reported and not (room_changed and room.last_stream > since.stream):
                continue
            recent = room.recent_since(since.stream, now.stream)
            if recent is None:
                return None
            member_events = member_events or any(e.type == "m.room.member" for e in recent)
            if not reported:
                continue
            if len(recent) > limit or any(e.sender == user_id for e in recent) or \
                    len(self.retention.visible(room.state, recent)) != len(recent):
                return None
            heroes = self.summaries.summary(room, user_id).get("m.heroes")
            changed.append((room_id, room.recent_version, room.state_version,
                            tuple(heroes) if heroes is not None else None))
        return changed, member_events
