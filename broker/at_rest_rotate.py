"""``broker keys at-rest rotate``: a new data key, and every sealed record and media file
re-sealed under it while the node runs.

1. A new rotation is recorded with its new key's ID (``storage/at_rest_rotation.py``), then the
   key file is written with the new key first and the old ones after it: the running node reads
   it again within seconds and seals with the new key, and still reads with the old ones.  (If
   the command dies between the two, the next run finds the rotation's key missing from the
   file, forgets that rotation, since nothing can have been sealed with it, and starts again.)
2. Each sealed column, then the media files, is walked in batches; every batch saves its
   progress in its transaction, so running the command again after an interruption goes on
   where it stopped.  Progress is reported as it goes.
3. When a whole pass of every part, begun once the node had time to read the new file, finds
   nothing to re-seal, the rotation is done: the old keys leave the database's list and the key
   file, which then holds the new key alone.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from broker.at_rest_keys import RELOAD_SECONDS, read_key_file, write_key_file
from broker.media.files import MediaFiles, reseal, stored_key_id
from storage.at_rest import DataKey
from storage.at_rest_rotation import (
    MEDIA_FILE,
    MEDIA_TABLE,
    SEALED_COLUMNS,
    Batch,
    PartProgress,
    Rotation,
    SealedColumn,
    abandon_rotation_txn,
    begin_rotation_txn,
    current_rotation_txn,
    finish_rotation_txn,
    next_rows_txn,
    progress_txn,
    reseal_batch_txn,
    save_batch_txn,
)
from storage.database import Database

# How long after the new key file is written a pass counts as final: every node reading the
# file every RELOAD_SECONDS seals with the new key by then.
SETTLE_MS = int(3 * RELOAD_SECONDS * 1000)


class RotationRefused(Exception):
    """The rotation cannot run (no key file to rotate, say); the message says why."""


@dataclass(frozen=True)
class RotationDone:
    rotation: Rotation
    resealed: int
    retired_key_ids: list[str]


class AtRestRotation:
    """One run of the rotation over a node's (synchronous) database, key file and media."""

    def __init__(self, db: Database, key_file: Path, media: MediaFiles, *,
                 now_ms: Callable[[], int], sleep: Callable[[float], None],
                 report: Callable[[str], None], batch: int = 500,
                 settle_ms: int = SETTLE_MS) -> None:
        self.db = db
        self.key_file = key_file
        self.media = media
        self.now_ms = now_ms
        self.sleep = sleep
        self.report = report
        self.batch = batch
        self.settle_ms = settle_ms

    def run(self) -> RotationDone:
        rotation, target = self._begin_or_resume()
        settled_ts = rotation.started_ts + self.settle_ms
        while True:
            parts = {p.part: p for p in self._progress(rotation)}
            if all(p.done for p in parts.values()):
                break
            for column in SEALED_COLUMNS:
                self._walk(rotation, column.context,
                           partial(self._column_batch, rotation, column, target, settled_ts))
            self._walk(rotation, MEDIA_FILE,
                       lambda: self._media_batch(rotation, target, settled_ts))
            wait_ms = settled_ts - self.now_ms()
            if wait_ms > 0 and not all(p.done for p in self._progress(rotation)):
                self.report(f"waiting {wait_ms / 1000:.0f} s for the node to read the new key")
                self.sleep(wait_ms / 1000)
        retired = self.db.run_sync("at_rest_finish_rotation", finish_rotation_txn, rotation,
                                   self.now_ms())
        write_key_file(self.key_file, [target], replace=True)
        self.db.at_rest.replace_keys([target])
        total = sum(p.resealed for p in self._progress(rotation))
        return RotationDone(rotation, total, retired)

    # -- starting -------------------------------------------------------------------------------
    def _begin_or_resume(self) -> tuple[Rotation, DataKey]:
        keys = read_key_file(self.key_file)
        rotation = self.db.run_sync("at_rest_rotation", current_rotation_txn)
        if rotation is not None:
            held = {k.key_id: k for k in keys}
            if rotation.target_key_id in held:
                target = held[rotation.target_key_id]
                self._use_keys([target, *[k for k in keys if k != target]])
                self.report(f"resuming the rotation to key {target.key_id}")
                return rotation, target
            self.db.run_sync("at_rest_abandon_rotation", abandon_rotation_txn, rotation)
            self.report(f"key {rotation.target_key_id} never reached {self.key_file}:"
                        " starting again")
        target = DataKey.generate()
        while target.key_id in {k.key_id for k in keys}:
            target = DataKey.generate()
        rotation = self.db.run_sync("at_rest_begin_rotation", begin_rotation_txn, target,
                                    self.now_ms())
        self._use_keys([target, *keys])
        self.report(f"new key {target.key_id} written to {self.key_file}; the node seals with"
                    " it from its next check of the file")
        return rotation, target

    def _use_keys(self, keys: list[DataKey]) -> None:
        if list(self.db.at_rest.keys) != keys:
            write_key_file(self.key_file, keys, replace=True)
        self.db.at_rest.replace_keys(keys)

    # -- walking --------------------------------------------------------------------------------
    def _progress(self, rotation: Rotation) -> list[PartProgress]:
        return self.db.run_sync("at_rest_rotation_progress", progress_txn,
                                rotation.rotation_id)

    def _walk(self, rotation: Rotation, part: str, batch: Callable[[], Batch]) -> None:
        """Batches of ``part`` until its pass ends (or it is done), with progress lines."""
        while True:
            done = batch()
            state = next(p for p in self._progress(rotation) if p.part == part)
            if done.resealed or done.pass_ended:
                self.report(f"{part}: {state.resealed} re-sealed"
                            f" (pass {state.passes + (0 if done.pass_ended else 1)})"
                            + (", done" if done.done else ""))
            if done.pass_ended or done.done:
                return

    def _column_batch(self, rotation: Rotation, column: SealedColumn, target: DataKey,
                      settled_ts: int) -> Batch:
        return self.db.run_sync("at_rest_reseal", reseal_batch_txn, rotation.rotation_id,
                                column, target, self.batch, settled_ts, self.now_ms())

    def _media_batch(self, rotation: Rotation, target: DataKey, settled_ts: int) -> Batch:
        """One batch of media files: each upload and its thumbnails, re-sealed on disk first
        (each file atomically), then the progress saved (a file re-sealed twice is harmless)."""
        part = next(p for p in self._progress(rotation) if p.part == MEDIA_FILE)
        if part.done:
            return Batch(0, True, True)
        rows = self.db.run_sync("at_rest_media_rows", next_rows_txn, MEDIA_TABLE,
                                part.position, self.batch)
        resealed = 0
        for (media_id,) in rows:
            for path in self._files_of(media_id):
                try:
                    if stored_key_id(path) != target.key_id:
                        reseal(path, self.db.at_rest)
                        resealed += 1
                except FileNotFoundError:
                    continue  # deleted meanwhile
        last = rows[-1] if rows else None
        return self.db.run_sync("at_rest_media_batch", save_batch_txn, rotation.rotation_id,
                                part, len(rows), last, resealed, self.batch, settled_ts,
                                self.now_ms())

    def _files_of(self, media_id: str) -> list[Path]:
        content = self.media.content_path(media_id)
        thumbnails = self.media.thumbnail_path(media_id, 1, 1, "crop", "").parent
        found = [content] if content.exists() else []
        if thumbnails.is_dir():
            found += sorted(p for p in thumbnails.iterdir()
                            if p.is_file() and not p.name.startswith("."))
        return found
