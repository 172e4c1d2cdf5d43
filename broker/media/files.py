"""Media bytes on disk, under ``media.store_path``, laid out by media ID.

``local_content/AB/CD/EFGH...`` holds an upload and ``local_thumbnails/AB/CD/EFGH.../W-H-method.ext``
its thumbnails (two levels of two characters keep directories small).  Every write goes to a
temporary file in the destination folder, is flushed to disk and then renamed into place, so a
crash or a failed request never leaves a half-written file under a real name.  All file I/O runs on
a thread (``deferToThread``) so big files never stall the reactor.  With encryption at rest on,
files are sealed as they are written and opened as they are read (``storage/at_rest.py``); sizes
and hashes are always those of the clear content, and a file written before a key was set is
read as it is.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import tempfile
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from twisted.internet import threads

from storage.at_rest import (
    FILE_CHUNK,
    FILE_HEADER_BYTES,
    TAG_BYTES,
    AtRest,
    clear_size,
    is_sealed_file,
    sealed_file_key_id,
)

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


def write_atomically(dest: Path, chunks: Iterator[bytes], limit: int | None = None,
                     at_rest: AtRest | None = None) -> WrittenFile:
    """Write ``chunks`` to ``dest`` through a temporary file and a rename (blocking), sealed
    under ``at_rest``'s current key when it has one; the size and hash are of the clear bytes."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    size = 0

    def counted() -> Iterator[bytes]:
        nonlocal size
        for chunk in chunks:
            size += len(chunk)
            if limit is not None and size > limit:
                raise TooLarge(f"more than {limit} bytes")
            digest.update(chunk)
            yield chunk

    fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=".incoming-")
    try:
        with os.fdopen(fd, "wb") as out:
            for piece in (at_rest.seal_chunks(counted()) if at_rest else counted()):
                out.write(piece)
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


def clear_chunks(path: Path, at_rest: AtRest) -> Generator[bytes, None, None]:
    """The clear bytes of a stored file, a chunk at a time (blocking; FileNotFoundError when it
    is missing, ``storage.at_rest.AtRestError`` when it cannot be opened)."""
    with open(path, "rb") as source:
        stored_size = os.fstat(source.fileno()).st_size
        head = source.read(FILE_HEADER_BYTES)
        piece = FILE_CHUNK + TAG_BYTES if is_sealed_file(head) else CHUNK_SIZE
        yield from at_rest.open_chunks(iter(lambda: source.read(piece), b""), stored_size, head)


def stored_key_id(path: Path) -> str | None:
    """The at-rest key a stored file is sealed with (None: clear); FileNotFoundError."""
    with open(path, "rb") as source:
        return sealed_file_key_id(source.read(FILE_HEADER_BYTES))


def reseal(path: Path, at_rest: AtRest) -> None:
    """Write a stored file again under the current key (blocking; atomic, like every write)."""
    write_atomically(path, clear_chunks(path, at_rest), at_rest=at_rest)


class MediaFiles:
    """Where each piece of media lives on disk, and thread-backed reads and writes."""

    def __init__(self, root: Path, at_rest: AtRest | None = None) -> None:
        self.root = root
        self.at_rest = at_rest if at_rest is not None else AtRest()

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
            return write_atomically(self.content_path(media_id), _chunks(source), limit,
                                    self.at_rest)

        return await threads.deferToThread(copy)

    async def write_bytes(self, path: Path, data: bytes) -> None:
        await threads.deferToThread(write_atomically, path, iter((data,)), None, self.at_rest)

    def read_all(self, path: Path) -> bytes:
        """The clear content of a file (blocking)."""
        return b"".join(clear_chunks(path, self.at_rest))

    def readable(self, path: Path) -> Path | BinaryIO:
        """Something to hand a decoder (blocking): the path of a clear file, the clear content
        of a sealed one in memory."""
        if stored_key_id(path) is None:
            return path
        return io.BytesIO(self.read_all(path))

    async def read_bytes(self, path: Path) -> bytes:
        return await threads.deferToThread(self.read_all, path)

    def clear_chunks(self, path: Path) -> Generator[bytes, None, None]:
        """The clear content of a file, a chunk at a time (blocking reads)."""
        return clear_chunks(path, self.at_rest)

    async def size_of(self, path: Path) -> int | None:
        """The size of the file's clear content, or None when it is missing."""

        def stat() -> int | None:
            try:
                with open(path, "rb") as source:
                    stored_size = os.fstat(source.fileno()).st_size
                    return clear_size(source.read(FILE_HEADER_BYTES), stored_size)
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

    async def remove_media(self, media_id: str) -> None:
        """Remove the media's content file and every thumbnail of it (missing ones are no
        error), and the folders left empty."""

        def remove() -> None:
            self.content_path(media_id).unlink(missing_ok=True)
            thumbnails = self.root.joinpath("local_thumbnails", *self._split(media_id))
            shutil.rmtree(thumbnails, ignore_errors=True)
            for folder in (self.content_path(media_id).parent, thumbnails.parent):
                for parent in (folder, folder.parent):
                    try:
                        parent.rmdir()  # only when empty
                    except OSError:
                        break

        await threads.deferToThread(remove)
