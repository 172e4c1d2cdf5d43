"""To-device messages waiting for local devices (send-to-device messaging).

A delivery (one client request, or one inbound ``m.direct_to_device`` EDU) takes one stream id
and writes at most one message per recipient device, in one transaction together with its
deduplication record (the client's transaction id, or the EDU's ``message_id``), so a retry is
never delivered twice.  Recipients are resolved against the ``devices`` table in that same
transaction: ``"*"`` means every device of the user, an explicit device id wins over ``"*"``,
and unknown users or devices receive nothing.

A device reads its messages oldest first with :meth:`ToDeviceStore.take_pending`, which also
acknowledges: messages carried by a /sync response whose ``next_batch`` is at or before the
device's new ``since`` token are deleted.  :meth:`purge_expired` drops messages nobody collected
within the retention period.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from twisted.internet import defer

from storage.at_rest import TO_DEVICE_CONTENT
from storage.database import Cursor, Database

JsonDict = dict[str, Any]
ALL_DEVICES = "*"


@dataclass(frozen=True)
class ToDeviceMessage:
    """One message as a device receives it in /sync ``to_device.events``."""

    stream_id: int
    sender: str
    type: str
    content: JsonDict

    def to_event(self) -> JsonDict:
        return {"sender": self.sender, "type": self.type, "content": self.content}


@dataclass(frozen=True)
class Dedupe:
    """What makes a delivery unique: ``scope`` and ``key`` (see :func:`txn_dedupe` and
    :func:`edu_dedupe`)."""

    scope: str
    key: str


def txn_dedupe(user_id: str, device_id: str, txn_id: str) -> Dedupe:
    return Dedupe(f"txn {user_id} {device_id}", txn_id)


def edu_dedupe(origin: str, message_id: str) -> Dedupe:
    return Dedupe(f"edu {origin}", message_id)


@dataclass(frozen=True)
class PurgeCounts:
    expired: int  # messages older than the retention period
    orphaned: int  # messages for devices that no longer exist
    dedupe_records: int


class ToDeviceStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    # -- writes ------------------------------------------------------------------------------
    def deliver(
        self, sender: str, event_type: str, messages: Mapping[str, Mapping[str, JsonDict]],
        stream_id: int, now_ms: int, dedupe: Dedupe | None = None,
    ) -> defer.Deferred[dict[str, list[str]] | None]:
        """Store ``messages`` (``{user_id: {device_id or "*": content}}``) for local devices.

        Returns ``{user_id: [device_id, ...]}`` of the devices that got a message, or None when
        ``dedupe`` was seen before (nothing is written then).
        """

        def txn(cur: Cursor) -> dict[str, list[str]] | None:
            if dedupe is not None:
                if cur.select_one("SELECT 1 FROM to_device_seen WHERE scope = ? AND seen_key = ?",
                                  (dedupe.scope, dedupe.key)):
                    return None
                cur.execute("INSERT INTO to_device_seen (scope, seen_key, seen_ts) VALUES (?, ?, ?)",
                            (dedupe.scope, dedupe.key, now_ms))
            delivered: dict[str, list[str]] = {}
            rows: list[tuple[Any, ...]] = []
            for user_id, by_device in messages.items():
                existing = [r[0] for r in cur.select_all(
                    "SELECT device_id FROM devices WHERE user_id = ?", (user_id,))]
                targets = _resolve_devices(by_device, existing)
                for device_id, content in sorted(targets.items()):
                    rows.append((user_id, device_id, stream_id, sender, event_type,
                                 cur.at_rest.seal_json(TO_DEVICE_CONTENT, content), now_ms))
                    delivered.setdefault(user_id, []).append(device_id)
            cur.executemany(
                "INSERT INTO to_device_inbox (user_id, device_id, stream_id, sender, event_type,"
                " content, received_ts) VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
            return delivered

        return self.db.run_interaction("to_device_deliver", txn)

    def has_seen(self, dedupe: Dedupe) -> defer.Deferred[bool]:
        """Whether a delivery with ``dedupe`` has been stored already."""
        return self.db.run_interaction(
            "to_device_has_seen",
            lambda cur: cur.select_one(
                "SELECT 1 FROM to_device_seen WHERE scope = ? AND seen_key = ?",
                (dedupe.scope, dedupe.key)) is not None)

    # -- reads -------------------------------------------------------------------------------
    def take_pending(
        self, user_id: str, device_id: str, since: int | None, up_to: int, limit: int,
        received_since: int | None = None,
    ) -> defer.Deferred[tuple[list[ToDeviceMessage], bool]]:
        """Acknowledge, then read the device's pending messages for a /sync answered at
        ``up_to``.

        Messages delivered by a response with ``next_batch <= since`` are deleted first (an
        initial sync, ``since`` None, acknowledges nothing).  Then up to ``limit`` messages with
        ``stream_id <= up_to`` are returned oldest first and marked as carried by the response
        at ``up_to`` (those carried before keep their first mark).  The flag says whether more
        messages are waiting beyond the limit.  ``received_since``: messages received before
        it (expired, waiting for the purge to delete them) are left out, never delivered late.
        """
        young, received = ((" AND received_ts >= ?", [received_since])
                           if received_since is not None else ("", []))

        def txn(cur: Cursor) -> tuple[list[ToDeviceMessage], bool]:
            if since is not None:
                cur.execute(
                    "DELETE FROM to_device_inbox WHERE user_id = ? AND device_id = ?"
                    " AND delivered_token IS NOT NULL AND delivered_token <= ?",
                    (user_id, device_id, since))
            rows = cur.select_all(
                "SELECT stream_id, sender, event_type, content FROM to_device_inbox"
                f" WHERE user_id = ? AND device_id = ? AND stream_id <= ?{young}"
                " ORDER BY stream_id LIMIT ?", [user_id, device_id, up_to, *received, limit + 1])
            more = len(rows) > limit
            rows = rows[:limit]
            if rows:
                cur.execute(
                    "UPDATE to_device_inbox SET delivered_token = ? WHERE user_id = ?"
                    " AND device_id = ? AND stream_id <= ? AND delivered_token IS NULL",
                    (up_to, user_id, device_id, rows[-1][0]))
            messages = [ToDeviceMessage(int(r[0]), r[1], r[2],
                                        cur.at_rest.open_json(TO_DEVICE_CONTENT, r[3]))
                        for r in rows]
            return messages, more

        return self.db.run_interaction("to_device_take_pending", txn)

    def count_pending(self, user_id: str, device_id: str) -> defer.Deferred[int]:
        """How many messages the device has not acknowledged yet."""
        return self.db.run_interaction(
            "to_device_count_pending",
            lambda cur: int(cur.select_value(
                "SELECT COUNT(*) FROM to_device_inbox WHERE user_id = ? AND device_id = ?",
                (user_id, device_id))))

    # -- expiry ------------------------------------------------------------------------------
    def purge_expired(self, before_ts: int) -> defer.Deferred[PurgeCounts]:
        """Delete messages received before ``before_ts`` (never collected in time), messages of
        devices that no longer exist, and deduplication records older than ``before_ts``."""

        def txn(cur: Cursor) -> PurgeCounts:
            cur.execute("DELETE FROM to_device_inbox WHERE received_ts < ?", (before_ts,))
            expired = cur.rowcount
            cur.execute(
                "DELETE FROM to_device_inbox WHERE NOT EXISTS (SELECT 1 FROM devices d"
                " WHERE d.user_id = to_device_inbox.user_id"
                " AND d.device_id = to_device_inbox.device_id)")
            orphaned = cur.rowcount
            cur.execute("DELETE FROM to_device_seen WHERE seen_ts < ?", (before_ts,))
            return PurgeCounts(expired, orphaned, cur.rowcount)

        return self.db.run_interaction("to_device_purge", txn)


def _resolve_devices(by_device: Mapping[str, JsonDict], existing: list[str]
                     ) -> dict[str, JsonDict]:
    """Which existing devices get which content: ``"*"`` fans out to every device, an explicit
    device id overrides it; unknown devices are dropped."""
    known = set(existing)
    targets: dict[str, JsonDict] = {}
    if ALL_DEVICES in by_device:
        targets = {device_id: by_device[ALL_DEVICES] for device_id in existing}
    for device_id, content in by_device.items():
        if device_id != ALL_DEVICES and device_id in known:
            targets[device_id] = content
    return targets
