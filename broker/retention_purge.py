"""The retention purge: every ``purge_interval`` on the node's clock, the content of expired
non-state events is removed from the database.

Read paths already leave expired events out (:mod:`broker.retention`); the purge makes the
database forget them.  Each room's lifetime is computed as the read paths compute it (its
``m.room.retention`` in current state, else its creator's organisation's default, else the
node's, clamped into the bounds), so a room keeping events for ever is not looked at.  Events are pruned ``batch`` at a time, one
transaction each, and the reactor runs other work between batches; the store reads only the
events not yet purged, so a purge interrupted anywhere (a crash, a stop) goes on at the next run
from what the database holds.  Pruned copies replace those in the live rooms' recent windows,
so memory does not keep the content either.  What was purged is counted and logged.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from twisted.internet import defer, task

from broker.clock import Clock
from broker.media.expired import ExpiredMedia
from broker.retention import Retention, stated_lifetime
from storage.retention import RetentionStore

logger = logging.getLogger(__name__)

BATCH = 500

# (room ID, IDs of the events just purged): the live room drops their content from memory.
Purged = Callable[[str, list[str]], None]


@dataclass
class PurgeCounts:
    """What the purge did since the node started."""

    events: int = 0  # counted batch by batch, so a long purge shows its progress
    media: int = 0  # local media only purged events used, files removed
    media_bytes: int = 0  # their content and thumbnails
    runs: int = 0
    failed_runs: int = 0
    last_run_ts: int | None = None
    running: bool = False  # a purge is under way
    run_events: int = 0  # purged by the run under way, or by the last one

    def to_json(self) -> dict[str, Any]:
        return {"events_purged": self.events, "media_deleted": self.media,
                "media_bytes_freed": self.media_bytes, "runs": self.runs,
                "failed_runs": self.failed_runs, "last_run_ts": self.last_run_ts}


class RetentionPurge:
    def __init__(self, store: RetentionStore, retention: Retention, clock: Clock,
                 purged: Purged, media: ExpiredMedia, batch: int = BATCH) -> None:
        self.store = store
        self.media = media
        self.retention = retention
        self.clock = clock
        self.purged = purged
        self.batch = batch
        self.counts = PurgeCounts()
        self._loop: task.LoopingCall | None = None

    def start(self, reactor: Any) -> None:
        """Purge now (what expired while the node was stopped, or a purge it did not finish)
        and then every ``purge_interval``; nothing when retention is disabled."""
        if not self.retention.enabled:
            return
        self._loop = task.LoopingCall(lambda: defer.ensureDeferred(self._run()))
        self._loop.clock = reactor
        self._loop.start(self.retention.settings.purge_interval_ms / 1000, now=True)

    def stop(self) -> None:
        if self._loop is not None and self._loop.running:
            self._loop.stop()

    async def _run(self) -> None:
        try:
            await self.purge()
        except Exception:  # the loop must keep running; what is left waits for the next run
            self.counts.failed_runs += 1
            logger.exception("retention: purge failed")

    async def lifetimes(self) -> dict[str, int]:
        """Room ID -> its effective lifetime, for the rooms whose events expire (a room stating
        no policy takes its creator's organisation's default, else the node's)."""
        stated = {room_id: stated_lifetime(json.loads(raw).get("content") or {})
                  for room_id, raw in (await self.store.stated_policies()).items()}
        lifetimes: dict[str, int] = {}
        for room_id, creator in (await self.store.room_creators()).items():
            lifetime = self.retention.lifetime_of(stated.get(room_id), creator)
            if lifetime is not None:
                lifetimes[room_id] = lifetime
        return lifetimes

    async def purge(self) -> int:
        """Purge every room's expired events now; how many were purged."""
        done = 0
        self.counts.running, self.counts.run_events = True, 0
        try:
            for room_id, lifetime in sorted((await self.lifetimes()).items()):
                done += await self.purge_room(room_id, lifetime)
            # The files of the media deleted with the events (and any a crash left listed).
            media, size = await self.media.remove_files()
            self.counts.media += media
            self.counts.media_bytes += size
            if done:
                # The content leaves the disk too: freed pages, WAL frames, dead tuples.
                await self.store.reclaim()
        finally:
            self.counts.running = False
        self.counts.runs += 1
        self.counts.last_run_ts = self.clock.time_ms()
        if done or media:
            logger.info("retention: purged the content of %d expired events and %d media"
                        " files (%d bytes)", done, media, size)
        return done

    async def purge_room(self, room_id: str, lifetime: int) -> int:
        """Prune the room's events older than ``lifetime``, a batch per transaction."""
        before = self.clock.time_ms() - lifetime
        done = 0
        while True:
            ids = await self.store.purge_batch(room_id, before, self.batch,
                                               self.media.server_name)
            if ids:
                self.purged(room_id, ids)
                done += len(ids)
                self.counts.events += len(ids)
                self.counts.run_events += len(ids)
            if len(ids) < self.batch:
                return done
            await self._next_turn()

    def _next_turn(self) -> defer.Deferred[None]:
        """Let the reactor run other work (sends, syncs) before the next batch."""
        turn: defer.Deferred[None] = defer.Deferred()
        self.clock.call_later(0, turn.callback, None)
        return turn
