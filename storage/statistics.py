"""The daily usage aggregates (``statistics_daily``): added to in batches by
:mod:`broker.statistics`, read by day range for the statistics API.

A key is (day ``YYYY-MM-DD``, organisation or '', metric, item or ''); a count is either added
to what is kept (``sums``: messages, bytes, refusals...) or raised to at least the value given
(``highs``: distinct active users, which a process knows only as a total for the day).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from twisted.internet import defer

from storage.database import Cursor, Database

Key = tuple[str, str, str, str]  # day, organisation ('' none), metric, item ('' none)

_INSERT = "INSERT INTO statistics_daily (day, organisation, metric, item, count)" \
          " VALUES (?, ?, ?, ?, ?) ON CONFLICT (day, organisation, metric, item) DO UPDATE SET"
_ADD = f"{_INSERT} count = statistics_daily.count + excluded.count"
_RAISE = (f"{_INSERT} count = CASE WHEN excluded.count > statistics_daily.count"
          " THEN excluded.count ELSE statistics_daily.count END")
# Organisations named in one IN clause at most.
_IN_BATCH = 500


def _rows(counts: Mapping[Key, int]) -> list[tuple[str, str, str, str, int]]:
    return [(*key, count) for key, count in sorted(counts.items()) if count]


class StatisticsStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def add(self, sums: Mapping[Key, int], highs: Mapping[Key, int]) -> defer.Deferred[None]:
        """Add ``sums`` to the counts and raise the counts of ``highs`` to at least theirs,
        in one transaction."""
        added, raised = _rows(sums), _rows(highs)

        def txn(cur: Cursor) -> None:
            if added:
                cur.executemany(_ADD, added)
            if raised:
                cur.executemany(_RAISE, raised)

        return self.db.run_interaction("statistics_add", txn)

    def between(self, first_day: str, last_day: str,
                organisations: Sequence[str] | None = None
                ) -> defer.Deferred[list[tuple[str, str, str, str, int]]]:
        """Every count from ``first_day`` to ``last_day`` (both included), by day and
        organisation; only those of ``organisations`` ('' for none) when given."""
        def txn(cur: Cursor) -> list[tuple[str, str, str, str, int]]:
            sql = ("SELECT day, organisation, metric, item, count FROM statistics_daily"
                   " WHERE day >= ? AND day <= ?")
            if organisations is None:
                parts: list[tuple[str, list[str]]] = [("", [])]
            else:
                parts = [cur.in_clause("organisation", list(organisations[i:i + _IN_BATCH]))
                         for i in range(0, len(organisations), _IN_BATCH)]
            found: list[tuple[str, str, str, str, int]] = []
            for clause, args in parts:
                where = f" AND {clause}" if clause else ""
                found.extend((str(r[0]), str(r[1]), str(r[2]), str(r[3]), int(r[4]))
                             for r in cur.select_all(f"{sql}{where}",
                                                     (first_day, last_day, *args)))
            return sorted(found)

        return self.db.run_interaction("statistics_between", txn)
