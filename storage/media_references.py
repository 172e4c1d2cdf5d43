"""Which events use which media, and deleting the local media only expired events used.

Every ``mxc://`` URI anywhere in an event's content (``url``, ``info.thumbnail_url``,
``file.url`` of an encrypted attachment, an avatar, an image pack...) is written to
``media_references`` in the event's own transaction (migration 191): a substring test on the
event's JSON, already made for the row, finds the few events that hold one.  An account data
entry's uses (a user's own image pack) are kept the same way, under a key of their own
(:func:`account_data_key`), replaced with each write of the entry.  When the retention
purge prunes events, :func:`release_txn` (in the purge batch's transaction) drops their
references; a local media item none of whose references is left, which no profile uses as its
avatar and which was uploaded after references began to be kept, has its rows deleted and is
listed in ``media_deletions``, whose files the purge then removes from disk.  A crash between
the two leaves the list, and the next run removes the files.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from twisted.internet import defer

from storage.database import Cursor, Database

MXC = "mxc://"


def mxc_uris(content: Any) -> Iterator[str]:
    """Every ``mxc://`` URI among the strings of ``content`` (nested objects and lists)."""
    if isinstance(content, str):
        if content.startswith(MXC):
            yield content
    elif isinstance(content, dict):
        for value in content.values():
            yield from mxc_uris(value)
    elif isinstance(content, list):
        for value in content:
            yield from mxc_uris(value)


def account_data_key(user_id: str, room_id: str, data_type: str) -> str:
    """The ``event_id`` under which an account data entry's uses are kept (no event ID
    starts with ``account_data``)."""
    return f"account_data {user_id} {room_id} {data_type}"


def replace_account_data_references(cur: Cursor, user_id: str, room_id: str, data_type: str,
                                    content: Any) -> None:
    """The uses of an account data entry (a user's own image pack, say) become those of its
    new ``content`` (None: the entry is gone), in the caller's transaction."""
    key = account_data_key(user_id, room_id, data_type)
    cur.execute("DELETE FROM media_references WHERE event_id = ?", (key,))
    cur.executemany("INSERT INTO media_references (mxc, event_id) VALUES (?, ?)",
                    [(uri, key) for uri in sorted(set(mxc_uris(content)))])


def record_references(cur: Cursor, events: Iterable[tuple[str, str, Any]]) -> None:
    """Write the references of ``(event_id, event JSON text, content)``, in the caller's
    transaction (the events' own)."""
    rows = {(uri, event_id) for event_id, text, content in events if MXC in text
            for uri in mxc_uris(content)}
    cur.executemany("INSERT INTO media_references (mxc, event_id) VALUES (?, ?)"
                    " ON CONFLICT (mxc, event_id) DO NOTHING", sorted(rows))


@dataclass(frozen=True)
class DeletedMedia:
    media_id: str
    size: int  # bytes of the content and its thumbnails


def release_txn(cur: Cursor, event_ids: Sequence[str], server_name: str) -> int:
    """Drop the references of ``event_ids`` (being purged) and delete the rows of the local
    media nothing else uses, listing them in ``media_deletions`` for their files; how many."""
    if not event_ids:
        return 0
    clause, args = cur.in_clause("event_id", list(event_ids))
    uris = {row[0] for row in cur.select_all(
        f"SELECT mxc FROM media_references WHERE {clause}", args)}
    cur.execute(f"DELETE FROM media_references WHERE {clause}", args)
    local = f"{MXC}{server_name}/"
    start = cur.select_value("SELECT after_ts FROM media_references_start")
    deleted = 0
    for uri in sorted(u for u in uris if u.startswith(local)):
        media_id = uri[len(local):]
        if cur.select_one("SELECT 1 FROM media_references WHERE mxc = ?", (uri,)) or \
                cur.select_one("SELECT 1 FROM profiles WHERE avatar_url = ?", (uri,)):
            continue
        row = cur.select_one("SELECT size, created_ts FROM media WHERE media_id = ?",
                             (media_id,))
        if row is None or row[1] <= int(start or 0):
            continue
        thumbnails = cur.select_value(
            "SELECT COALESCE(SUM(size), 0) FROM media_thumbnails WHERE media_id = ?",
            (media_id,))
        cur.execute("DELETE FROM media_thumbnails WHERE media_id = ?", (media_id,))
        cur.execute("DELETE FROM media WHERE media_id = ?", (media_id,))
        cur.execute("INSERT INTO media_deletions (media_id, size) VALUES (?, ?)"
                    " ON CONFLICT (media_id) DO NOTHING",
                    (media_id, int(row[0]) + int(thumbnails or 0)))
        deleted += 1
    return deleted


class MediaDeletionStore:
    """The media whose files are still to be removed from disk."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def pending(self, limit: int) -> defer.Deferred[list[DeletedMedia]]:
        """Up to ``limit`` media whose files are to be removed, with their sizes."""
        def txn(cur: Cursor) -> list[DeletedMedia]:
            return [DeletedMedia(row[0], int(row[1])) for row in cur.select_all(
                "SELECT media_id, size FROM media_deletions ORDER BY media_id LIMIT ?",
                (limit,))]

        return self.db.run_interaction("media_deletions_pending", txn)

    def removed(self, media_ids: Sequence[str]) -> defer.Deferred[None]:
        """The files of ``media_ids`` are gone from disk."""
        def txn(cur: Cursor) -> None:
            cur.executemany("DELETE FROM media_deletions WHERE media_id = ?",
                            [(m,) for m in media_ids])

        return self.db.run_interaction("media_deletions_removed", txn)
