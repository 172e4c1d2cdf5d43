"""The node's refusal counters survive a restart: the access policy's refusals per rule, the
message tags' refusals and the statements of other nodes passed over (each a ``Counter`` the
code counts into in memory, shown by ``GET /_broker/admin/v1/policy``).

At start the counts kept in the database are added to the counters (:meth:`KeptCounts.load`,
before the node serves).  Counting stays a memory increment: what was counted since the last
write is added to the database every :data:`FLUSH_SECONDS` and once more at shutdown, in one
transaction, never on a request's path.  A write that fails is retried with the next one
(nothing counted is lost while the node runs; a crash loses at most the last interval).  Node
processes sharing a database each add their own counts, so the kept totals are the sum over
all of them; each shows the totals it loaded plus what it counted since.  The batched writing
is :class:`broker.periodic_writes.PeriodicWrites`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping

from broker.periodic_writes import PeriodicWrites
from storage.refusal_counts import RefusalCountStore

FLUSH_SECONDS = 10.0

# counter -> rule -> how many
Added = dict[str, dict[str, int]]


class KeptCounts(PeriodicWrites[Added]):
    def __init__(self, store: RefusalCountStore, counters: Mapping[str, Counter[str]]) -> None:
        super().__init__(FLUSH_SECONDS, "refusal counts")
        self.store = store
        self.counters = dict(counters)  # name (as kept) -> the counter counted into
        # What the database holds of each counter (loaded, or written by this process).
        self._kept: dict[str, Counter[str]] = {name: Counter() for name in self.counters}

    async def load(self) -> None:
        """Add the kept counts to the counters (at start, before anything is counted)."""
        totals = await self.store.totals()
        for name, counter in self.counters.items():
            kept = Counter({rule: count for rule, count in totals.get(name, {}).items()
                            if count > 0})
            counter.update(kept)
            self._kept[name] = kept

    def unwritten(self) -> Added:
        """What was counted since the last write: counter -> rule -> how many."""
        return {name: added for name, counter in self.counters.items()
                if (added := {rule: count - self._kept[name].get(rule, 0)
                              for rule, count in counter.items()
                              if count > self._kept[name].get(rule, 0)})}

    def pending(self) -> Added | None:
        return self.unwritten() or None

    async def write(self, pending: Added) -> None:
        await self.store.add(pending)

    def written(self, pending: Added) -> None:
        for name, rules in pending.items():
            self._kept[name].update(rules)

    async def flush(self) -> int:
        """Add what was counted since the last write to the database; how many refusals."""
        added = await self.write_pending()
        return 0 if added is None else sum(
            count for rules in added.values() for count in rules.values())
