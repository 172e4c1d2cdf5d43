"""The statistics report (``GET /_broker/admin/v1/statistics``): one row per organisation and
UTC day from the daily aggregates :mod:`broker.statistics` keeps, as JSON or CSV.

``organisation`` names an organisation: its rows and those of each of its sub-organisations
(one row each, not summed); without it, every organisation the caller's grants cover, and the
node's own row (organisation ``null``: users in no organisation, federation traffic, purges)
for node-wide grants only.  ``from`` and ``to`` are days (``YYYY-MM-DD``, UTC, both included;
``to`` defaults to today and ``from`` to 29 days before ``to``), at most :data:`MAX_DAYS`
days.  A day with nothing counted for an organisation has no row.  Reading needs
``statistics.read`` (auditors and admins); a refusal is recorded in the audit log.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from broker.access_policy import OFFICIAL
from broker.admin import permissions
from broker.admin.audit import AuditLog
from broker.admin.authority import Authority
from broker.admin.model import Actor, BadField
from broker.statistics import (
    DIRECT,
    EDUS_RECEIVED,
    EDUS_SENT,
    HELD,
    INFORMAL_KIND,
    PDUS_RECEIVED,
    PDUS_SENT,
    REFUSALS,
    ROOMS,
    day_of,
)
from storage.statistics import StatisticsStore

MAX_DAYS = 366
DEFAULT_DAYS = 30
FORMATS = ("json", "csv")
# The counts of a row that are one number each, in the CSV's column order.
SINGLE = ("messages_sent", "active_users", "files_uploaded", "file_bytes",
          "retention_purged_events")
KINDS = (OFFICIAL, INFORMAL_KIND, DIRECT)
TRAFFIC = (PDUS_SENT, PDUS_RECEIVED, EDUS_SENT, EDUS_RECEIVED)


@dataclass(frozen=True)
class StatisticsQuery:
    organisation: str | None = None
    first: str | None = None  # the ``from`` day as given
    last: str | None = None  # the ``to`` day as given


def _day(value: str, field: str) -> date:
    try:
        if len(value) != 10:
            raise ValueError(value)
        return date.fromisoformat(value)
    except ValueError:
        raise BadField(field, f"'{field}' must be a day as YYYY-MM-DD",
                       errcode="M_INVALID_PARAM") from None


def day_range(query: StatisticsQuery, today: str) -> tuple[str, str]:
    """The first and last day asked for (defaults filled in), checked."""
    last = _day(query.last or today, "to")
    first = _day(query.first, "from") if query.first else last - timedelta(DEFAULT_DAYS - 1)
    if first > last:
        raise BadField("from", "'from' must not be after 'to'", errcode="M_INVALID_PARAM")
    if (last - first).days + 1 > MAX_DAYS:
        raise BadField("to", f"at most {MAX_DAYS} days may be asked for at once",
                       errcode="M_INVALID_PARAM")
    return first.isoformat(), last.isoformat()


def empty_row(day: str, organisation: str) -> dict[str, Any]:
    return {"day": day, "organisation": organisation or None, **dict.fromkeys(SINGLE, 0),
            "rooms": dict.fromkeys(KINDS, 0), "rooms_created": dict.fromkeys(KINDS, 0),
            "refusals": {}, "federation": {}}


def rows_of(counts: list[tuple[str, str, str, str, int]]) -> list[dict[str, Any]]:
    """The rows of the kept counts (day, organisation, metric, item, count), by day and
    organisation."""
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    for day, organisation, metric, item, count in counts:
        row = rows.get((day, organisation))
        if row is None:
            row = rows[(day, organisation)] = empty_row(day, organisation)
        if metric in SINGLE:
            row[metric] += count
        elif metric in (HELD, ROOMS):
            rooms = row["rooms" if metric == HELD else "rooms_created"]
            rooms[item] = rooms.get(item, 0) + count
        elif metric == REFUSALS:
            row["refusals"][item] = count
        elif metric in TRAFFIC:
            row["federation"].setdefault(item, dict.fromkeys(TRAFFIC, 0))[metric] = count
    return [rows[key] for key in sorted(rows)]


def as_csv(rows: list[dict[str, Any]]) -> bytes:
    """The rows as CSV: a column per count, per policy rule refused (``refusals.<rule>``)
    and per peer and direction (``federation.<peer>.<count>``) found in any row."""
    rules = sorted({rule for row in rows for rule in row["refusals"]})
    peers = sorted({peer for row in rows for peer in row["federation"]})
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["day", "organisation", *SINGLE, *(f"rooms.{k}" for k in KINDS),
                     *(f"rooms_created.{k}" for k in KINDS),
                     *(f"refusals.{rule}" for rule in rules),
                     *(f"federation.{peer}.{t}" for peer in peers for t in TRAFFIC)])
    for row in rows:
        writer.writerow([
            row["day"], row["organisation"] or "", *(row[name] for name in SINGLE),
            *(row["rooms"].get(k, 0) for k in KINDS),
            *(row["rooms_created"].get(k, 0) for k in KINDS),
            *(row["refusals"].get(rule, 0) for rule in rules),
            *(row["federation"].get(peer, {}).get(t, 0) for peer in peers for t in TRAFFIC)])
    return out.getvalue().encode()


class StatisticsReport:
    def __init__(self, store: StatisticsStore, authority: Authority, audit: AuditLog,
                 clock: Any) -> None:
        self.store = store
        self.authority = authority
        self.audit = audit
        self.clock = clock

    async def read(self, actor: Actor, query: StatisticsQuery) -> dict[str, Any]:
        """The rows the actor may read, with the range they cover."""
        async with self.audit.recording(actor, permissions.STATISTICS_READ) as entry:
            entry.organisation = query.organisation
            first, last = day_range(query, day_of(self.clock.time_ms()))
            _, _, scope = await self.authority.scope(actor, permissions.STATISTICS_READ,
                                                     query.organisation)
            counts = await self.store.between(first, last, scope)
            return {"from": first, "to": last, "organisation": query.organisation,
                    "rows": rows_of(counts)}

