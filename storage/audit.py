"""The audit log: append-only, hash-chained entries and signatures of the chain's head.

An entry is appended inside the transaction of the change it records (:func:`append_entry`
takes the cursor), so a change and its entry are written together or not at all.  The append
updates the one ``audit_head`` row first: that row's lock (PostgreSQL) or the single writer
(SQLite) orders every append, so the previous head read in the transaction is the last one and
the chain never forks.  Nothing here updates or deletes an entry.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from twisted.internet import defer

from protocol.canonical import encode_canonical_json
from storage.database import Cursor, Database

ENTRY_FIELDS = ("seq", "ts", "actor", "action", "target", "organisation", "client_ip",
                "outcome", "detail", "prev_hash")
_COLUMNS = ("seq, ts, actor, action, target, org_id, client_ip, outcome, detail, prev_hash, "
            "hash")


@dataclass(frozen=True)
class AuditDraft:
    """What an entry records, before it has a place in the chain.  ``organisation`` is the
    organisation the action concerned ('' for the node); ``outcome`` is ``ok`` or ``refused``."""

    ts: int
    actor: str
    action: str
    target: str
    organisation: str
    client_ip: str
    outcome: str
    detail: dict[str, Any] = field(default_factory=dict)


def entry_hash(entry: dict[str, Any]) -> str:
    """SHA-256 (hex) of the canonical JSON of an entry's fields (every field but its hash)."""
    return hashlib.sha256(encode_canonical_json(
        {name: entry[name] for name in ENTRY_FIELDS})).hexdigest()


def append_entry(cur: Cursor, draft: AuditDraft) -> int:
    """Append ``draft`` after the current head, in the caller's transaction; its seq."""
    return append_entries(cur, [draft])[0]


def append_entries(cur: Cursor, drafts: Sequence[AuditDraft]) -> list[int]:
    """Append ``drafts`` in order after the current head, in the caller's transaction (the
    head is moved once, the entries inserted in batches); their seqs."""
    cur.execute("UPDATE audit_head SET seq = seq + ? WHERE id = 1", (len(drafts),))
    row = cur.select_one("SELECT seq, hash FROM audit_head WHERE id = 1")
    assert row is not None, "migration 110 writes the audit head"
    first, prev_hash = int(row[0]) - len(drafts) + 1, str(row[1])
    rows = []
    for seq, draft in enumerate(drafts, first):
        entry = {"seq": seq, "ts": draft.ts, "actor": draft.actor, "action": draft.action,
                 "target": draft.target, "organisation": draft.organisation,
                 "client_ip": draft.client_ip, "outcome": draft.outcome,
                 "detail": draft.detail, "prev_hash": prev_hash}
        digest = entry_hash(entry)
        rows.append((seq, draft.ts, draft.actor, draft.action, draft.target,
                     draft.organisation, draft.client_ip, draft.outcome,
                     json.dumps(draft.detail, sort_keys=True), prev_hash, digest))
        prev_hash = digest
    cur.executemany(
        f"INSERT INTO audit_log ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
    cur.execute("UPDATE audit_head SET hash = ? WHERE id = 1", (prev_hash,))
    return [r[0] for r in rows]


def _entry(row: Sequence[Any]) -> dict[str, Any]:
    keys = ENTRY_FIELDS + ("hash",)
    entry = dict(zip(keys, row, strict=True))
    entry["seq"], entry["ts"] = int(entry["seq"]), int(entry["ts"])
    try:
        entry["detail"] = json.loads(entry["detail"])
    except ValueError:  # a damaged row: its hash will not match, the verifier names it
        pass
    return entry


@dataclass(frozen=True)
class Change:
    """What an entry says changed: ``action`` on ``target``; ``ok`` False for a refusal."""

    seq: int
    action: str
    target: str
    ok: bool


@dataclass(frozen=True)
class HeadSignature:
    seq: int
    hash: str
    key_id: str
    signature: str
    signed_ts: int


class AuditStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def append(self, draft: AuditDraft) -> defer.Deferred[int]:
        """Append an entry on its own (a refusal, which changes nothing else)."""
        return self.db.run_interaction("audit_append", append_entry, draft)

    def entries(self, after: int, limit: int,
                organisations: Sequence[str] | None = None) -> defer.Deferred[list[dict[str, Any]]]:
        """Up to ``limit`` entries with seq > ``after``, in order; only those concerning
        ``organisations`` when given."""
        def read(cur: Cursor) -> list[dict[str, Any]]:
            where, args = "seq > ?", [after]
            if organisations is not None:
                clause, values = cur.in_clause("org_id", list(organisations))
                where, args = f"{where} AND {clause}", [after, *values]
            rows = cur.select_all(
                f"SELECT {_COLUMNS} FROM audit_log WHERE {where} ORDER BY seq LIMIT ?",
                (*args, limit))
            return [_entry(row) for row in rows]

        return self.db.run_interaction("audit_entries", read)

    def changes(self, after: int, limit: int) -> defer.Deferred[list[Change]]:
        """What up to ``limit`` entries with seq > ``after`` changed, in order (refusals
        included, as ``ok`` False: they move the reader on and change nothing)."""
        def read(cur: Cursor) -> list[Change]:
            rows = cur.select_all("SELECT seq, action, target, outcome FROM audit_log"
                                  " WHERE seq > ? ORDER BY seq LIMIT ?", (after, limit))
            return [Change(int(r[0]), str(r[1]), str(r[2]), r[3] == "ok") for r in rows]

        return self.db.run_interaction("audit_changes", read)

    def head(self) -> defer.Deferred[tuple[int, str]]:
        def read(cur: Cursor) -> tuple[int, str]:
            row = cur.select_one("SELECT seq, hash FROM audit_head WHERE id = 1")
            assert row is not None
            return int(row[0]), str(row[1])

        return self.db.run_interaction("audit_head", read)

    def add_signature(self, signature: HeadSignature) -> defer.Deferred[None]:
        def write(cur: Cursor) -> None:
            cur.execute(
                "INSERT INTO audit_signatures (seq, hash, key_id, signature, signed_ts)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT (seq) DO NOTHING",
                (signature.seq, signature.hash, signature.key_id, signature.signature,
                 signature.signed_ts))

        return self.db.run_interaction("audit_add_signature", write)

    def signatures(self) -> defer.Deferred[list[HeadSignature]]:
        def read(cur: Cursor) -> list[HeadSignature]:
            rows = cur.select_all("SELECT seq, hash, key_id, signature, signed_ts"
                                  " FROM audit_signatures ORDER BY seq")
            return [HeadSignature(int(r[0]), str(r[1]), str(r[2]), str(r[3]), int(r[4]))
                    for r in rows]

        return self.db.run_interaction("audit_signatures", read)

    def last_signed_seq(self) -> defer.Deferred[int]:
        def read(cur: Cursor) -> int:
            return int(cur.select_value("SELECT MAX(seq) FROM audit_signatures") or 0)

        return self.db.run_interaction("audit_last_signed", read)
