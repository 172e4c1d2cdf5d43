"""The durable outbound federation queue: PDUs and persistent EDUs owed to each destination.

Writers call :meth:`FederationQueueStore.enqueue` with any number of items for any number of
destinations; they are written in one transaction and each takes a position from the node-wide
counter (``federation_queue_position``), so positions grow monotonically across restarts and
reflect commit order.  The sender reads one batch per destination at a time (oldest first) and,
once the destination accepted the transaction, calls :meth:`ack_transaction`, which deletes
exactly the rows it sent and advances the destination's ``last_acked_position`` in the same
transaction.  Rows are deleted by position rather than by range, so an item committed while a
transaction was in flight is never lost.

Each entry records when it was queued (``queued_ts``): :meth:`FederationQueueStore.get_batch`
leaves out those older than the sender's maximum age and :meth:`expire_queued` deletes them,
so what a server that stayed unreachable is owed for too long is never sent late.

Per-destination retry state (``retry_last_ts``, ``retry_interval_ms``, ``failure_count``) lives in
``federation_destinations`` so back-off survives a restart.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from twisted.internet import defer

from storage.at_rest import FEDERATION_EDU, FEDERATION_PDU
from storage.database import Cursor, Database

JsonDict = dict[str, Any]

NO_KEY = ""  # edu_key of an EDU that no later EDU replaces


@dataclass(frozen=True)
class NewPdu:
    """A PDU to queue for one destination."""

    destination: str
    event_id: str
    pdu: JsonDict


@dataclass(frozen=True)
class NewEdu:
    """A persistent EDU to queue for one destination; ``key`` replaces an older pending one."""

    destination: str
    edu_type: str
    content: JsonDict
    key: str | None = None


@dataclass(frozen=True)
class QueuedPdu:
    position: int
    event_id: str
    pdu: JsonDict


@dataclass(frozen=True)
class QueuedEdu:
    position: int
    edu_type: str
    key: str
    content: JsonDict


@dataclass(frozen=True)
class Batch:
    """The oldest pending items of one destination, as one transaction would carry them."""

    pdus: list[QueuedPdu]
    edus: list[QueuedEdu]

    def __bool__(self) -> bool:
        return bool(self.pdus or self.edus)


@dataclass(frozen=True)
class DestinationState:
    """What we know about delivering to one destination."""

    destination: str
    last_acked_position: int = 0
    retry_last_ts: int = 0
    retry_interval_ms: int = 0
    failure_count: int = 0

    def retry_due_ts(self) -> int:
        """The earliest time (ms) at which a new attempt may be made."""
        return self.retry_last_ts + self.retry_interval_ms


def _ensure_destinations(cur: Cursor, destinations: Sequence[str]) -> None:
    cur.executemany(
        "INSERT INTO federation_destinations (destination, last_acked_position, retry_last_ts,"
        " retry_interval_ms, failure_count) VALUES (?, 0, 0, 0, 0)"
        " ON CONFLICT (destination) DO NOTHING",
        [(d,) for d in sorted(set(destinations))],
    )


def _allocate_positions(cur: Cursor, count: int) -> int:
    """Reserve ``count`` positions; returns the first.  Locks the counter until commit."""
    cur.execute(
        "UPDATE federation_queue_position SET position = position + ? WHERE id = 1", (count,)
    )
    last = int(cur.select_value("SELECT position FROM federation_queue_position WHERE id = 1"))
    return last - count + 1


def _enqueue(cur: Cursor, pdus: Sequence[NewPdu], edus: Sequence[NewEdu],
             queued_ts: int | None) -> int:
    total = len(pdus) + len(edus)
    if total == 0:
        return 0
    _ensure_destinations(cur, [p.destination for p in pdus] + [e.destination for e in edus])
    position = _allocate_positions(cur, total)
    pdu_rows = []
    for pdu in pdus:
        pdu_rows.append((pdu.destination, position, pdu.event_id,
                         cur.at_rest.seal_json(FEDERATION_PDU, pdu.pdu), queued_ts))
        position += 1
    cur.executemany(
        "INSERT INTO federation_outbound_pdus"
        " (destination, position, event_id, pdu_json, queued_ts) VALUES (?, ?, ?, ?, ?)",
        pdu_rows,
    )
    for edu in edus:
        key = edu.key if edu.key is not None else NO_KEY
        if key != NO_KEY:
            cur.execute(
                "DELETE FROM federation_outbound_edus"
                " WHERE destination = ? AND edu_type = ? AND edu_key = ?",
                (edu.destination, edu.edu_type, key),
            )
        cur.execute(
            "INSERT INTO federation_outbound_edus (destination, position, edu_type, edu_key,"
            " content_json, queued_ts) VALUES (?, ?, ?, ?, ?, ?)",
            (edu.destination, position, edu.edu_type, key,
             cur.at_rest.seal_json(FEDERATION_EDU, edu.content), queued_ts),
        )
        position += 1
    return position - 1


# An entry queued at or after the cut-off (or before queue times were kept: NULL).
_YOUNG = " AND (queued_ts IS NULL OR queued_ts >= ?)"


def _get_batch(cur: Cursor, destination: str, pdu_limit: int, edu_limit: int,
               queued_since: int | None) -> Batch:
    young, since = (_YOUNG, [queued_since]) if queued_since is not None else ("", [])
    pdu_rows = cur.select_all(
        "SELECT position, event_id, pdu_json FROM federation_outbound_pdus"
        f" WHERE destination = ?{young} ORDER BY position LIMIT ?",
        [destination, *since, pdu_limit],
    )
    edu_rows = (
        cur.select_all(
            "SELECT position, edu_type, edu_key, content_json FROM federation_outbound_edus"
            f" WHERE destination = ?{young} ORDER BY position LIMIT ?",
            [destination, *since, edu_limit],
        )
        if edu_limit > 0
        else []
    )
    return Batch(
        pdus=[QueuedPdu(int(p), e, cur.at_rest.open_json(FEDERATION_PDU, j))
              for p, e, j in pdu_rows],
        edus=[QueuedEdu(int(p), t, k, cur.at_rest.open_json(FEDERATION_EDU, c))
              for p, t, k, c in edu_rows],
    )


def _ack(
    cur: Cursor, destination: str, pdu_positions: Sequence[int], edu_positions: Sequence[int]
) -> None:
    for table, positions in (
        ("federation_outbound_pdus", pdu_positions),
        ("federation_outbound_edus", edu_positions),
    ):
        if positions:
            clause, args = cur.in_clause("position", list(positions))
            cur.execute(f"DELETE FROM {table} WHERE destination = ? AND {clause}",
                        [destination, *args])
    highest = max([*pdu_positions, *edu_positions], default=0)
    _ensure_destinations(cur, [destination])
    cur.execute(
        "UPDATE federation_destinations SET"
        " last_acked_position = CASE WHEN last_acked_position < ? THEN ?"
        " ELSE last_acked_position END,"
        " retry_last_ts = 0, retry_interval_ms = 0, failure_count = 0"
        " WHERE destination = ?",
        (highest, highest, destination),
    )


def _state_from_row(row: Sequence[Any]) -> DestinationState:
    return DestinationState(row[0], int(row[1]), int(row[2]), int(row[3]), int(row[4]))


_STATE_COLUMNS = (
    "destination, last_acked_position, retry_last_ts, retry_interval_ms, failure_count"
)


def _get_destination(cur: Cursor, destination: str) -> DestinationState | None:
    row = cur.select_one(
        f"SELECT {_STATE_COLUMNS} FROM federation_destinations WHERE destination = ?",
        (destination,),
    )
    return _state_from_row(row) if row else None


def _set_retry(
    cur: Cursor, destination: str, retry_last_ts: int, retry_interval_ms: int, failure_count: int
) -> None:
    _ensure_destinations(cur, [destination])
    cur.execute(
        "UPDATE federation_destinations SET retry_last_ts = ?, retry_interval_ms = ?,"
        " failure_count = ? WHERE destination = ?",
        (retry_last_ts, retry_interval_ms, failure_count, destination),
    )


def _destinations_with_pending(cur: Cursor) -> list[DestinationState]:
    names = {
        row[0]
        for table in ("federation_outbound_pdus", "federation_outbound_edus")
        for row in cur.select_all(f"SELECT DISTINCT destination FROM {table}")
    }
    states = []
    for name in sorted(names):
        states.append(_get_destination(cur, name) or DestinationState(name))
    return states


def _pending_counts(cur: Cursor, destination: str) -> tuple[int, int]:
    pdus = cur.select_value(
        "SELECT COUNT(*) FROM federation_outbound_pdus WHERE destination = ?", (destination,)
    )
    edus = cur.select_value(
        "SELECT COUNT(*) FROM federation_outbound_edus WHERE destination = ?", (destination,)
    )
    return int(pdus), int(edus)


def _queue_depths(cur: Cursor) -> dict[str, tuple[int, int]]:
    depths: dict[str, list[int]] = {}
    for column, table in enumerate(("federation_outbound_pdus", "federation_outbound_edus")):
        for destination, count in cur.select_all(
                f"SELECT destination, COUNT(*) FROM {table} GROUP BY destination"):
            depths.setdefault(destination, [0, 0])[column] = int(count)
    return {destination: (pdus, edus) for destination, (pdus, edus) in depths.items()}


def _expire(cur: Cursor, before_ts: int, now_ms: int) -> tuple[int, int]:
    counts = []
    for table in ("federation_outbound_pdus", "federation_outbound_edus"):
        cur.execute(f"UPDATE {table} SET queued_ts = ? WHERE queued_ts IS NULL", (now_ms,))
        cur.execute(f"DELETE FROM {table} WHERE queued_ts < ?", (before_ts,))
        counts.append(cur.rowcount)
    return counts[0], counts[1]


def _purge(cur: Cursor, destination: str) -> tuple[int, int]:
    counts = []
    for table in ("federation_outbound_pdus", "federation_outbound_edus"):
        cur.execute(f"DELETE FROM {table} WHERE destination = ?", (destination,))
        counts.append(cur.rowcount)
    return counts[0], counts[1]


class FederationQueueStore:
    """Reads and writes of the outbound federation queue; every method is one transaction."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def enqueue(self, pdus: Sequence[NewPdu], edus: Sequence[NewEdu] = (),
                queued_ts: int | None = None) -> defer.Deferred[int]:
        """Queue PDUs and persistent EDUs (any destinations) in one transaction, recording
        ``queued_ts`` (ms; None: no time, nothing expires them) as when they were queued.

        Items take consecutive positions in the order given (PDUs first); an EDU with a key
        replaces any pending EDU of the same destination, type and key.  Returns the last position
        allocated (0 when nothing was given).
        """
        return self.db.run_interaction("federation_enqueue", _enqueue, list(pdus), list(edus),
                                       queued_ts)

    def get_batch(
        self, destination: str, pdu_limit: int = 50, edu_limit: int = 100,
        queued_since: int | None = None,
    ) -> defer.Deferred[Batch]:
        """The oldest pending PDUs and persistent EDUs of ``destination``, oldest first;
        ``queued_since``: those queued before it (expired) are left out."""
        return self.db.run_interaction(
            "federation_get_batch", _get_batch, destination, pdu_limit, edu_limit, queued_since
        )

    def expire_queued(self, before_ts: int, now_ms: int) -> defer.Deferred[tuple[int, int]]:
        """Delete the entries queued before ``before_ts`` (those with no queue time are
        stamped ``now_ms`` first); returns the (PDUs, EDUs) deleted."""
        return self.db.run_interaction("federation_expire", _expire, before_ts, now_ms)

    def expiring_pdus(self, before_ts: int) -> defer.Deferred[list[tuple[str, str]]]:
        """(destination, event ID) of the PDUs queued before ``before_ts``: those the next
        :meth:`expire_queued` with that time deletes."""
        return self.db.run_interaction(
            "federation_expiring", lambda cur: [(str(d), str(e)) for d, e in cur.select_all(
                "SELECT destination, event_id FROM federation_outbound_pdus"
                " WHERE queued_ts < ?", (before_ts,))])

    def ack_transaction(
        self, destination: str, pdu_positions: Sequence[int], edu_positions: Sequence[int]
    ) -> defer.Deferred[None]:
        """Delete the rows a transaction carried, advance last_acked_position, clear back-off."""
        return self.db.run_interaction(
            "federation_ack", _ack, destination, list(pdu_positions), list(edu_positions)
        )

    def set_retry(
        self, destination: str, retry_last_ts: int, retry_interval_ms: int, failure_count: int
    ) -> defer.Deferred[None]:
        """Record a failed attempt: retry no earlier than retry_last_ts + retry_interval_ms."""
        return self.db.run_interaction(
            "federation_set_retry", _set_retry, destination, retry_last_ts, retry_interval_ms,
            failure_count,
        )

    def get_destination(self, destination: str) -> defer.Deferred[DestinationState | None]:
        return self.db.run_interaction("federation_get_destination", _get_destination,
                                       destination)

    def destinations_with_pending(self) -> defer.Deferred[list[DestinationState]]:
        """Every destination that has queued PDUs or persistent EDUs, with its retry state."""
        return self.db.run_interaction("federation_pending_destinations",
                                       _destinations_with_pending)

    def pending_counts(self, destination: str) -> defer.Deferred[tuple[int, int]]:
        """(PDUs, persistent EDUs) queued for ``destination``."""
        return self.db.run_interaction("federation_pending_counts", _pending_counts, destination)

    def queue_depths(self) -> defer.Deferred[dict[str, tuple[int, int]]]:
        """Destination -> (PDUs, persistent EDUs) queued for it, for every destination with
        something queued (for metrics: one read, off the send path)."""
        return self.db.run_interaction("federation_queue_depths", _queue_depths)

    def purge_destination(self, destination: str) -> defer.Deferred[tuple[int, int]]:
        """Drop everything queued for ``destination``; returns the (PDUs, EDUs) deleted."""
        return self.db.run_interaction("federation_purge", _purge, destination)
