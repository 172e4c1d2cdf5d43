"""Application messages and their delivery status, and the callbacks owed to applications
(broker/apps/tracking.py, broker/apps/callbacks.py).  A status change and the callback it owes
are written in one transaction, so a callback is never lost nor sent for a change that was not
kept."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from twisted.internet import defer

from storage.at_rest import APP_OUTBOX
from storage.database import Cursor, Database


@dataclass
class MessageRow:
    message_id: str
    app_id: str
    recipient: str
    status: str
    created_ts: int
    expires_ts: int | None = None
    room_id: str | None = None
    event_id: str | None = None
    position: int | None = None
    delivered_ts: int | None = None
    read_ts: int | None = None
    reason: str | None = None
    # Not columns of app_messages: what the message will put in its room (JSON) while it is
    # queued and not yet sent, kept in app_outbox; ``outbox_done`` once sent or failed (its
    # outbox row is deleted with that write).
    outbox: str | None = None
    outbox_done: bool = False


@dataclass(frozen=True)
class CallbackRow:
    message_id: str
    status: str
    app_id: str
    body: str  # the JSON body, as signed and sent
    attempts: int
    next_ts: int


_COLUMNS = ("message_id, app_id, recipient, status, created_ts, expires_ts, room_id, event_id,"
            " position, delivered_ts, read_ts, reason")


def _row(values: Sequence[object]) -> MessageRow:
    return MessageRow(*values)  # type: ignore[arg-type]


def _values(row: MessageRow) -> tuple[object, ...]:
    return (row.message_id, row.app_id, row.recipient, row.status, row.created_ts,
            row.expires_ts, row.room_id, row.event_id, row.position, row.delivered_ts,
            row.read_ts, row.reason)


class AppMessageStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def write(self, messages: Sequence[MessageRow],
              callbacks: Sequence[CallbackRow] = ()) -> defer.Deferred[None]:
        """Write each message's whole record (inserted or replaced) and the callbacks owed, in
        one transaction."""
        rows = [_values(m) for m in messages]
        owed = [(c.message_id, c.status, c.app_id, c.body, c.attempts, c.next_ts)
                for c in callbacks]

        fresh = [m for m in messages if m.outbox is not None]
        done = [(m.message_id,) for m in messages if m.outbox_done]

        def txn(cur: Cursor) -> None:
            cur.executemany(
                "INSERT INTO app_outbox (message_id, contents) VALUES (?, ?)"
                " ON CONFLICT (message_id) DO NOTHING",
                [(m.message_id, cur.at_rest.seal(APP_OUTBOX, str(m.outbox))) for m in fresh])
            cur.executemany("DELETE FROM app_outbox WHERE message_id = ?", done)
            cur.executemany(
                f"INSERT INTO app_messages ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (message_id) DO UPDATE SET status = excluded.status,"
                " expires_ts = excluded.expires_ts, room_id = excluded.room_id,"
                " event_id = excluded.event_id, position = excluded.position,"
                " delivered_ts = excluded.delivered_ts, read_ts = excluded.read_ts,"
                " reason = excluded.reason", rows)
            cur.executemany(
                "INSERT INTO app_callbacks (message_id, status, app_id, body, attempts, next_ts)"
                " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (message_id, status) DO NOTHING", owed)

        return self.db.run_interaction("app_messages_write", txn)

    def get(self, message_id: str) -> defer.Deferred[MessageRow | None]:
        def txn(cur: Cursor) -> MessageRow | None:
            found = cur.select_one(
                f"SELECT {_COLUMNS} FROM app_messages WHERE message_id = ?", (message_id,))
            return _row(found) if found is not None else None

        return self.db.run_interaction("app_messages_get", txn)

    def open_messages(self, since_ts: int) -> defer.Deferred[list[MessageRow]]:
        """Every message created at or after ``since_ts`` still queued or delivered, or read
        with an expiry to come (what the tracker holds in memory)."""
        def txn(cur: Cursor) -> list[MessageRow]:
            return [_row(r) for r in cur.select_all(
                f"SELECT {_COLUMNS} FROM app_messages"
                " WHERE (status IN ('queued', 'delivered')"
                " OR (status = 'read' AND expires_ts IS NOT NULL)) AND created_ts >= ?"
                " ORDER BY created_ts", (since_ts,))]

        return self.db.run_interaction("app_messages_open", txn)

    def unsent(self) -> defer.Deferred[list[MessageRow]]:
        """The queued messages whose events were never written (the node stopped first),
        with their outbox, oldest first."""
        def txn(cur: Cursor) -> list[MessageRow]:
            columns = ", ".join(f"m.{c.strip()}" for c in _COLUMNS.split(","))
            found = []
            for r in cur.select_all(
                    f"SELECT {columns}, o.contents FROM app_outbox o JOIN app_messages m"
                    " ON m.message_id = o.message_id WHERE m.status = 'queued'"
                    " ORDER BY m.created_ts", ()):
                row = _row(r[:-1])
                row.outbox = cur.at_rest.open(APP_OUTBOX, str(r[-1]))
                found.append(row)
            return found

        return self.db.run_interaction("app_messages_unsent", txn)

    def delete_before(self, before_ts: int) -> defer.Deferred[int]:
        """Delete the messages created before ``before_ts`` (and the callbacks they still
        owe); how many messages went."""
        def txn(cur: Cursor) -> int:
            cur.execute("DELETE FROM app_callbacks WHERE message_id IN"
                        " (SELECT message_id FROM app_messages WHERE created_ts < ?)",
                        (before_ts,))
            cur.execute("DELETE FROM app_outbox WHERE message_id IN"
                        " (SELECT message_id FROM app_messages WHERE created_ts < ?)",
                        (before_ts,))
            cur.execute("DELETE FROM app_messages WHERE created_ts < ?", (before_ts,))
            return cur.rowcount

        return self.db.run_interaction("app_messages_delete_before", txn)

    def by_events(self, event_ids: Sequence[str]) -> defer.Deferred[list[MessageRow]]:
        """The messages carried by these events."""
        def txn(cur: Cursor) -> list[MessageRow]:
            if not event_ids:
                return []
            clause, args = cur.in_clause("event_id", list(event_ids))
            return [_row(r) for r in cur.select_all(
                f"SELECT {_COLUMNS} FROM app_messages WHERE {clause}", args)]

        return self.db.run_interaction("app_messages_by_events", txn)

    # -- callbacks -----------------------------------------------------------------------------
    def due_callbacks(self, now_ms: int, limit: int) -> defer.Deferred[list[CallbackRow]]:
        def txn(cur: Cursor) -> list[CallbackRow]:
            return [CallbackRow(str(m), str(s), str(a), str(b), int(n), int(t))
                    for m, s, a, b, n, t in cur.select_all(
                        "SELECT message_id, status, app_id, body, attempts, next_ts"
                        " FROM app_callbacks WHERE next_ts <= ? ORDER BY next_ts LIMIT ?",
                        (now_ms, limit))]

        return self.db.run_interaction("app_callbacks_due", txn)

    def callback_done(self, message_id: str, status: str) -> defer.Deferred[None]:
        """The callback was answered with a 2xx: it is owed no more."""
        return self._execute("app_callbacks_done",
                             "DELETE FROM app_callbacks WHERE message_id = ? AND status = ?",
                             (message_id, status))

    def callback_retry(self, message_id: str, status: str, attempts: int,
                       next_ts: int) -> defer.Deferred[None]:
        """The callback failed ``attempts`` times: try it again at ``next_ts``."""
        return self._execute("app_callbacks_retry",
                             "UPDATE app_callbacks SET attempts = ?, next_ts = ?"
                             " WHERE message_id = ? AND status = ?",
                             (attempts, next_ts, message_id, status))

    def _execute(self, desc: str, sql: str, args: Sequence[object]) -> defer.Deferred[None]:
        def txn(cur: Cursor) -> None:
            cur.execute(sql, args)

        return self.db.run_interaction(desc, txn)
