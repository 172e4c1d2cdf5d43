"""How far each user of another server has received this node's marked events in a room: the
stream position (here) of the newest one their node reported delivered
(:mod:`broker.apps.delivery_reports`).  A report for an event implies the earlier ones of the
room: this node's events reach a server in the order of their positions and a device syncs a
room's timeline in that order.

For broadcasts: a remote recipient has a broadcast at position P when
``delivered_upto(room_id, user_id) >= P`` (as ``SyncProgress.synced_upto`` for local ones).
Memory when asked, one row per room and remote user written every second, read at start.
"""

from __future__ import annotations

from broker.periodic_writes import PeriodicWrites
from storage.remote_progress import RemoteProgressStore

FLUSH_SECONDS = 1.0

Key = tuple[str, str]  # (room_id, user_id)


class RemoteProgress(PeriodicWrites[dict[Key, int]]):
    def __init__(self, store: RemoteProgressStore) -> None:
        super().__init__(FLUSH_SECONDS, "remote delivery progress")
        self.store = store
        self._upto: dict[Key, int] = {}
        self._dirty: dict[Key, int] = {}

    async def load(self) -> None:
        for key, position in (await self.store.load()).items():
            if position > self._upto.get(key, 0):
                self._upto[key] = position

    def delivered_upto(self, room_id: str, user_id: str) -> int:
        """The position of the newest marked event of ours in the room reported delivered to
        ``user_id``; 0 if none was."""
        return self._upto.get((room_id, user_id), 0)

    def delivered(self, room_id: str, user_id: str, position: int) -> None:
        key = (room_id, user_id)
        if position > self._upto.get(key, 0):
            self._upto[key] = self._dirty[key] = position

    def pending(self) -> dict[Key, int] | None:
        return dict(self._dirty) if self._dirty else None

    async def write(self, pending: dict[Key, int]) -> None:
        await self.store.write(pending)

    def written(self, pending: dict[Key, int]) -> None:
        for key, position in pending.items():
            if self._dirty.get(key) == position:
                del self._dirty[key]
