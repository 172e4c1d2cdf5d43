"""The serving node's garbage collector: what is alive at start and what survives a full
collection is frozen; everything is thawed and collected once the frozen objects have grown
past the allowance or the rhythm comes round (a stand-in collector and a fake clock; one test
with the real collector)."""

from __future__ import annotations

import gc
from typing import Any

from twisted.internet.task import Clock

from broker.gc_tuning import CHECK_SECONDS, GcTuning


class FakeCollector:
    def __init__(self) -> None:
        self.callbacks: list[Any] = []
        self.frozen = 0
        self.alive = 100  # objects the collector could freeze now
        self.calls: list[str] = []
        self.thresholds: tuple[int, ...] = ()

    def collect(self, generation: int = 2) -> int:
        self.calls.append("collect")
        return 7

    def freeze(self) -> None:
        self.calls.append("freeze")
        self.frozen += self.alive
        self.alive = 0

    def unfreeze(self) -> None:
        self.calls.append("unfreeze")
        self.alive += self.frozen
        self.frozen = 0

    def set_threshold(self, *thresholds: int) -> None:
        self.thresholds = thresholds

    def get_freeze_count(self) -> int:
        return self.frozen

    def full_collection_ran(self) -> None:
        for callback in list(self.callbacks):
            callback("stop", {"generation": 2, "collected": 0, "uncollectable": 0})


def started(seconds: float = 3600.0, growth: float = 0.5) -> tuple[GcTuning, FakeCollector, Clock]:
    collector, clock = FakeCollector(), Clock()
    tuning = GcTuning(clock, (5000, 10, 10), seconds, growth, collector)  # type: ignore[arg-type]
    tuning.start()
    return tuning, collector, clock


def test_what_is_alive_at_start_is_collected_then_frozen_and_the_thresholds_raised() -> None:
    _tuning, collector, _clock = started()
    assert collector.calls == ["collect", "freeze"]
    assert collector.frozen == 100 and collector.thresholds == (5000, 10, 10)


def test_the_survivors_of_a_full_collection_are_frozen_on_the_next_turn() -> None:
    _tuning, collector, clock = started()
    collector.alive = 30
    collector.full_collection_ran()
    assert collector.frozen == 100  # not from inside the collector
    clock.advance(0)
    assert collector.frozen == 130


def test_a_young_collection_freezes_nothing() -> None:
    _tuning, collector, clock = started()
    collector.alive = 30
    for callback in collector.callbacks:
        callback("stop", {"generation": 0, "collected": 0, "uncollectable": 0})
    clock.advance(0)
    assert collector.frozen == 100


def test_frozen_objects_grown_past_the_allowance_are_thawed_and_collected_once() -> None:
    tuning, collector, clock = started(growth=0.5)
    collector.alive = 40
    collector.freeze()  # 140 frozen: within a half more than 100
    clock.advance(CHECK_SECONDS)
    assert tuning.full_collections == 0
    collector.alive = 20
    collector.freeze()  # 160: past it
    collector.calls.clear()
    clock.advance(CHECK_SECONDS)
    assert collector.calls == ["unfreeze", "collect", "freeze"]
    assert tuning.full_collections == 1


def test_everything_is_collected_once_on_the_rhythm_even_without_growth() -> None:
    tuning, collector, clock = started(seconds=600.0)
    clock.advance(540)
    assert tuning.full_collections == 0
    clock.advance(CHECK_SECONDS)
    assert tuning.full_collections == 1


def test_stopping_leaves_the_collector_without_the_callback_and_the_rhythm() -> None:
    tuning, collector, clock = started(seconds=60.0)
    tuning.stop()
    assert collector.callbacks == []
    clock.advance(600)
    assert tuning.full_collections == 0


def test_with_the_real_collector_objects_alive_at_start_are_frozen() -> None:
    before = gc.get_threshold()
    tuning = GcTuning(Clock())
    try:
        tuning.start()
        assert gc.get_freeze_count() > 0
        assert gc.get_threshold()[0] == 5000
    finally:
        tuning.stop()
        gc.unfreeze()
        gc.set_threshold(*before)
