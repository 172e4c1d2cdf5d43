"""Organisations (a tree), the email domains each owns, and who works for which.

Every write takes the :class:`~storage.audit.AuditDraft` that records it and appends it in the
same transaction (first, which orders concurrent admin writes), so a change is never written
without its entry nor an entry without its change.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from twisted.internet import defer

from storage.audit import AuditDraft, append_entry
from storage.database import Cursor, Database


@dataclass(frozen=True)
class Organisation:
    org_id: str
    name: str
    parent: str | None = None
    names: dict[str, str] = field(default_factory=dict)
    email_domains: tuple[str, ...] = ()
    settings: dict[str, Any] = field(default_factory=dict)
    created_ts: int = 0
    updated_ts: int = 0


@dataclass(frozen=True)
class Member:
    """A user's place in an organisation (the accounts half of the admin API writes it)."""

    user_id: str
    org_id: str
    designation: str | None = None
    employee_id: str | None = None
    email: str | None = None
    phone: str | None = None


def _load_all(cur: Cursor) -> list[Organisation]:
    domains: dict[str, list[str]] = {}
    for domain, org_id in cur.select_all(
            "SELECT domain, org_id FROM organisation_email_domains ORDER BY domain"):
        domains.setdefault(org_id, []).append(domain)
    rows = cur.select_all("SELECT org_id, parent_id, name, names, settings, created_ts,"
                          " updated_ts FROM organisations ORDER BY org_id")
    return [Organisation(r[0], r[2], r[1], json.loads(r[3]), tuple(domains.get(r[0], ())),
                         json.loads(r[4]), int(r[5]), int(r[6])) for r in rows]


def _write(cur: Cursor, org: Organisation, *, exists: bool) -> None:
    names, settings = json.dumps(org.names, sort_keys=True), json.dumps(org.settings,
                                                                          sort_keys=True)
    if exists:
        cur.execute("UPDATE organisations SET parent_id = ?, name = ?, names = ?, settings = ?,"
                    " updated_ts = ? WHERE org_id = ?",
                    (org.parent, org.name, names, settings, org.updated_ts, org.org_id))
        cur.execute("DELETE FROM organisation_email_domains WHERE org_id = ?", (org.org_id,))
    else:
        cur.execute("INSERT INTO organisations (org_id, parent_id, name, names, settings,"
                    " created_ts, updated_ts) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (org.org_id, org.parent, org.name, names, settings, org.created_ts,
                     org.updated_ts))
    cur.executemany("INSERT INTO organisation_email_domains (domain, org_id) VALUES (?, ?)",
                    [(domain, org.org_id) for domain in org.email_domains])


def _exists(cur: Cursor, org_id: str) -> bool:
    return cur.select_one("SELECT 1 FROM organisations WHERE org_id = ?", (org_id,)) is not None


class OrganisationStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def all(self) -> defer.Deferred[list[Organisation]]:
        """Every organisation (a node holds hundreds, not millions: admin calls read the tree)."""
        return self.db.run_interaction("organisations_all", _load_all)

    def create(self, org: Organisation, entry: AuditDraft) -> defer.Deferred[None]:
        """Insert ``org``; IntegrityError if its ID or one of its domains is taken."""
        def write(cur: Cursor) -> None:
            append_entry(cur, entry)
            _write(cur, org, exists=False)

        return self.db.run_interaction("organisation_create", write)

    def update(self, org: Organisation, entry: AuditDraft) -> defer.Deferred[None]:
        def write(cur: Cursor) -> None:
            append_entry(cur, entry)
            _write(cur, org, exists=True)

        return self.db.run_interaction("organisation_update", write)

    def save_all(self, orgs: Sequence[Organisation], entries: Sequence[AuditDraft],
                 source: tuple[str, str, int] | None = None) -> defer.Deferred[None]:
        """Create or update each of ``orgs`` (parents before children) with its entry, in one
        transaction; with ``source`` (name, digest, time), record it as applied."""
        def write(cur: Cursor) -> None:
            for org, entry in zip(orgs, entries, strict=True):
                append_entry(cur, entry)
                _write(cur, org, exists=_exists(cur, org.org_id))
            if source is not None:
                cur.execute("DELETE FROM organisation_sources WHERE source = ?", (source[0],))
                cur.execute("INSERT INTO organisation_sources (source, digest, applied_ts)"
                            " VALUES (?, ?, ?)", source)

        return self.db.run_interaction("organisations_save_all", write)

    def applied_digest(self, source: str) -> defer.Deferred[str | None]:
        def read(cur: Cursor) -> str | None:
            value = cur.select_value("SELECT digest FROM organisation_sources WHERE source = ?",
                                     (source,))
            return None if value is None else str(value)

        return self.db.run_interaction("organisation_source_digest", read)

    def delete(self, org_id: str, entry: AuditDraft) -> defer.Deferred[None]:
        """Delete an organisation; IntegrityError if anything still refers to it."""
        def write(cur: Cursor) -> None:
            append_entry(cur, entry)
            cur.execute("DELETE FROM organisation_email_domains WHERE org_id = ?", (org_id,))
            cur.execute("DELETE FROM organisations WHERE org_id = ?", (org_id,))

        return self.db.run_interaction("organisation_delete", write)

    # -- members ---------------------------------------------------------------------------
    def members_in(self, org_ids: Sequence[str]) -> defer.Deferred[list[str]]:
        """The users placed in any of ``org_ids``, in user ID order."""
        def read(cur: Cursor) -> list[str]:
            found: list[str] = []
            for start in range(0, len(org_ids), 500):
                part = list(org_ids[start:start + 500])
                marks = ", ".join("?" for _ in part)
                found += [row[0] for row in cur.select_all(
                    f"SELECT user_id FROM organisation_members WHERE org_id IN ({marks})", part)]
            return sorted(found)

        return self.db.run_interaction("organisation_members_in", read)

    def count_members(self, org_id: str) -> defer.Deferred[int]:
        def read(cur: Cursor) -> int:
            return int(cur.select_value(
                "SELECT COUNT(*) FROM organisation_members WHERE org_id = ?", (org_id,)))

        return self.db.run_interaction("organisation_count_members", read)

    def set_member(self, member: Member, now_ms: int,
                   entry: AuditDraft) -> defer.Deferred[None]:
        """Place a user in an organisation (replacing any earlier place)."""
        def write(cur: Cursor) -> None:
            append_entry(cur, entry)
            cur.execute("DELETE FROM organisation_members WHERE user_id = ?", (member.user_id,))
            cur.execute("INSERT INTO organisation_members (user_id, org_id, designation,"
                        " employee_id, email, phone, updated_ts) VALUES (?, ?, ?, ?, ?, ?, ?)",
                        (member.user_id, member.org_id, member.designation, member.employee_id,
                         member.email, member.phone, now_ms))

        return self.db.run_interaction("organisation_set_member", write)

    def member(self, user_id: str) -> defer.Deferred[Member | None]:
        def read(cur: Cursor) -> Member | None:
            row = cur.select_one("SELECT user_id, org_id, designation, employee_id, email, phone"
                                 " FROM organisation_members WHERE user_id = ?", (user_id,))
            return None if row is None else Member(*row)

        return self.db.run_interaction("organisation_member", read)
