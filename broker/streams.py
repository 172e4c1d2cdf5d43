"""Writing a change under a stream position and waking the syncs it concerns."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from twisted.internet import defer

from broker.notifier import Notifier
from storage.stream import StreamIdGenerator


class StreamWriter:
    """Every change a client learns through /sync is written through here: it takes the next
    stream position, writes, marks the position done (also on failure, so later positions are
    not held back) and wakes the long-polling syncs of ``users`` and of ``rooms``' members."""

    def __init__(self, stream: StreamIdGenerator, notifier: Notifier) -> None:
        self.stream = stream
        self.notifier = notifier

    async def write(
        self, write: Callable[[int], defer.Deferred[Any]], *, users: Iterable[str] = (),
        rooms: Iterable[str] = (),
    ) -> int:
        ids = self.stream.allocate(1)
        try:
            await write(ids[0])
        finally:
            self.stream.finish(ids)
        self.notifier.notify(users=users, rooms=rooms, position=ids[0], room_data=True)
        return ids[0]
