"""Metadata-only usage statistics, counted in memory and kept as daily aggregates.

Each count is a memory increment on the path that does the thing (a message sent, a sync, an
upload, a room created, a refusal of the access policy or of a message's tags, a federation
transaction, a purge batch): a dictionary update, never a database round trip.  What was
counted is added to ``statistics_daily`` every :data:`FLUSH_SECONDS` and at shutdown in one
transaction (:mod:`broker.periodic_writes`).  Only counts are kept, per UTC day, organisation
and metric: never a message, a room, a file name or a user ID.

The organisation of a count is the organisation its local user is verified in now (read from
memory, as the message tags do); users in none, users of other servers and what belongs to the
node as a whole (federation traffic per peer, retention purges) count under '' (shown as
``null``).

Active users are distinct: the user IDs seen today are held in memory per organisation (at
most :data:`MAX_ACTIVE_PER_DAY` a day; the sets of a past day go once written) and the size of
each set is written, raising the kept count to at least it.  So a node restarted during a day,
or several processes sharing a database, keep the largest number one process saw that day:
a lower bound of the day's distinct users, exact for one process running all day.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from broker.access_policy import OFFICIAL, Decision, RoomFacts
from broker.periodic_writes import PeriodicWrites
from storage.statistics import Key, StatisticsStore

FLUSH_SECONDS = 30.0
MAX_ACTIVE_PER_DAY = 1_000_000  # distinct users remembered per day, all organisations

DAY_MS = 86_400_000
NODE = ""  # the organisation of what belongs to no organisation

MESSAGES = "messages_sent"
ACTIVE = "active_users"
ROOMS = "rooms_created"  # item: the room kind
HELD = "rooms"  # item: the room kind; the largest census of the day
FILES = "files_uploaded"
FILE_BYTES = "file_bytes"
PURGED = "retention_purged_events"
REFUSALS = "refusals"  # item: the rule
PDUS_SENT, PDUS_RECEIVED = "pdus_sent", "pdus_received"  # item: the peer
EDUS_SENT, EDUS_RECEIVED = "edus_sent", "edus_received"
DIRECT, INFORMAL_KIND = "direct", "informal"


def day_of(ms: int) -> str:
    """The UTC day of a timestamp in milliseconds, ``YYYY-MM-DD``."""
    return time.strftime("%Y-%m-%d", time.gmtime(ms // 1000))


def room_kind(facts: RoomFacts) -> str:
    """The kind a new room counts under: official, direct or informal."""
    if facts.kind == OFFICIAL:
        return OFFICIAL
    return DIRECT if facts.direct else INFORMAL_KIND


@dataclass
class Pending:
    """What one write adds: counts to add, and active users' totals to raise to."""

    sums: dict[Key, int] = field(default_factory=dict)
    highs: dict[Key, int] = field(default_factory=dict)


