"""Wakes exactly the long-polling /sync requests that care about a change.

Writers call :meth:`Notifier.notify` after a change is persisted, naming the users and/or rooms it
concerns; a room is expanded to its joined (and invited) local members through the
``room_members`` function the node supplies at wiring time.  Sync requests wait with
:meth:`wait_for_user`, which resolves on the first relevant change or at the timeout.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from twisted.internet import defer


class Notifier:
    def __init__(self, clock: Any, room_members: Callable[[str], Iterable[str]]) -> None:
        self.clock = clock
        self._room_members = room_members
        self._waiters: dict[str, set[defer.Deferred[None]]] = {}
        # The last stream position that concerned each user / room, so /sync can tell in
        # memory whether anything changed since a token.  Positions before the node started
        # are unknown: callers compare against ``start_position`` for those.
        self.start_position = 0
        self._user_changed: dict[str, int] = {}
        self._room_changed: dict[str, int] = {}
        self._room_data_changed: dict[str, int] = {}

    def notify(self, users: Iterable[str] = (), rooms: Iterable[str] = (),
               position: int | None = None, *, room_data: bool = False) -> None:
        """Wake the syncs of ``users`` and of the local members of ``rooms``; ``position``
        records the stream position of the change for :meth:`user_changed_since`.
        ``room_data`` marks a change to a room other than an event (a receipt)."""
        users = list(users)
        rooms = list(rooms)
        if position is not None:
            for user_id in users:
                self._user_changed[user_id] = max(position, self._user_changed.get(user_id, 0))
            for room_id in rooms:
                self._room_changed[room_id] = max(position, self._room_changed.get(room_id, 0))
                if room_data:
                    self._room_data_changed[room_id] = max(
                        position, self._room_data_changed.get(room_id, 0))
        targets = set(users)
        for room_id in rooms:
            targets.update(self._room_members(room_id))
        for user_id in targets:
            waiters = self._waiters.pop(user_id, None)
            if not waiters:
                continue
            for d in waiters:
                if not d.called:
                    d.callback(None)

    def user_changed_since(self, user_id: str, position: int) -> bool:
        """Whether a user-specific change (account data, private receipts, membership...)
        happened after ``position``."""
        if position < self.start_position:
            return True
        return self._user_changed.get(user_id, 0) > position

    def room_changed_since(self, room_id: str, position: int) -> bool:
        if position < self.start_position:
            return True
        return self._room_changed.get(room_id, 0) > position

    def room_data_changed_since(self, room_id: str, position: int) -> bool:
        """Whether something other than an event (a receipt) changed in the room."""
        if position < self.start_position:
            return True
        return self._room_data_changed.get(room_id, 0) > position

    def wait_for_user(self, user_id: str, timeout_s: float) -> defer.Deferred[None]:
        """Fires with None on the next change for ``user_id`` or after ``timeout_s``."""
        d: defer.Deferred[None] = defer.Deferred()
        self._waiters.setdefault(user_id, set()).add(d)

        def expire() -> None:
            if not d.called:
                waiters = self._waiters.get(user_id)
                if waiters is not None:
                    waiters.discard(d)
                    if not waiters:
                        del self._waiters[user_id]
                d.callback(None)

        timer = self.clock.call_later(timeout_s, expire)

        def cancel_timer(result: Any) -> Any:
            if timer.active():
                timer.cancel()
            return result

        d.addBoth(cancel_timer)
        return d

    def waiting_count(self) -> int:
        return sum(len(w) for w in self._waiters.values())
