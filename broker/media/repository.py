"""The media repository: uploads, reserved media IDs, downloads and cached thumbnails.

One object per node, used by the HTTP endpoints in broker/client_api/media.py.  Only this node's
media is served: content from other servers arrives with media federation, so a remote server
name is answered like unknown media (404 M_NOT_FOUND).
"""

from __future__ import annotations

import dataclasses
import logging
import re
import secrets
import string
from collections.abc import Callable
from typing import Any, BinaryIO

from twisted.internet import defer, task, threads

from broker import errors
from broker.errors import Conflict, Forbidden, InvalidInput, LimitExceeded, NotFound, TimedOut
from broker.media.files import MediaFiles, TooLarge
from broker.media.headers import base_type, media_headers
from broker.media.streaming import file_streamer
from broker.media.thumbnails import (
    SOURCE_TYPES,
    CannotThumbnail,
    SourceTooLarge,
    Thumbnail,
    make_thumbnail,
)
from broker.raw_response import RawResponse
from storage.database import IntegrityError
from storage.media import CompleteResult, MediaRecord, MediaStore, ThumbnailRecord

logger = logging.getLogger(__name__)

MEDIA_ID_LENGTH = 24
# spec: media IDs are restricted to these characters (no path traversal through mxc:// URIs).
MEDIA_ID_PATTERN = re.compile(r"^[A-Za-z0-9_-]{5,255}$")
PENDING_LIFETIME_MS = 24 * 60 * 60 * 1000  # the spec's recommended expiry for unused IDs
MAX_PENDING_PER_USER = 10
DEFAULT_TIMEOUT_MS = 20_000
MAX_TIMEOUT_MS = 60_000
RECHECK_MS = 1_000  # how often a waiting download looks again (uploads on other workers)
MAX_CACHED_THUMBNAILS = 16  # per media: beyond this, thumbnails are rendered but not kept
THUMBNAIL_WORKERS = 2  # concurrent Pillow renders (CPU-bound)
PURGE_INTERVAL_S = 3600


def new_media_id() -> str:
    alphabet = string.ascii_letters + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(MEDIA_ID_LENGTH))


def cannot_thumbnail(reason: str) -> InvalidInput:
    return InvalidInput(errcode="M_UNKNOWN", message=f"Cannot generate thumbnails for the requested content: "
                                         f"{reason}")


