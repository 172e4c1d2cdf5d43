"""Removing from disk the files of local media that only expired events used.

The retention purge deletes such media's rows in the transaction that prunes the events and
lists them in ``media_deletions`` (:mod:`storage.media_references`); :meth:`remove_files` then
removes each one's content file and thumbnails, and clears it from the list once they are
gone, so a crash in between leaves the list for the next run.
"""

from __future__ import annotations

from broker.media.files import MediaFiles
from storage.media_references import MediaDeletionStore

BATCH = 100


class ExpiredMedia:
    def __init__(self, store: MediaDeletionStore, files: MediaFiles, server_name: str,
                 batch: int = BATCH) -> None:
        self.store = store
        self.files = files
        self.server_name = server_name  # only this node's media is deleted
        self.batch = batch

    async def remove_files(self) -> tuple[int, int]:
        """Remove the files of every listed media; (how many media, their bytes)."""
        count = size = 0
        while True:
            listed = await self.store.pending(self.batch)
            for media in listed:
                await self.files.remove_media(media.media_id)
            await self.store.removed([m.media_id for m in listed])
            count += len(listed)
            size += sum(m.size for m in listed)
            if len(listed) < self.batch:
                return count, size
