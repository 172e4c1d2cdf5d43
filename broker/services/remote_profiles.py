"""Other servers' profiles, remembered: the answers of the federation profile query, kept per
(user, reader) for ``ttl_ms`` (at most ``max_entries``, the oldest dropped first) so one
reader's answer never reaches another, and forgotten for a user as soon as a membership event
of theirs arrives restating their profile (a changed display name or avatar shows at once)."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any

from protocol.events import Event
from storage.events import PersistItem

DEFAULT_TTL_MS = 5 * 60 * 1000
DEFAULT_MAX_ENTRIES = 10_000
PROFILE_KEYS = ("displayname", "avatar_url")
AskProfile = Callable[[str, str, str], Awaitable[Any]]  # (server, user_id, reader) -> answer


class RemoteProfileCache:
    def __init__(self, ask: AskProfile, clock: Any, is_mine: Callable[[str], bool], *,
                 ttl_ms: int = DEFAULT_TTL_MS, max_entries: int = DEFAULT_MAX_ENTRIES) -> None:
        self._ask = ask
        self.clock = clock
        self.is_mine = is_mine
        self.ttl_ms = ttl_ms
        self.max_entries = max_entries
        self._known: OrderedDict[tuple[str, str], tuple[int, Any]] = OrderedDict()

    async def ask(self, server: str, user_id: str, reader: str) -> Any:
        """The profile query's answer for ``user_id`` as ``reader`` sees it, from memory
        when asked within ``ttl_ms``; failures are not kept."""
        key = (user_id, reader)
        known = self._known.get(key)
        now = self.clock.time_ms()
        if known is not None and now - known[0] < self.ttl_ms:
            return known[1]
        answer = await self._ask(server, user_id, reader)
        self._known[key] = (now, answer)
        self._known.move_to_end(key)
        while len(self._known) > self.max_entries:
            self._known.popitem(last=False)
        return answer

    def forget(self, user_id: str) -> None:
        for key in [k for k in self._known if k[0] == user_id]:
            del self._known[key]

    def persisted(self, items: list[PersistItem]) -> None:
        """``Rooms.persisted_listeners``: a remote user's membership event stating a profile
        field makes the remembered answers about them stale."""
        for item in items:
            if _restates_profile(item.event) and not self.is_mine(item.event.state_key or ""):
                self.forget(item.event.state_key or "")


def _restates_profile(event: Event) -> bool:
    return event.type == "m.room.member" and event.state_key is not None and \
        any(key in event.content for key in PROFILE_KEYS)