class MediaRepository:
    def __init__(self, store: MediaStore, files: MediaFiles, clock: Any, server_name: str,
                 max_upload_bytes: int) -> None:
        self.store = store
        self.files = files
        self.clock = clock
        self.server_name = server_name
        self.max_upload_bytes = max_upload_bytes
        self._upload_waiters: dict[str, list[defer.Deferred[None]]] = {}
        self._render_slots = defer.DeferredSemaphore(THUMBNAIL_WORKERS)
        self._complete_lock = defer.DeferredLock()
        self._purge_loop: task.LoopingCall | None = None
        self.on_upload: Callable[[str, int], None] | None = None  # told uploader and size

    def mxc(self, media_id: str) -> str:
        return f"mxc://{self.server_name}/{media_id}"

    def check_local(self, server_name: str, media_id: str) -> None:
        """404 M_NOT_FOUND unless the media ID is well-formed and belongs to this node.

        Another server's media is served by ``broker.media.remote.RemoteMedia``."""
        if server_name != self.server_name:
            raise NotFound("Remote media is not available from this server")
        if not MEDIA_ID_PATTERN.match(media_id):
            raise NotFound("Unknown media")

    # -- uploads -------------------------------------------------------------------------------
    async def upload(self, user_id: str, source: BinaryIO, content_type: str,
                     filename: str | None) -> str:
        """Store a new upload; returns its ``mxc://`` URI."""
        media_id = new_media_id()
        record = await self._write(user_id, media_id, source, content_type, filename)
        try:
            await self.store.store_media(record)
        except BaseException:
            await self.files.remove(self.files.content_path(media_id))
            raise
        self._uploaded(record)
        return self.mxc(media_id)

    def _uploaded(self, record: MediaRecord) -> None:
        if self.on_upload is not None:
            self.on_upload(record.user_id, record.size)

    async def create(self, user_id: str) -> tuple[str, int]:
        """Reserve a media ID for a later upload: its URI and when the reservation expires."""
        now = self.clock.time_ms()
        expires = now + PENDING_LIFETIME_MS
        media_id = new_media_id()
        if not await self.store.create_pending(media_id, user_id, now, expires,
                                               MAX_PENDING_PER_USER):
            raise LimitExceeded(
                60_000, f"At most {MAX_PENDING_PER_USER} pending uploads are allowed")
        return self.mxc(media_id), expires

    async def upload_to_reserved(self, user_id: str, server_name: str, media_id: str,
                                 source: BinaryIO, content_type: str, filename: str | None) -> None:
        """Fill a media ID reserved with :meth:`create` (spec's error codes on refusal)."""
        self.check_local(server_name, media_id)
        if await self.store.get_media(media_id) is not None:
            raise Conflict("Media already uploaded", errcode="M_CANNOT_OVERWRITE_MEDIA")
        pending = await self.store.get_pending(media_id)
        if pending is None or pending.expires_ts <= self.clock.time_ms():
            raise NotFound("Unknown or expired media ID")
        if pending.user_id != user_id:
            raise Forbidden("This media ID was created by another user")
        # The bytes land under a scratch ID first (slow, unlocked); the short critical section
        # then moves them to the real name and records them, so two racing PUTs cannot mix.
        scratch_id = new_media_id()
        scratch = await self._write(user_id, scratch_id, source, content_type, filename)
        record = dataclasses.replace(scratch, media_id=media_id)
        try:
            await self._complete_lock.run(
                lambda: defer.ensureDeferred(self._complete(record, scratch_id)))
        finally:
            await self.files.remove(self.files.content_path(scratch_id))
        self._uploaded(record)
        self._wake_waiters(media_id)

    async def _complete(self, record: MediaRecord, scratch_id: str) -> None:
        final = self.files.content_path(record.media_id)
        if await self.store.get_media(record.media_id) is not None:
            raise Conflict("Media already uploaded", errcode="M_CANNOT_OVERWRITE_MEDIA")
        await self.files.move(self.files.content_path(scratch_id), final)
        result: CompleteResult | None = None
        try:
            result = await self.store.complete_pending(record, self.clock.time_ms())
        finally:
            if result is None or result is CompleteResult.NOT_PENDING:  # no row refers to it
                await self.files.remove(final)
        if result is CompleteResult.NOT_PENDING:  # expired meanwhile
            raise NotFound("Unknown or expired media ID")
        if result is CompleteResult.ALREADY_UPLOADED:
            raise Conflict("Media already uploaded", errcode="M_CANNOT_OVERWRITE_MEDIA")

    async def _write(self, user_id: str, media_id: str, source: BinaryIO, content_type: str,
                     filename: str | None) -> MediaRecord:
        try:
            written = await self.files.write_content(media_id, source, self.max_upload_bytes)
        except TooLarge as e:
            raise errors.TooLarge(f"Upload exceeds {self.max_upload_bytes} bytes") from e
        return MediaRecord(media_id, user_id, content_type, filename, written.size,
                           written.sha256, self.clock.time_ms())

    # -- finding content -----------------------------------------------------------------------
    async def get_local(self, server_name: str, media_id: str,
                        timeout_ms: int = DEFAULT_TIMEOUT_MS) -> MediaRecord:
        """The media's record, waiting up to ``timeout_ms`` for a reserved ID's upload
        (504 M_NOT_YET_UPLOADED after that); 404 M_NOT_FOUND for unknown media."""
        self.check_local(server_name, media_id)
        deadline = self.clock.time_ms() + min(max(timeout_ms, 0), MAX_TIMEOUT_MS)
        while True:
            record = await self.store.get_media(media_id)
            if record is not None:
                return record
            pending = await self.store.get_pending(media_id)
            now = self.clock.time_ms()
            if pending is None or pending.expires_ts <= now:
                raise NotFound("Unknown media")
            if now >= deadline:
                raise TimedOut("Content has not yet been uploaded",
                               errcode="M_NOT_YET_UPLOADED")
            await self._wait_for_upload(media_id, min(deadline - now, RECHECK_MS))

    async def _wait_for_upload(self, media_id: str, wait_ms: int) -> None:
        woken: defer.Deferred[None] = defer.Deferred()
        waiters = self._upload_waiters.setdefault(media_id, [])
        waiters.append(woken)

        def time_up() -> None:
            if not woken.called:
                woken.callback(None)

        timer = self.clock.call_later(wait_ms / 1000, time_up)
        try:
            await woken
        finally:
            if timer.active():
                timer.cancel()
            if woken in waiters:
                waiters.remove(woken)
            if not waiters:
                self._upload_waiters.pop(media_id, None)

    def _wake_waiters(self, media_id: str) -> None:
        for waiter in list(self._upload_waiters.get(media_id, [])):
            if not waiter.called:
                waiter.callback(None)

    # -- serving -------------------------------------------------------------------------------
    async def download(self, server_name: str, media_id: str, *, filename: str | None = None,
                       timeout_ms: int = DEFAULT_TIMEOUT_MS) -> RawResponse:
        """The content, streamed from disk; ``filename`` overrides the uploaded name."""
        record = await self.get_local(server_name, media_id, timeout_ms)
        return await self._serve_file(record, filename or record.upload_name)

    async def _serve_file(self, record: MediaRecord, filename: str | None, *,
                          inline: bool | None = None) -> RawResponse:
        path = self.files.content_path(record.media_id)
        size = await self.files.size_of(path)
        if size is None:
            logger.warning("media %s has a record but no file at %s", record.media_id, path)
            raise NotFound("Unknown media")
        return RawResponse(b"", record.content_type,
                           stream=file_streamer(path, self.files.clear_chunks, size),
                           length=size,
                           headers=media_headers(record.content_type, filename, inline=inline))

    async def thumbnail(self, server_name: str, media_id: str, width: int, height: int,
                        method: str, *, animated: bool = False,
                        timeout_ms: int = DEFAULT_TIMEOUT_MS) -> RawResponse:
        """A thumbnail per the spec's ``crop``/``scale`` rules, cached on disk when possible."""
        record = await self.get_local(server_name, media_id, timeout_ms)
        if base_type(record.content_type) not in SOURCE_TYPES:
            raise cannot_thumbnail(f"{base_type(record.content_type)} is not an image")
        cached = await self.store.get_thumbnails(media_id)
        for entry in cached:
            if (entry.width, entry.height, entry.method) == (width, height, method):
                path = self.files.thumbnail_path(media_id, width, height, method,
                                                 entry.content_type)
                try:
                    data = await self.files.read_bytes(path)
                except FileNotFoundError:
                    logger.warning("cached thumbnail %s is missing; rendering again", path)
                    break
                return self._thumbnail_response(data, entry.content_type)
        thumbnail = await self._render(record, width, height, method, animated)
        if thumbnail is None:  # the original is small enough to be its own thumbnail
            return await self._serve_file(record, _thumbnail_name(record.content_type),
                                          inline=True)
        if len(cached) < MAX_CACHED_THUMBNAILS:
            await self._cache(media_id, width, height, method, thumbnail)
        return self._thumbnail_response(thumbnail.data, thumbnail.content_type)

    async def _render(self, record: MediaRecord, width: int, height: int, method: str,
                      animated: bool) -> Thumbnail | None:
        path = self.files.content_path(record.media_id)
        try:
            return await self._render_slots.run(
                threads.deferToThread, lambda: make_thumbnail(
                    self.files.readable(path), record.content_type, width, height, method,
                    animated=animated))
        except CannotThumbnail as e:
            raise cannot_thumbnail(str(e)) from e
        except SourceTooLarge as e:
            raise errors.TooLarge("Content is too large to thumbnail") from e
        except FileNotFoundError as e:
            logger.warning("media %s has a record but no file at %s", record.media_id, path)
            raise NotFound("Unknown media") from e

    async def _cache(self, media_id: str, width: int, height: int, method: str,
                     thumbnail: Thumbnail) -> None:
        path = self.files.thumbnail_path(media_id, width, height, method, thumbnail.content_type)
        try:
            await self.files.write_bytes(path, thumbnail.data)
            await self.store.store_thumbnail(ThumbnailRecord(
                media_id, width, height, method, thumbnail.content_type, len(thumbnail.data)))
        except (OSError, IntegrityError):
            # Caching is an optimisation: the client still gets its thumbnail.
            logger.exception("could not cache thumbnail %s", path)

    @staticmethod
    def _thumbnail_response(data: bytes, content_type: str) -> RawResponse:
        return RawResponse(data, content_type,
                           headers=media_headers(content_type, _thumbnail_name(content_type),
                                                 inline=True))

    # -- housekeeping --------------------------------------------------------------------------
    async def purge_expired_reservations(self) -> int:
        return await self.store.delete_expired_pending(self.clock.time_ms())

    async def _purge_logged(self) -> None:
        try:
            await self.purge_expired_reservations()
        except Exception:  # keep the loop alive; the next round retries
            logger.exception("purging expired media reservations failed")

    def start(self) -> None:
        """Delete expired upload reservations every :data:`PURGE_INTERVAL_S`, until
        :meth:`stop`."""
        if self._purge_loop is not None:
            return
        self._purge_loop = task.LoopingCall(lambda: defer.ensureDeferred(self._purge_logged()))
        self._purge_loop.clock = self.clock.reactor
        self._purge_loop.start(PURGE_INTERVAL_S, now=False)

    def stop(self) -> None:
        loop, self._purge_loop = self._purge_loop, None
        if loop is not None and loop.running:
            loop.stop()


def _thumbnail_name(content_type: str) -> str:
    return "thumbnail." + {"image/jpeg": "jpg", "image/png": "png", "image/gif": "gif",
                           "image/webp": "webp", "image/apng": "png"}.get(base_type(content_type),
                                                                         "bin")
