"""Who is typing in which room: in memory only, with expiry, and its own serial for /sync tokens.

Every change bumps a node-wide serial; /sync reports a room's typing users when the room's last
change is newer than the serial in the client's since-token.  The serial is reserved in the
database ahead of use, so after a restart it resumes above every serial a client may hold.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from broker.notifier import ChangePositions, Notifier
from storage.stream_reservation import Reservation

MAX_TYPING_TIMEOUT_MS = 120_000
# Rooms whose last typing change is remembered; for the others, a serial older than the newest
# forgotten change counts as "may differ" (an empty typing list is reported again).
MAX_ROOM_SERIALS = 100_000


class TypingTracker:
    def __init__(self, clock: Any, notifier: Notifier,
                 serials: Reservation | None = None, *,
                 max_room_serials: int = MAX_ROOM_SERIALS) -> None:
        self.clock = clock
        self.notifier = notifier
        self._serials = serials
        self.serial = serials.start() if serials is not None else 0
        # Who typed before this start is forgotten: a serial from then may miss an end.
        self.start_serial = self.serial
        self._typing: dict[str, dict[str, int]] = {}  # room -> user -> expiry ms
        self._room_serial = ChangePositions(max_room_serials)
        self._timers: dict[tuple[str, str], Any] = {}
        # Told each room whose typing users changed, with them (application services).
        self.listeners: list[Callable[[str, list[str]], None]] = []

    def set_typing(self, room_id: str, user_id: str, typing: bool, timeout_ms: int) -> None:
        users = self._typing.setdefault(room_id, {})
        key = (room_id, user_id)
        timer = self._timers.pop(key, None)
        if timer is not None and timer.active():
            timer.cancel()
        was_typing = user_id in users
        if typing:
            timeout_ms = max(0, min(timeout_ms, MAX_TYPING_TIMEOUT_MS))
            users[user_id] = self.clock.time_ms() + timeout_ms
            self._timers[key] = self.clock.call_later(
                timeout_ms / 1000.0, self.set_typing, room_id, user_id, False, 0)
            if not was_typing:
                self._changed(room_id)
        elif was_typing:
            del users[user_id]
            self._changed(room_id)
        if not users:
            del self._typing[room_id]

    def _changed(self, room_id: str) -> None:
        if self._serials is not None:
            self._serials.cover(self.serial + 1)
        self.serial += 1
        self._room_serial.record(room_id, self.serial)
        self.notifier.notify(rooms=[room_id])
        for listener in self.listeners:
            listener(room_id, self.typing_users(room_id))

    def typing_users(self, room_id: str) -> list[str]:
        return sorted(self._typing.get(room_id, {}))

    def changed_since(self, room_id: str, serial: int) -> bool:
        """Whether the room's typing users may differ from what a client at ``serial`` saw
        (always, for a serial from before this start)."""
        return serial < self.start_serial or self._room_serial.changed_since(room_id, serial)
