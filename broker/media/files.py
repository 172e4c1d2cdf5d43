"""Media bytes on disk, under ``media.store_path``, laid out by media ID.

``local_content/AB/CD/EFGH...`` holds an upload and ``local_thumbnails/AB/CD/EFGH.../W-H-method.ext``
its thumbnails (two levels of two characters keep directories small).  Every write goes to a
temporary file in the destination folder, is flushed to disk and then renamed into place, so a
crash or a failed request never leaves a half-written file under a real name.  All file I/O runs on
a thread (``deferToThread``) so big files never stall the reactor.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from twisted.internet import threads

CHUNK_SIZE = 256 * 1024
THUMBNAIL_EXTENSIONS = {"image/jpeg": "jpg", "image/png": "png", "image/gif": "gif",
                        "image/webp": "webp"}


class TooLarge(Exception):
    """The source held more bytes than the allowed limit."""


@dataclass(frozen=True)
class WrittenFile:
    size: int
    sha256: str


def _chunks(source: BinaryIO) -> Iterator[bytes]:
    while True:
        chunk = source.read(CHUNK_SIZE)
        if not chunk:
            return
        yield chunk


def write_atomically(dest: Path, chunks: Iterator[bytes], limit: int | None = None) -> WrittenFile:
    """Write ``chunks`` to ``dest`` through a temporary file and a rename (blocking)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    size = 0
    fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=".incoming-")
    try:
        with os.fdopen(fd, "wb") as out:
            for chunk in chunks:
                size += len(chunk)
                if limit is not None and size > limit:
                    raise TooLarge(f"more than {limit} bytes")
                digest.update(chunk)
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp_name, dest)
    except BaseException:
        try:
            os.unlink(tmp_name)
        except FileNotFoundError:
            pass
        raise
    return WrittenFile(size, digest.hexdigest())


class MediaFiles:
    """Where each piece of media lives on disk, and thread-backed reads and writes."""

    def __init__(self, root: Path) -> None:
        self.root = root

    @staticmethod
    def _split(media_id: str) -> tuple[str, str, str]:
        if len(media_id) < 5:
            raise ValueError(f"media ID {media_id!r} is too short to lay out on disk")
        return media_id[:2], media_id[2:4], media_id[4:]

    def content_path(self, media_id: str) -> Path:
        return self.root.joinpath("local_content", *self._split(media_id))

    def thumbnail_path(self, media_id: str, width: int, height: int, method: str,
                       content_type: str) -> Path:
        ext = THUMBNAIL_EXTENSIONS.get(content_type, "bin")
        return self.root.joinpath("local_thumbnails", *self._split(media_id),
                                  f"{width}-{height}-{method}.{ext}")

    async def write_content(self, media_id: str, source: BinaryIO, limit: int) -> WrittenFile:
        """Copy ``source`` (from its start) into the media's file; TooLarge past ``limit``."""

        def copy() -> WrittenFile:
            source.seek(0)
            return write_atomically(self.content_path(media_id), _chunks(source), limit)

        return await threads.deferToThread(copy)

    async def write_bytes(self, path: Path, data: bytes) -> None:
        await threads.deferToThread(write_atomically, path, iter((data,)))

    async def read_bytes(self, path: Path) -> bytes:
        return await threads.deferToThread(path.read_bytes)

    async def size_of(self, path: Path) -> int | None:
        """The file's size, or None when it is missing."""

        def stat() -> int | None:
            try:
                return path.stat().st_size
            except FileNotFoundError:
                return None

        return await threads.deferToThread(stat)

    async def move(self, source: Path, dest: Path) -> None:
        """Rename ``source`` to ``dest`` (same file system: atomic)."""

        def rename() -> None:
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.replace(source, dest)

        await threads.deferToThread(rename)

    async def remove(self, path: Path) -> None:
        await threads.deferToThread(path.unlink, True)
