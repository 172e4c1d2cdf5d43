"""The refusals a node counted per counter and rule, summed over its runs (and over the node
processes sharing the database): read once at start, added to in batches."""

from __future__ import annotations

from collections.abc import Mapping

from twisted.internet import defer

from storage.database import Cursor, Database

# counter -> rule -> count
Counts = dict[str, dict[str, int]]


class RefusalCountStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def totals(self) -> defer.Deferred[Counts]:
        """Every count kept: counter -> rule -> count."""
        def txn(cur: Cursor) -> Counts:
            found: Counts = {}
            for counter, rule, count in cur.select_all(
                    "SELECT counter, rule, count FROM refusal_counts"):
                found.setdefault(str(counter), {})[str(rule)] = int(count)
            return found

        return self.db.run_interaction("refusal_counts", txn)

    def add(self, added: Mapping[str, Mapping[str, int]]) -> defer.Deferred[None]:
        """Add ``added`` (counter -> rule -> how many more) to the counts, in one transaction."""
        rows = [(counter, rule, count) for counter, rules in sorted(added.items())
                for rule, count in sorted(rules.items()) if count]

        def txn(cur: Cursor) -> None:
            cur.executemany(
                "INSERT INTO refusal_counts (counter, rule, count) VALUES (?, ?, ?)"
                " ON CONFLICT (counter, rule) DO UPDATE"
                " SET count = refusal_counts.count + excluded.count", rows)

        return self.db.run_interaction("refusal_counts_add", txn)
