"""Retention purges: removing the content of expired non-state events, a batch at a time.

A purged event keeps its row, ID, place in the DAG (prev_events, auth_events, depth) and its
forward extremity, if it is one; its JSON is pruned as a redaction prunes it (the content goes,
what the room version keeps of it stays), and ``retention_purged`` marks it done.  Each batch is
one transaction that reads only events not yet purged (a partial index), so a purge stopped
anywhere (a crash included) goes on from what the database holds.
"""

from __future__ import annotations

from twisted.internet import defer

from protocol.redaction import prune_event_dict
from protocol.room_versions import RoomVersion, get_room_version
from storage.at_rest import EVENTS_JSON, FEDERATION_PDU
from storage.database import Cursor, Database
from storage.events import read_event_json, write_event_json
from storage.media_references import release_txn
from storage.reclaim import Reclaimed, reclaim

# The tables a purge rewrites or deletes from: their freed space is reclaimed after a run.
PURGED_TABLES = ("events", "event_expiry", "federation_outbound_pdus", "media_references",
                 "media", "media_thumbnails")


class RetentionStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def stated_policies(self) -> defer.Deferred[dict[str, str]]:
        """Room ID -> the JSON of its current ``m.room.retention`` event."""
        def txn(cur: Cursor) -> dict[str, str]:
            return {row[0]: cur.at_rest.open(EVENTS_JSON, row[1]) for row in cur.select_all(
                "SELECT c.room_id, e.json FROM current_state_events c"
                " JOIN events e ON e.event_id = c.event_id"
                " WHERE c.type = 'm.room.retention' AND c.state_key = ''")}

        return self.db.run_interaction("retention_stated_policies", txn)

    def room_creators(self) -> defer.Deferred[dict[str, str | None]]:
        """Room ID -> the sender of its ``m.room.create`` (None: not held), for every room."""
        def txn(cur: Cursor) -> dict[str, str | None]:
            return {row[0]: row[1] for row in cur.select_all(
                "SELECT r.room_id, e.sender FROM rooms r"
                " LEFT JOIN current_state_events c ON c.room_id = r.room_id"
                " AND c.type = 'm.room.create' AND c.state_key = ''"
                " LEFT JOIN events e ON e.event_id = c.event_id ORDER BY r.room_id")}

        return self.db.run_interaction("retention_room_creators", txn)

    def purge_batch(self, room_id: str, before_ts: int, limit: int, server_name: str = ""
                    ) -> defer.Deferred[list[str]]:
        """Prune up to ``limit`` non-state events of the room sent before ``before_ts`` and
        not purged yet, oldest first, in one transaction; their IDs.  The media of
        ``server_name`` that only they used is deleted with them (its files are listed in
        ``media_deletions``, :mod:`storage.media_references`)."""
        return self.db.run_interaction("retention_purge_batch", self._purge_batch_txn,
                                       room_id, before_ts, limit, server_name)

    @staticmethod
    def _purge_batch_txn(cur: Cursor, room_id: str, before_ts: int, limit: int,
                         server_name: str = "") -> list[str]:
        version = cur.select_one("SELECT room_version FROM rooms WHERE room_id = ?", (room_id,))
        if version is None:
            return []
        room_version = get_room_version(version[0])
        rows = cur.select_all(
            "SELECT event_id, json FROM events WHERE room_id = ? AND state_key IS NULL"
            " AND retention_purged = FALSE AND origin_server_ts < ?"
            " ORDER BY origin_server_ts LIMIT ?", (room_id, before_ts, limit))
        cur.executemany(
            "UPDATE events SET json = ?, retention_purged = TRUE WHERE event_id = ?",
            [(write_event_json(cur, prune_event_dict(room_version,
                                                     read_event_json(cur.at_rest, raw))),
              event_id) for event_id, raw in rows])
        ids = [row[0] for row in rows]
        # A purged message has nothing left to auto-delete.
        cur.executemany("DELETE FROM event_expiry WHERE event_id = ?", [(i,) for i in ids])
        _prune_queued(cur, room_version, ids)
        release_txn(cur, ids, server_name)
        return ids

    def reclaim(self) -> defer.Deferred[Reclaimed]:
        """Give back the space the purge freed so the content it removed leaves the disk
        (:mod:`storage.reclaim`)."""
        return defer.ensureDeferred(reclaim(self.db, PURGED_TABLES))

    def pending(self, room_id: str, before_ts: int) -> defer.Deferred[int]:
        """How many non-state events of the room sent before ``before_ts`` are not purged."""
        def txn(cur: Cursor) -> int:
            row = cur.select_one(
                "SELECT COUNT(*) FROM events WHERE room_id = ? AND state_key IS NULL"
                " AND retention_purged = FALSE AND origin_server_ts < ?", (room_id, before_ts))
            return int(row[0]) if row else 0

        return self.db.run_interaction("retention_pending", txn)


def _prune_queued(cur: Cursor, room_version: RoomVersion, event_ids: list[str]) -> None:
    """Copies of the purged events still queued for a server that did not take them yet are
    pruned too: the server gets the redacted form, and the queue keeps no content."""
    if not event_ids:
        return
    clause, args = cur.in_clause("event_id", event_ids)
    rows = cur.select_all(
        f"SELECT destination, position, pdu_json FROM federation_outbound_pdus WHERE {clause}",
        args)
    cur.executemany(
        "UPDATE federation_outbound_pdus SET pdu_json = ? WHERE destination = ? AND position = ?",
        [(cur.at_rest.seal_json(FEDERATION_PDU, prune_event_dict(
            room_version, cur.at_rest.open_json(FEDERATION_PDU, raw))), destination, position)
         for destination, position, raw in rows])