class Statistics(PeriodicWrites[Pending]):
    def __init__(self, store: StatisticsStore, clock: Any, server_name: str,
                 organisation_of: Callable[[str], str | None]) -> None:
        """``organisation_of``: the organisation a local user is verified in now, from
        memory."""
        super().__init__(FLUSH_SECONDS, "statistics")
        self.store = store
        self.clock = clock
        self.suffix = f":{server_name}"
        self.organisation_of = organisation_of
        self._sums: Counter[Key] = Counter()
        self._active: dict[tuple[str, str], set[str]] = {}  # (day, organisation) -> users
        self._active_written: dict[tuple[str, str], int] = {}
        self.remembered = 0  # user IDs held in memory (all days)
        self._held: dict[Key, int] = {}  # the last room census, until written
        self._day: tuple[int, str] = (-1, "")  # the last day asked: its number and name

    # -- counting (memory only) -----------------------------------------------------------------
    def today(self) -> str:
        """The UTC day now, ``YYYY-MM-DD`` (formatted once a day)."""
        ms = self.clock.time_ms()
        number, name = self._day
        if ms // DAY_MS != number:
            number, name = ms // DAY_MS, day_of(ms)
            self._day = (number, name)
        return name

    def organisation(self, user_id: str) -> str:
        """The organisation a user's counts go to ('' for none)."""
        if not user_id.endswith(self.suffix):
            return NODE
        return self.organisation_of(user_id) or NODE

    def _count(self, organisation: str, metric: str, item: str = "", by: int = 1) -> None:
        self._sums[(self.today(), organisation, metric, item)] += by

    def active(self, user_id: str) -> None:
        """A local user sent or synced."""
        key = (self.today(), self.organisation(user_id))
        users = self._active.setdefault(key, set())
        if user_id not in users and self.remembered < MAX_ACTIVE_PER_DAY:
            users.add(user_id)
            self.remembered += 1

    def message_sent(self, user_id: str) -> None:
        self._count(self.organisation(user_id), MESSAGES)
        self.active(user_id)

    def room_created(self, creator: str, facts: RoomFacts) -> None:
        self._count(self.organisation(creator), ROOMS, room_kind(facts))

    def rooms_held(self, counts: Mapping[tuple[str, str], int]) -> None:
        """A census of the rooms held: (organisation, kind) -> rooms."""
        today = self.today()
        for (organisation, kind), rooms in counts.items():
            self._held[(today, organisation, HELD, kind)] = rooms

    def uploaded(self, user_id: str, size: int) -> None:
        organisation = self.organisation(user_id)
        self._count(organisation, FILES)
        self._count(organisation, FILE_BYTES, by=size)

    def refused(self, decision: Decision, rule: str) -> None:
        """The access policy refused ``decision`` by ``rule``."""
        self._count(self.organisation(decision.actor), REFUSALS, rule)

    def refused_tags(self, user_id: str, reason: str) -> None:
        """A send refused for its message tags, by ``reason``."""
        self._count(self.organisation(user_id), REFUSALS, reason)

    def federation_sent(self, peer: str, pdus: int, edus: int) -> None:
        self._count(NODE, PDUS_SENT, peer, pdus)
        self._count(NODE, EDUS_SENT, peer, edus)

    def federation_received(self, peer: str, pdus: int, edus: int) -> None:
        self._count(NODE, PDUS_RECEIVED, peer, pdus)
        self._count(NODE, EDUS_RECEIVED, peer, edus)

    def purged(self, events: int) -> None:
        """The retention purge removed the content of ``events`` events."""
        self._count(NODE, PURGED, by=events)

    # -- writing (off the request path) ---------------------------------------------------------
    def pending(self) -> Pending | None:
        found = Pending(
            {key: count for key, count in self._sums.items() if count},
            {(day, organisation, ACTIVE, ""): len(users)
             for (day, organisation), users in self._active.items()
             if len(users) != self._active_written.get((day, organisation), 0)})
        found.highs.update(self._held)
        return found if found.sums or found.highs else None

    async def write(self, pending: Pending) -> None:
        await self.store.add(pending.sums, pending.highs)

    def written(self, pending: Pending) -> None:
        self._sums.subtract(pending.sums)
        for key in [key for key, count in self._sums.items() if count <= 0]:
            del self._sums[key]
        for key, count in pending.highs.items():
            day, organisation, metric, _ = key
            if metric == ACTIVE:
                self._active_written[(day, organisation)] = count
            elif self._held.get(key) == count:  # not replaced by a census since
                del self._held[key]
        self._forget_past_days()

    def _forget_past_days(self) -> None:
        """Drop the active users of the days before today once all of them are written."""
        today = self.today()
        for key in [k for k, users in self._active.items()
                    if k[0] < today and self._active_written.get(k, 0) == len(users)]:
            self.remembered -= len(self._active.pop(key))
            self._active_written.pop(key, None)

    async def flush(self) -> None:
        """Write what was counted now (tests; shutdown writes through :meth:`stop`)."""
        await self.write_pending()
