"""The node's clock reads time from its reactor, so a test's ``task.Clock`` controls it."""

from __future__ import annotations

from twisted.internet import task

from broker.clock import Clock


def test_clock_reads_the_time_of_its_reactor() -> None:
    reactor = task.Clock()
    reactor.advance(1_700_000_000.25)
    clock = Clock(reactor)
    assert (clock.time(), clock.time_ms()) == (1_700_000_000.25, 1_700_000_000_250)


def test_clock_time_stands_still_until_the_reactor_advances() -> None:
    reactor = task.Clock()
    clock = Clock(reactor)
    before = clock.time_ms()
    assert clock.time_ms() == before
    reactor.advance(0.001)
    assert clock.time_ms() == before + 1


def test_clock_timers_fire_when_the_reactor_reaches_them() -> None:
    reactor = task.Clock()
    fired: list[str] = []
    Clock(reactor).call_later(5, fired.append, "late")
    reactor.advance(4.999)
    assert fired == []
    reactor.advance(0.001)
    assert fired == ["late"]
