"""Timelines of incremental syncs built once for every member who sees the same bytes.

One message into a room wakes every member's long-poll, and each asks the same question: the
room's events after the same token up to the same position, through the same filter.  The
first to ask builds the timeline section and encodes it (``protocol.strict_json.Encoded``);
the others take the same object, and the response encoder writes its kept bytes.

A timeline is shared only where it is the same for everyone: an incremental section without a
history filter (those are per user), holding no event of the requester (their own device gets
its transaction ID).  ``unsigned.age`` is as of the first build; an entry is used for at most
:data:`LIFETIME_MS`, so the age a client reads is never older than that.  A redaction of an
event in the range changes the room's ``recent_version``, which is part of the key.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from protocol.events import Event

#: Shared timelines kept (the newest).
SHARED_TIMELINES = 1024
#: How long one is used after it was built.
LIFETIME_MS = 1000

# (room ID, after, up to, the room's recent_version, filter key)
TimelineKey = tuple[str, int, int, int, str]


@dataclass(frozen=True)
class TimelineSection:
    #: The events shown (after the filter), oldest first; for the state and lazy-loading.
    events: list[Event]
    #: Every event of the range looked at, before the filter (the state section needs them).
    window: list[Event]
    limited: bool
    first_stream: int
    #: The ``timeline`` object of the section (encoded once when shared).
    section: dict[str, Any]
    senders: frozenset[str]
    built_ms: int


class Built(Protocol):
    @property
    def built_ms(self) -> int: ...


K = TypeVar("K", bound=Hashable)
V = TypeVar("V", bound=Built)


class SharedBuilds(Generic[K, V]):
    """What was built for one requester, kept by the key of what it depends on for others
    asking the same: the newest ``size``, each used for at most ``lifetime_ms`` after it was
    built."""

    def __init__(self, size: int = SHARED_TIMELINES, lifetime_ms: int = LIFETIME_MS) -> None:
        if size < 1:
            raise ValueError("size must be at least 1")
        self.size = size
        self.lifetime_ms = lifetime_ms
        self._kept: OrderedDict[K, V] = OrderedDict()
        #: How many asked and were given a kept build.
        self.hits = 0

    def get(self, key: K, now_ms: int) -> V | None:
        kept = self._kept.get(key)
        if kept is None:
            return None
        if now_ms - kept.built_ms > self.lifetime_ms:
            del self._kept[key]
            return None
        self.hits += 1
        return kept

    def put(self, key: K, built: V) -> None:
        self._kept[key] = built
        self._kept.move_to_end(key)
        while len(self._kept) > self.size:
            self._kept.popitem(last=False)

    def __len__(self) -> int:
        return len(self._kept)


SharedTimelines = SharedBuilds[TimelineKey, TimelineSection]
