"""The media repository's records: uploaded content, cached thumbnails and reserved media IDs.

The bytes themselves live on disk (broker/media/files.py); these tables say what each file is, who
uploaded it and which thumbnails exist.  A media ID reserved with ``POST /_matrix/media/v1/create``
sits in ``media_pending`` until its content arrives, when it moves to ``media`` in one transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from twisted.internet import defer
from twisted.python.failure import Failure

from storage.database import Cursor, Database, IntegrityError

_MEDIA_COLUMNS = "media_id, user_id, content_type, upload_name, size, sha256, created_ts"


@dataclass(frozen=True)
class MediaRecord:
    """One uploaded file."""

    media_id: str
    user_id: str
    content_type: str
    upload_name: str | None
    size: int
    sha256: str
    created_ts: int


@dataclass(frozen=True)
class ThumbnailRecord:
    """One cached thumbnail, keyed by the requested size and method."""

    media_id: str
    width: int
    height: int
    method: str
    content_type: str
    size: int


@dataclass(frozen=True)
class PendingMedia:
    """A media ID reserved for a later upload."""

    media_id: str
    user_id: str
    created_ts: int
    expires_ts: int


class CompleteResult(Enum):
    """What happened to an upload into a reserved media ID."""

    STORED = "stored"
    NOT_PENDING = "not_pending"  # unknown, expired or (concurrently) already uploaded
    ALREADY_UPLOADED = "already_uploaded"


def _insert_media(cur: Cursor, record: MediaRecord) -> None:
    cur.execute(
        f"INSERT INTO media ({_MEDIA_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (record.media_id, record.user_id, record.content_type, record.upload_name, record.size,
         record.sha256, record.created_ts),
    )


class MediaStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    # -- uploaded content ------------------------------------------------------------------------
    def store_media(self, record: MediaRecord) -> defer.Deferred[None]:
        """Record a new upload; IntegrityError if the media ID is taken."""
        return self.db.run_interaction("store_media", _insert_media, record)

    def get_media(self, media_id: str) -> defer.Deferred[MediaRecord | None]:
        def txn(cur: Cursor) -> MediaRecord | None:
            row = cur.select_one(f"SELECT {_MEDIA_COLUMNS} FROM media WHERE media_id = ?",
                                 (media_id,))
            return MediaRecord(*row) if row else None

        return self.db.run_interaction("get_media", txn)

    def get_media_for_user(self, user_id: str, limit: int = 100) -> defer.Deferred[list[MediaRecord]]:
        """A user's uploads, newest first (for quotas and admin tools)."""

        def txn(cur: Cursor) -> list[MediaRecord]:
            rows = cur.select_all(
                f"SELECT {_MEDIA_COLUMNS} FROM media WHERE user_id = ?"
                " ORDER BY created_ts DESC, media_id LIMIT ?", (user_id, limit))
            return [MediaRecord(*row) for row in rows]

        return self.db.run_interaction("get_media_for_user", txn)

    # -- thumbnails --------------------------------------------------------------------------------
    def get_thumbnails(self, media_id: str) -> defer.Deferred[list[ThumbnailRecord]]:
        def txn(cur: Cursor) -> list[ThumbnailRecord]:
            rows = cur.select_all(
                "SELECT media_id, width, height, method, content_type, size"
                " FROM media_thumbnails WHERE media_id = ? ORDER BY width, height, method",
                (media_id,))
            return [ThumbnailRecord(*row) for row in rows]

        return self.db.run_interaction("get_thumbnails", txn)

    def store_thumbnail(self, record: ThumbnailRecord) -> defer.Deferred[bool]:
        """Record a cached thumbnail; False if the same size and method was already recorded
        (two requests raced to generate it; both files are identical)."""

        def txn(cur: Cursor) -> bool:
            exists = cur.select_one(
                "SELECT 1 FROM media_thumbnails"
                " WHERE media_id = ? AND width = ? AND height = ? AND method = ?",
                (record.media_id, record.width, record.height, record.method))
            if exists:
                return False
            cur.execute(
                "INSERT INTO media_thumbnails (media_id, width, height, method, content_type, size)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (record.media_id, record.width, record.height, record.method,
                 record.content_type, record.size))
            return True

        d = self.db.run_interaction("store_thumbnail", txn)

        def raced(failure: Failure) -> bool:
            failure.trap(IntegrityError)
            return False

        d.addErrback(raced)
        return d

    # -- reserved media IDs (asynchronous upload) --------------------------------------------------
    def create_pending(
        self, media_id: str, user_id: str, now_ms: int, expires_ts: int, max_pending: int
    ) -> defer.Deferred[bool]:
        """Reserve ``media_id`` for ``user_id`` unless they already hold ``max_pending``
        unexpired reservations; False when over the limit.  Expired reservations are dropped."""

        def txn(cur: Cursor) -> bool:
            cur.execute("DELETE FROM media_pending WHERE user_id = ? AND expires_ts <= ?",
                        (user_id, now_ms))
            held = cur.select_value(
                "SELECT COUNT(*) FROM media_pending WHERE user_id = ?", (user_id,))
            if int(held or 0) >= max_pending:
                return False
            cur.execute(
                "INSERT INTO media_pending (media_id, user_id, created_ts, expires_ts)"
                " VALUES (?, ?, ?, ?)", (media_id, user_id, now_ms, expires_ts))
            return True

        return self.db.run_interaction("create_pending", txn)

    def get_pending(self, media_id: str) -> defer.Deferred[PendingMedia | None]:
        def txn(cur: Cursor) -> PendingMedia | None:
            row = cur.select_one(
                "SELECT media_id, user_id, created_ts, expires_ts FROM media_pending"
                " WHERE media_id = ?", (media_id,))
            return PendingMedia(*row) if row else None

        return self.db.run_interaction("get_pending", txn)

    def complete_pending(self, record: MediaRecord, now_ms: int) -> defer.Deferred[CompleteResult]:
        """Move a reserved media ID to ``media`` with its content's details, in one transaction."""

        def txn(cur: Cursor) -> CompleteResult:
            if cur.select_one("SELECT 1 FROM media WHERE media_id = ?", (record.media_id,)):
                return CompleteResult.ALREADY_UPLOADED
            cur.execute(
                "DELETE FROM media_pending WHERE media_id = ? AND user_id = ? AND expires_ts > ?",
                (record.media_id, record.user_id, now_ms))
            if cur.rowcount != 1:
                return CompleteResult.NOT_PENDING
            _insert_media(cur, record)
            return CompleteResult.STORED

        return self.db.run_interaction("complete_pending", txn)

    def delete_expired_pending(self, now_ms: int) -> defer.Deferred[int]:
        """Drop every expired reservation; returns how many."""

        def txn(cur: Cursor) -> int:
            cur.execute("DELETE FROM media_pending WHERE expires_ts <= ?", (now_ms,))
            return cur.rowcount

        return self.db.run_interaction("delete_expired_pending", txn)
