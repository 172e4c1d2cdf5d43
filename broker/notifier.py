"""Wakes exactly the long-polling /sync requests that care about a change.

Writers call :meth:`Notifier.notify` after a change is persisted, naming the users and/or rooms it
concerns; a room is expanded to its joined (and invited) local members through the
``room_members`` function the node supplies at wiring time.  Sync requests wait with
:meth:`wait_for_user`, which resolves on the first relevant change or at the timeout.

Waking never runs inside the writer's call: the waiters a change concerns are queued and woken
in slices, each after an I/O pass of the reactor, so the writer (the sender of a message) has
its answer on the wire before the first member is woken, and a room of thousands of members
does not hold the reactor: other requests are read and answered between the slices.  A slice
wakes at most ``wake_batch`` waiters and stops early once it has run for ``wake_budget_s``
(each woken /sync builds and writes its answer inside the slice, so the budget bounds how long
an unrelated request can wait for the reactor).

The last position that concerned each user and room is kept for at most ``positions`` users
(and as many rooms): the oldest are forgotten first, and for a key it no longer knows the
notifier answers "changed" for any position before the newest one it forgot (its low-water
mark), as it does for positions before the node started.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

from twisted.internet import defer

#: Waiters woken per reactor turn.
DEFAULT_WAKE_BATCH = 100
#: How long one slice of wake-ups may run (seconds of the process's time, not the clock's).
DEFAULT_WAKE_BUDGET_S = 0.005
#: Users (and rooms) whose last change position is remembered.
DEFAULT_POSITIONS = 100_000


class ChangePositions:
    """The last stream position that concerned each key, for at most ``budget`` keys (the
    least recently changed are forgotten first)."""

    def __init__(self, budget: int) -> None:
        if budget < 1:
            raise ValueError("the budget must be at least 1")
        self.budget = budget
        #: The newest position forgotten: any key may have changed at or before it.
        self.low_water = 0
        self._last: dict[str, int] = {}

    def record(self, key: str, position: int) -> None:
        # Re-inserted at the end: the dict's order is the order of the changes.
        self._last[key] = max(position, self._last.pop(key, 0))
        while len(self._last) > self.budget:
            oldest = next(iter(self._last))
            self.low_water = max(self.low_water, self._last.pop(oldest))

    def changed_since(self, key: str, position: int) -> bool:
        last = self._last.get(key)
        if last is not None:
            return last > position
        return position < self.low_water

    def __len__(self) -> int:
        return len(self._last)


class Notifier:
    def __init__(self, clock: Any, room_members: Callable[[str], Iterable[str]], *,
                 wake_batch: int = DEFAULT_WAKE_BATCH,
                 wake_budget_s: float = DEFAULT_WAKE_BUDGET_S,
                 positions: int = DEFAULT_POSITIONS,
                 timer: Callable[[], float] = time.perf_counter) -> None:
        """``timer`` measures how long a slice has run (real elapsed time: the work of waking
        takes it, whatever the clock says)."""
        if wake_batch < 1:
            raise ValueError("wake_batch must be at least 1")
        if wake_budget_s <= 0:
            raise ValueError("wake_budget_s must be positive")
        self.clock = clock
        self._room_members = room_members
        self.wake_batch = wake_batch
        self.wake_budget_s = wake_budget_s
        self._timer = timer
        self._waiters: dict[str, set[defer.Deferred[None]]] = {}
        self._to_wake: deque[defer.Deferred[None]] = deque()
        self._waking = False
        # The last stream position that concerned each user / room, so /sync can tell in
        # memory whether anything changed since a token.  Positions before the node started
        # are unknown: callers compare against ``start_position`` for those.
        self.start_position = 0
        self._user_changed = ChangePositions(positions)
        self._room_changed = ChangePositions(positions)
        self._room_data_changed = ChangePositions(positions)

    def notify(self, users: Iterable[str] = (), rooms: Iterable[str] = (),
               position: int | None = None, *, room_data: bool = False) -> None:
        """Queue the wake-up of the syncs of ``users`` and of the local members of ``rooms``;
        ``position`` records the stream position of the change for
        :meth:`user_changed_since`.  ``room_data`` marks a change to a room other than an
        event (a receipt)."""
        users = list(users)
        rooms = list(rooms)
        if position is not None:
            for user_id in users:
                self._user_changed.record(user_id, position)
            for room_id in rooms:
                self._room_changed.record(room_id, position)
                if room_data:
                    self._room_data_changed.record(room_id, position)
        targets = set(users)
        for room_id in rooms:
            targets.update(self._room_members(room_id))
        for user_id in targets:
            waiters = self._waiters.pop(user_id, None)
            if waiters:
                self._to_wake.extend(waiters)
        if self._to_wake and not self._waking:
            self._waking = True
            self.clock.call_later(0, self._after_io)

    def _after_io(self) -> None:
        """Start waking on the turn after this one.  A call scheduled from a timed call runs
        only after the reactor's next I/O pass; one scheduled from a thread's result or an I/O
        handler (where a writer notifies) may run before it, ahead of the writer's answer."""
        self.clock.call_later(0, self._wake_slice)

    def _wake_slice(self) -> None:
        """Wake up to ``wake_batch`` queued waiters, for at most ``wake_budget_s``; the rest on
        the next reactor turn."""
        to_wake = self._to_wake
        timer = self._timer
        ends = timer() + self.wake_budget_s
        for _ in range(min(self.wake_batch, len(to_wake))):
            d = to_wake.popleft()
            if not d.called:  # its timeout may have fired meanwhile
                d.callback(None)
                if timer() >= ends:
                    break
        if to_wake:
            self.clock.call_later(0, self._wake_slice)
        else:
            self._waking = False

    def user_changed_since(self, user_id: str, position: int) -> bool:
        """Whether a user-specific change (account data, private receipts, membership...)
        happened after ``position``."""
        if position < self.start_position:
            return True
        return self._user_changed.changed_since(user_id, position)

    def room_changed_since(self, room_id: str, position: int) -> bool:
        if position < self.start_position:
            return True
        return self._room_changed.changed_since(room_id, position)

    def room_data_changed_since(self, room_id: str, position: int) -> bool:
        """Whether something other than an event (a receipt) changed in the room."""
        if position < self.start_position:
            return True
        return self._room_data_changed.changed_since(room_id, position)

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
        """Syncs waiting for news (not those already queued to be woken)."""
        return sum(len(w) for w in self._waiters.values())

    def waking_count(self) -> int:
        """Syncs queued to be woken on the coming reactor turns."""
        return sum(1 for d in self._to_wake if not d.called)
