"""The node's refusal counters survive a restart: the access policy's refusals per rule, the
message tags' refusals and the statements of other nodes passed over (each a ``Counter`` the
code counts into in memory, shown by ``GET /_broker/admin/v1/policy``).

At start the counts kept in the database are added to the counters (:meth:`KeptCounts.load`,
before the node serves).  Counting stays a memory increment: what was counted since the last
write is added to the database every :data:`FLUSH_SECONDS` and once more at shutdown, in one
transaction, never on a request's path.  A write that fails is retried with the next one
(nothing counted is lost while the node runs; a crash loses at most the last interval).  Node
processes sharing a database each add their own counts, so the kept totals are the sum over
all of them; each shows the totals it loaded plus what it counted since.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping
from typing import Any

from twisted.internet import defer, task

from storage.refusal_counts import RefusalCountStore

logger = logging.getLogger(__name__)

FLUSH_SECONDS = 10.0


class KeptCounts:
    def __init__(self, store: RefusalCountStore, counters: Mapping[str, Counter[str]]) -> None:
        self.store = store
        self.counters = dict(counters)  # name (as kept) -> the counter counted into
        # What the database holds of each counter (loaded, or written by this process).
        self._kept: dict[str, Counter[str]] = {name: Counter() for name in self.counters}
        self._loop: task.LoopingCall | None = None
        self._writing: defer.Deferred[None] | None = None

    async def load(self) -> None:
        """Add the kept counts to the counters (at start, before anything is counted)."""
        totals = await self.store.totals()
        for name, counter in self.counters.items():
            kept = Counter({rule: count for rule, count in totals.get(name, {}).items()
                            if count > 0})
            counter.update(kept)
            self._kept[name] = kept

    def unwritten(self) -> dict[str, dict[str, int]]:
        """What was counted since the last write: counter -> rule -> how many."""
        return {name: added for name, counter in self.counters.items()
                if (added := {rule: count - self._kept[name].get(rule, 0)
                              for rule, count in counter.items()
                              if count > self._kept[name].get(rule, 0)})}

    async def flush(self) -> int:
        """Add what was counted since the last write to the database; how many refusals.
        One write at a time: a flush asked during another waits for it, then writes what is
        left."""
        while self._writing is not None:
            await self._writing
        added = self.unwritten()
        if not added:
            return 0
        self._writing = defer.ensureDeferred(self.store.add(added))
        try:
            await self._writing
        finally:
            self._writing = None
        for name, rules in added.items():
            self._kept[name].update(rules)
        return sum(count for rules in added.values() for count in rules.values())

    async def _flush_quietly(self) -> None:
        try:
            await self.flush()
        except Exception:  # kept for the next write
            logger.exception("writing the refusal counts failed")

    def start(self, reactor: Any) -> None:
        """Write every FLUSH_SECONDS (and call :meth:`stop` before the database closes)."""
        self._loop = task.LoopingCall(lambda: defer.ensureDeferred(self._flush_quietly()))
        self._loop.clock = reactor
        self._loop.start(FLUSH_SECONDS, now=False)

    def stop(self) -> defer.Deferred[None]:
        """Stop writing every FLUSH_SECONDS, after one last write."""
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        return defer.ensureDeferred(self._flush_quietly())
