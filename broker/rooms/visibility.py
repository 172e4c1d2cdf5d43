"""History visibility: which past events of a room a user may read.

Per ``m.room.history_visibility`` in force at each event: ``world_readable`` and ``shared``
events are readable by members; ``invited`` events only if the user was invited or joined at
that point; ``joined`` events only if the user was joined at that point.  The user's own
membership events are always readable.  Positions come from the stream, so one query for the
user's membership changes and one for the room's visibility changes serve a whole page.
"""

from __future__ import annotations

import bisect
from collections.abc import Collection, Mapping
from typing import TYPE_CHECKING, Any

from broker.errors import Forbidden
from protocol.events import Event
from protocol.redaction import prune_event_dict

if TYPE_CHECKING:
    from broker.retention import Retention
    from broker.rooms.live_room import LiveRoom
    from storage.events import EventStore
    from storage.stream import StreamIdGenerator


class HistoryFilter:
    def __init__(self, memberships: Mapping[str, list[tuple[int, str]]],
                 visibilities: list[tuple[int, str]]) -> None:
        self._member_at = {user: [p for p, _ in changes] for user, changes in memberships.items()}
        self._members = {user: [m for _, m in changes] for user, changes in memberships.items()}
        self._vis_at = [p for p, _ in visibilities]
        self._vis = [v for _, v in visibilities]

    @staticmethod
    def _value_at(positions: list[int], values: list[str], position: int,
                  default: str) -> str:
        index = bisect.bisect_right(positions, position) - 1
        return values[index] if index >= 0 else default

    def _membership_at(self, user_id: str, position: int) -> str:
        return self._value_at(self._member_at.get(user_id, []), self._members.get(user_id, []),
                              position, "leave")

    def allows(self, event: Event, user_id: str) -> bool:
        return self.allows_any(event, (user_id,))

    def allows_any(self, event: Event, user_ids: Collection[str]) -> bool:
        """Whether any of the users may read the event (a server reads what its users may)."""
        if event.type == "m.room.member" and event.state_key in user_ids:
            return True
        position = int(event.unsigned.get("stream_ordering", 0))
        # The visibility in force when the event was sent (a change applies after itself).
        visibility = self._value_at(self._vis_at, self._vis, position - 1, "shared")
        if visibility in ("world_readable", "shared"):
            return True
        allowed = ("invite", "join") if visibility == "invited" else ("join",)
        return any(self._membership_at(user, position) in allowed for user in user_ids)

    def filter(self, events: list[Event], user_id: str) -> list[Event]:
        return [e for e in events if self.allows(e, user_id)]


def restricts_history(room: LiveRoom) -> bool:
    """Whether the room limits, or once limited, history to invited or joined members (only
    then is the per-event check worth its query)."""
    event = room.state.get(("m.room.history_visibility", ""))
    if event is None:
        return False
    current = event.content.get("history_visibility", "shared")
    return current in ("invited", "joined") or event.unsigned.get("replaces_state") is not None


class Visibility:
    """What a user may read of a room's history (their departure and history visibility)."""

    def __init__(self, events: EventStore, stream: StreamIdGenerator, retention: Retention
                 ) -> None:
        self.events = events
        self.stream = stream
        self.retention = retention

    async def history_filter(self, room_id: str, user_id: str) -> HistoryFilter:
        memberships, visibilities = await self.events.get_visibility_changes(room_id, [user_id])
        return HistoryFilter(memberships, visibilities)

    async def history_filters(self, room_ids: list[str],
                              user_id: str) -> dict[str, HistoryFilter]:
        """:meth:`history_filter` of several rooms, read in one batch."""
        if not room_ids:
            return {}
        changes = await self.events.get_visibility_changes_in_rooms(room_ids, [user_id])
        return {room_id: HistoryFilter(memberships, visibilities)
                for room_id, (memberships, visibilities) in changes.items()}

    async def readable_until(self, room: LiveRoom, user_id: str) -> int:
        """The newest stream position the user may read in the room: everything for members,
        up to their departure for those who left or were banned; Forbidden for anyone else."""
        membership = room.membership_of(user_id)
        if membership == "join":
            return self.stream.current_token()
        if membership in ("leave", "ban"):
            leave = room.state[("m.room.member", user_id)]
            position = leave.unsigned.get("stream_ordering")
            if position is None:
                position = await self.events.get_stream_ordering(leave.event_id)
            return int(position or 0)
        raise Forbidden(f"User {user_id} is not in room {room.room_id}")

    async def may_read(self, room: LiveRoom, user_id: str, event: Event) -> bool:
        """Whether the user may read one event of the room."""
        if int(event.unsigned.get("stream_ordering", 0)) > \
                await self.readable_until(room, user_id):
            return False
        if restricts_history(room):
            return (await self.history_filter(room.room_id, user_id)).allows(event, user_id)
        return True

    async def pdus_for_server(self, room: LiveRoom, server_name: str,
                              events: list[Event]) -> list[dict[str, Any]]:
        """The events as a server may receive them: whole where the history visibility at
        the event lets one of its users read it, redacted otherwise; an event expired under
        the room's retention policy is redacted whatever the visibility (the server keeps the
        room's DAG whole, but not the content), on the clock the client reads use."""
        if not events:
            return []
        expired = self.retention.expired_ids(room.state, events)
        if restricts_history(room):
            users = users_of_server(room, server_name)
            memberships, visibilities = await self.events.get_visibility_changes(
                room.room_id, users)
            visible = HistoryFilter(memberships, visibilities)
            expired |= {e.event_id for e in events if not visible.allows_any(e, users)}
        return [prune_event_dict(room.room_version, e.pdu) if e.event_id in expired else e.pdu
                for e in events]


def users_of_server(room: LiveRoom, server_name: str) -> set[str]:
    """The server's users that ever had a membership in the room."""
    return {key for kind, key in room.state
            if kind == "m.room.member" and key.partition(":")[2] == server_name}
