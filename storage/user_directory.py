"""User directory search over profiles and current room memberships (no event scans).

A searcher sees the users who share a joined room with them and the users joined to rooms
published in the room directory (``rooms.is_public``); deactivated local users are never shown.
The database narrows candidates with a case-insensitive substring match on the user ID and the
display name (on SQLite only for ASCII terms, as its LOWER folds ASCII only); :func:`matches` then
keeps only word-prefix matches, so "ali" finds "@alice:x" and "Bob Alison" but not "@malin:x".
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from twisted.internet import defer

from storage.database import Cursor, Database

_WORD_SPLIT = re.compile(r"[^\w]+")
#: How many terms (the longest) narrow the database query, and how many characters of each:
#: databases limit LIKE patterns and expression depth.  matches() still checks every term.
MAX_QUERY_TERMS = 8
MAX_QUERY_TERM_CHARS = 256


@dataclass(frozen=True)
class DirectoryUser:
    user_id: str
    display_name: str | None
    avatar_url: str | None
    shares_room: bool
    organisation: str | None = None  # the organisation a local account is placed in

    def to_json(self) -> dict[str, Any]:
        result: dict[str, Any] = {"user_id": self.user_id}
        if self.display_name is not None:
            result["display_name"] = self.display_name
        if self.avatar_url is not None:
            result["avatar_url"] = self.avatar_url
        return result


def search_terms(search_term: str) -> list[str]:
    """The distinct lower-cased, whitespace-separated words of a search."""
    return list(dict.fromkeys(word for word in search_term.lower().split() if word))


def _query_terms(terms: list[str], engine: str) -> list[str]:
    """The terms that narrow the query, cut to :data:`MAX_QUERY_TERM_CHARS` (a word a term is a
    prefix of contains the term's start too)."""
    usable = [t for t in terms if engine != "sqlite" or t.isascii()]  # SQLite's LOWER: ASCII
    usable.sort(key=len, reverse=True)
    return [term[:MAX_QUERY_TERM_CHARS] for term in usable[:MAX_QUERY_TERMS]]


def matches(user_id: str, display_name: str | None, terms: list[str]) -> bool:
    """Whether every term is a prefix of a word of the localpart or display name (or of the
    whole user ID, localpart or display name)."""
    user_id = user_id.lower()
    localpart = user_id[1:].split(":", 1)[0]
    name = (display_name or "").lower()
    candidates = [user_id, localpart, name]
    candidates += [w for w in _WORD_SPLIT.split(localpart) if w]
    candidates += [w for w in _WORD_SPLIT.split(name) if w]
    return all(any(c.startswith(term) for c in candidates) for term in terms)


def rank(users: list[DirectoryUser], search_term: str, limit: int, more: bool = False
         ) -> tuple[list[DirectoryUser], bool]:
    """The first ``limit`` of ``users`` whose ID or (shown) display name matches every term,
    those sharing a room with the searcher first, then by name; and whether there were more
    (``more``: the candidates were cut)."""
    terms = search_terms(search_term)
    found = [u for u in users if matches(u.user_id, u.display_name, terms)]
    found.sort(key=lambda u: (not u.shares_room, u.display_name is None,
                              (u.display_name or u.user_id).lower(), u.user_id))
    return found[:limit], len(found) > limit or more


def _like_pattern(term: str) -> str:
    escaped = term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


class UserDirectoryStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def search_users(
        self, searcher: str, search_term: str, limit: int, *, max_candidates: int = 1000
    ) -> defer.Deferred[tuple[list[DirectoryUser], bool]]:
        """Up to ``limit`` visible users matching ``search_term`` and whether there were more.

        Users sharing a room with the searcher come first, then by display name (or user ID).
        """
        d = self.candidates(searcher, search_term, max_candidates=max_candidates)
        return d.addCallback(lambda found: rank(found[0], search_term, limit, found[1]))

    def candidates(self, searcher: str, search_term: str, *, max_candidates: int = 1000
                   ) -> defer.Deferred[tuple[list[DirectoryUser], bool]]:
        """The visible users the database finds for ``search_term`` (a loose match: give them
        to :func:`rank`, after hiding what the searcher may not see) and whether there may be
        more than ``max_candidates``."""
        terms = search_terms(search_term)

        def txn(cur: Cursor) -> tuple[list[DirectoryUser], bool]:
            if not terms:
                return [], False
            conditions = []
            args: list[Any] = [searcher, True]
            for term in _query_terms(terms, cur.engine):
                conditions.append("(LOWER(m.state_key) LIKE ? ESCAPE '\\'"
                                  " OR LOWER(p.displayname) LIKE ? ESCAPE '\\')")
                args += [_like_pattern(term)] * 2
            args += [False, max_candidates]
            rows = cur.select_all(
                "WITH shared AS ("
                "  SELECT room_id FROM current_state_events WHERE state_key = ?"
                "  AND type = 'm.room.member' AND membership = 'join'),"
                " visible AS ("
                "  SELECT room_id FROM shared"
                "  UNION SELECT room_id FROM rooms WHERE is_public = ?)"
                " SELECT m.state_key, p.displayname, p.avatar_url,"
                "  MAX(CASE WHEN s.room_id IS NULL THEN 0 ELSE 1 END) AS shares, o.org_id"
                " FROM visible v"
                " JOIN current_state_events m ON m.room_id = v.room_id"
                "  AND m.type = 'm.room.member' AND m.membership = 'join'"
                " LEFT JOIN shared s ON s.room_id = m.room_id"
                " LEFT JOIN profiles p ON p.user_id = m.state_key"
                " LEFT JOIN users u ON u.user_id = m.state_key"
                " LEFT JOIN organisation_members o ON o.user_id = m.state_key"
                f" WHERE {' AND '.join(conditions) or '1 = 1'}"
                " AND (u.deactivated IS NULL OR u.deactivated = ?)"
                " GROUP BY m.state_key, p.displayname, p.avatar_url, o.org_id"
                " ORDER BY shares DESC, m.state_key LIMIT ?", args)
            users = [DirectoryUser(r[0], r[1], r[2], bool(r[3]), r[4]) for r in rows]
            return users, len(rows) >= max_candidates

        return self.db.run_interaction("search_users", txn)

    def is_known_user(self, user_id: str) -> defer.Deferred[bool]:
        """Whether the node knows ``user_id``: a local account or a member of a room we hold."""

        def txn(cur: Cursor) -> bool:
            if cur.select_one("SELECT 1 FROM users WHERE user_id = ?", (user_id,)):
                return True
            return cur.select_one(
                "SELECT 1 FROM current_state_events WHERE state_key = ?"
                " AND type = 'm.room.member' LIMIT 1", (user_id,)) is not None

        return self.db.run_interaction("is_known_user", txn)
