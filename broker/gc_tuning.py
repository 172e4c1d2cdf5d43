"""The garbage collector of a serving node, tuned so that it does not stop the reactor for long.

CPython's cyclic collector walks every object of the generation it collects while holding the
interpreter, so nothing else runs.  A node holds many long-lived objects (its code, live rooms,
thousands of parked long-polls), and with the default settings a full collection came every few
seconds under load and walked them all: on the 2-core benchmark machine, eight of them, 365 ms
each, while one message reached 5,000 long-polling members.

What this does (``broker run`` only; tests and tools keep the defaults):

- once the node has started, everything alive is moved out of the collector's reach
  (``gc.freeze``): modules, functions and what the node loaded never become garbage;
- after each full collection, what survived it is frozen as well (it is long-lived), so the
  next full collection walks only what is newer;
- cycles among frozen objects (a closed connection, a room evicted from memory) are not freed
  until everything is thawed and collected once: when the frozen objects have grown by
  ``gc.full_collection_growth`` (a half) since the last whole collection, checked every
  ``CHECK_SECONDS``, and at least every ``gc.full_collection_seconds``; one longer pause, logged
  with its duration, which bounds what frozen garbage can hold;
- the thresholds of the youngest generations (``gc.thresholds``) are raised from CPython's
  (700, 10, 10): fewer, still short, young collections.
"""

from __future__ import annotations

import gc
import logging
import time
from collections.abc import Callable
from typing import Any, Protocol

from twisted.internet import task

logger = logging.getLogger(__name__)

DEFAULT_THRESHOLDS = (5000, 10, 10)
DEFAULT_FULL_COLLECTION_SECONDS = 3600.0
DEFAULT_FULL_COLLECTION_GROWTH = 0.5
CHECK_SECONDS = 60.0


class Collector(Protocol):
    """What of the ``gc`` module this uses (the module itself, or a stand-in in tests)."""

    callbacks: list[Callable[[str, dict[str, Any]], None]]

    def collect(self, generation: int = 2) -> int: ...
    def freeze(self) -> None: ...
    def unfreeze(self) -> None: ...
    def set_threshold(self, threshold0: int, threshold1: int = ..., threshold2: int = ...
                      ) -> None: ...
    def get_freeze_count(self) -> int: ...


class GcTuning:
    def __init__(self, clock: Any, thresholds: tuple[int, int, int] = DEFAULT_THRESHOLDS,
                 full_collection_seconds: float = DEFAULT_FULL_COLLECTION_SECONDS,
                 full_collection_growth: float = DEFAULT_FULL_COLLECTION_GROWTH,
                 collector: Collector = gc,  # type: ignore[assignment]
                 timer: Callable[[], float] = time.perf_counter) -> None:
        self.clock = clock
        self.thresholds = thresholds
        self.full_collection_seconds = full_collection_seconds
        self.full_collection_growth = full_collection_growth
        self._frozen_after_full = 0
        self._last_full_at = 0.0
        self.collector = collector
        self.timer = timer
        self._freeze_pending = False
        self._loop: task.LoopingCall | None = None
        #: Full collections run on the rhythm, and the longest one (seconds).
        self.full_collections = 0
        self.longest_full_s = 0.0

    def start(self) -> None:
        """Freeze what is alive now, raise the thresholds, watch full collections and start
        the rhythm of whole collections."""
        collector = self.collector
        collector.collect()
        collector.freeze()
        collector.set_threshold(*self.thresholds)
        collector.callbacks.append(self._collected)
        self._frozen_after_full = collector.get_freeze_count()
        self._last_full_at = self.clock.seconds()
        self._loop = task.LoopingCall(self.check)
        self._loop.clock = self.clock
        self._loop.start(min(CHECK_SECONDS, self.full_collection_seconds), now=False)
        logger.info("garbage collector: %d objects frozen at start, thresholds %s",
                    collector.get_freeze_count(), self.thresholds)

    def stop(self) -> None:
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        if self._collected in self.collector.callbacks:
            self.collector.callbacks.remove(self._collected)

    def _collected(self, phase: str, info: dict[str, Any]) -> None:
        """After a full collection, freeze its survivors on the next reactor turn (not from
        inside the collector)."""
        if phase == "stop" and info.get("generation") == 2 and not self._freeze_pending:
            self._freeze_pending = True
            self.clock.callLater(0, self._freeze)

    def _freeze(self) -> None:
        self._freeze_pending = False
        self.collector.freeze()

    def check(self) -> bool:
        """Collect everything once if the frozen objects grew past the allowance or the last
        whole collection is ``full_collection_seconds`` old; whether it did."""
        grown = self.collector.get_freeze_count() > \
            self._frozen_after_full * (1 + self.full_collection_growth)
        due = self.clock.seconds() - self._last_full_at >= self.full_collection_seconds
        if grown or due:
            self.collect_all()
        return grown or due

    def collect_all(self) -> int:
        """Thaw everything, collect it once and freeze what is left; the objects freed."""
        collector = self.collector
        started = self.timer()
        collector.unfreeze()
        freed = collector.collect()
        collector.freeze()
        took = self.timer() - started
        self._frozen_after_full = collector.get_freeze_count()
        self._last_full_at = self.clock.seconds()
        self.full_collections += 1
        self.longest_full_s = max(self.longest_full_s, took)
        logger.info("garbage collector: whole collection freed %d objects in %.0f ms, "
                    "%d frozen", freed, took * 1000, collector.get_freeze_count())
        return freed
